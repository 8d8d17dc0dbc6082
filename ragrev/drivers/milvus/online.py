"""How a Milvus store switches collections while the application writes:
the catch-up phase of ``copy``/``reembed`` (``catch_up=``), and the gates
``expect_fresh`` and ``check_relevance`` (see :mod:`ragrev.ops.vector_online`
and ``docs/reembedding.md``).

Catch-up, as recorded in ``ctx.captured["catch_up"]`` (so a killed step
resumes in the phase it was in):

1. ``mark`` is taken (``time.time()``) before the first pass begins; the pass
   copies in primary-key order as without catch-up.
2. Rounds: the source rows whose watermark is ``>= mark - catch_up_skew``
   are upserted into the target (rows whose ``tombstone`` is true are
   deleted there instead); the round's start becomes the next ``mark``. The
   rounds stop when one finds fewer than ``catch_up_threshold`` rows, or
   after ``catch_up_rounds``.
   After the first pass, ``ctx.captured["dual_write"]`` names the source and
   the target: :mod:`ragrev.dualwrite` tells the application to write both
   while the run is open. A round writes a row only when the target lacks
   it or has an older watermark, so it never undoes a newer dual write.
3. Deletes: rows with the ``tombstone`` field true are deleted in the
   rounds; the difference is also taken (always, a tombstoned row counting
   as gone): the target's primary keys
   are read in pages, each page looked up in the source, and the keys the
   source no longer has are deleted from the target (memory: one page). It
   waits until every application has had time to read the dual-write pair
   (twice :data:`ragrev.dualwrite.MAX_REFRESH` after it was published).
4. A last round carries what changed during step 3.
"""
from __future__ import annotations

import json
import time

import numpy as np

from ragrev.errors import CheckFailed, OperationError
from ragrev.ops.vector_online import CheckRelevance, ExpectFresh, load_golden, score
from ragrev.stores import implementation
from ragrev.drivers.milvus.client import KIND
from ragrev.drivers.milvus.schema import MilvusSchema


def begin(store: MilvusSchema, op, ctx) -> dict:
    """Record the watermark before the first pass."""
    c = ctx.captured
    if "catch_up" not in c:
        c["catch_up"] = {"field": op.catch_up, "mark": time.time(), "phase": "copy", "round": 0, "rounds": []}
        ctx.checkpoint(ctx.resume_token, ctx.rows_done)
    return c["catch_up"]


def copy_with_catch_up(store: MilvusSchema, op, ctx, name: str, source: str, target: str, first_pass, transform,
                       filter=None) -> int:
    """``first_pass()`` (the pk-ordered copy, returns rows done) then the catch-up rounds.

    The dual-write pair is published (``captured["dual_write"]``) once the
    first pass is over: the pass inserts, so the application must not write
    the target before; the rounds only overwrite a target row with a newer
    one (by watermark), so they and the application's writes may interleave."""
    cu = begin(store, op, ctx)
    done = ctx.rows_done
    if cu["phase"] == "copy":
        done = first_pass()
        cu.update(phase="rounds", published=time.time())
        ctx.captured["dual_write"] = {"name": name, "source": source, "target": target}
        ctx.checkpoint(ctx.resume_token, done)
    return rounds(store, op, ctx, source, target, transform, filter, done)


def rounds(store: MilvusSchema, op, ctx, source: str, target: str, transform, filter, done: int) -> int:
    from ragrev.dualwrite import MAX_REFRESH

    cu = ctx.captured["catch_up"]
    pk = store.pk_of(source)
    while cu["phase"] in ("rounds", "deletes", "final"):
        if cu["phase"] == "deletes":
            # every application has read the dual-write pair by now: no more writes to the source alone
            time.sleep(max(0.0, cu["published"] + 2 * MAX_REFRESH - time.time()))
            cu["deleted"] = cu.get("deleted", 0) + delete_missing(store, source, target, pk, filter, op.batch_size,
                                                                 op.tombstone)
            cu["phase"] = "final"
            ctx.checkpoint(ctx.resume_token, done)
            continue
        started = time.time()
        changed, removed = one_round(store, op, source, target, pk, cu["mark"] - op.catch_up_skew, transform, filter)
        done += changed
        cu["round"] += 1
        cu["mark"] = started
        cu["rounds"] = (cu["rounds"] + [[changed, removed]])[-20:]
        if cu["phase"] == "final":
            cu["phase"] = "done"
        elif changed < op.catch_up_threshold or cu["round"] >= op.catch_up_rounds:
            cu["phase"] = "deletes"
        ctx.checkpoint(ctx.resume_token, done)
        ctx.progress(done, None)
    return done


def one_round(store: MilvusSchema, op, source: str, target: str, pk: str, since: float, transform, filter):
    """Upsert the rows changed since ``since`` that the target has older or
    not at all (tombstoned ones deleted); (rows seen, rows deleted)."""
    field = op.catch_up
    cond = f"{field} >= {float(since)!r}" + (f" and ({filter})" if filter else "")
    seen = removed = 0
    for rows in store.scan(source, cond, batch=op.batch_size, pk=pk):
        seen += len(rows)
        if op.tombstone:
            dead = [r[pk] for r in rows if r.get(op.tombstone)]
            rows = [r for r in rows if not r.get(op.tombstone)]
            if dead:
                store.c.delete(target, ids=dead)
                removed += len(dead)
        if not rows:
            continue
        removed += _write_newer(store, op, source, target, pk, rows, transform, filter)
    return seen, removed


def _alive(op, pk: str, filter) -> str:
    return (f" and ({filter})" if filter else "") + (f" and ({op.tombstone} == false)" if op.tombstone else "")


def _write_newer(store: MilvusSchema, op, source: str, target: str, pk: str, rows: list, transform, filter) -> int:
    """Upsert the ``rows`` the target has older or not at all, then settle the
    race with the application's dual writes: read the source again for the
    keys written; those gone since are deleted from the target, those changed
    since are written again (the application writes the source first, so a
    change not seen here reaches the target after this write). Rows deleted."""
    field, removed = op.catch_up, 0
    for _ in range(20):
        if not rows:
            return removed
        have = {r[pk]: r.get(field) for r in store.get(target, [r[pk] for r in rows], (pk, field))}
        rows = [r for r in rows if have.get(r[pk]) is None or have[r[pk]] < r[field]]
        if not rows:
            return removed
        out = transform(rows) if transform else rows
        if out:
            store.c.upsert(target, out)
        wrote = {r[pk]: r[field] for r in rows}
        cond = f"{pk} in {_in_list(list(wrote))}" + _alive(op, pk, filter)
        now = {r[pk]: r for r in store.c.query(source, filter=cond, output_fields=["*"], limit=len(wrote))}
        gone = [k for k in wrote if k not in now]
        if gone:
            store.c.delete(target, ids=gone)
            removed += len(gone)
        rows = [r for k, r in now.items() if r.get(field) is not None and r[field] > wrote[k]]
    return removed


def _in_list(keys: list) -> str:
    return json.dumps([k if isinstance(k, str) else int(k) for k in keys])


def delete_missing(store: MilvusSchema, source: str, target: str, pk: str, filter, batch: int,
                   tombstone: str | None = None) -> int:
    """Delete from ``target`` the primary keys ``source`` (matching ``filter``,
    not ``tombstone``-d) no longer has."""
    removed = 0
    for rows in store.scan(target, batch=max(batch, 1000), fields=(pk,), pk=pk):
        keys = [r[pk] for r in rows]
        cond = f"{pk} in {_in_list(keys)}" + (f" and ({filter})" if filter else "") \
            + (f" and ({tombstone} == false)" if tombstone else "")
        there = {r[pk] for r in store.c.query(source, filter=cond, output_fields=[pk], limit=len(keys))}
        gone = [k for k in keys if k not in there]
        if gone:
            store.c.delete(target, ids=gone)
            removed += len(gone)
    return removed


# --- expect_fresh -----------------------------------------------------------------------------

def _by_pk(store: MilvusSchema, name: str, pk: str, fields) -> dict:
    return {r[pk]: r for rows in store.scan(name, batch=5000, fields=(pk, *fields), pk=pk) for r in rows}


@implementation(ExpectFresh, KIND)
def _impl_expect_fresh(store: MilvusSchema, op: ExpectFresh, ctx):
    dst, src = store.need(op, op.collection), store.need(op, op.source)
    pk = store.pk_of(src)
    now = time.time()
    fields = (op.field,) + ((op.tombstone,) if op.tombstone else ())
    target = _by_pk(store, dst, pk, fields)   # the target first: the application writes the source first
    source = _by_pk(store, src, pk, fields)
    stale, oldest, extra = 0, None, 0
    for key, row in source.items():
        mark = float(row.get(op.field) or 0)
        if op.tombstone and row.get(op.tombstone):  # deleted: gone from the target, or tombstoned there too
            behind = key in target and not target[key].get(op.tombstone)
        else:
            mine = target.get(key)
            behind = mine is None or float(mine.get(op.field) or 0) < mark
        if behind:
            stale += 1
            oldest = mark if oldest is None else min(oldest, mark)
    extra = [key for key in target if key not in source]
    if extra:  # deleted while we read (the application deletes from both): read both again
        extra = {r[pk] for r in store.get(dst, extra, (pk,))} - {r[pk] for r in store.get(src, extra, (pk,))}
    extra = len(extra)
    lag = max(0.0, now - oldest) if oldest is not None else 0.0
    ctx.captured.update(lag=round(lag, 3), stale=stale, extra=extra, rows=len(source))
    problems = []
    if lag > op.max_lag:
        problems.append(f"{stale} change(s) of {op.source!r} not in {op.collection!r}, the oldest {lag:.1f}s old "
                        f"(max_lag={op.max_lag})")
    if extra > op.max_missing:
        problems.append(f"{extra} row(s) deleted from {op.source!r} still in {op.collection!r} "
                        f"(max_missing={op.max_missing})")
    if problems:
        raise CheckFailed(f"{op.where()}expect_fresh: " + "; ".join(problems))
    return None


# --- check_relevance --------------------------------------------------------------------------

def _ranked(store: MilvusSchema, op: CheckRelevance, name: str, embed, golden: list[dict]) -> list[list[str]]:
    phys = store.need(op, name)
    cs = store.collection_state(phys)
    vf = op.vector_field(cs, name, op.field)
    try:
        vectors = np.asarray(embed([g["query"] for g in golden]), dtype=np.float32)
    except Exception as e:
        raise OperationError(f"{op.where()}check_relevance: the embedding for {name!r} failed: "
                             f"{type(e).__name__}: {e}") from None
    if vectors.ndim != 2 or vectors.shape != (len(golden), cs.fields[vf]["dim"]):
        raise OperationError(f"{op.where()}check_relevance: the embedding for {name!r} returned shape "
                             f"{vectors.shape}, expected ({len(golden)}, {cs.fields[vf]['dim']})")
    out = []
    for i in range(0, len(vectors), 100):
        res = store.c.search(phys, data=vectors[i:i + 100].tolist(), anns_field=vf, limit=op.k,
                             filter=op.filter or "", search_params={"params": dict(op.search_params or {})},
                             output_fields=[])
        out += [[str(hit["id"]) for hit in hits] for hits in res]
    return out


def _slices(golden: list[dict], key: str | None) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    if key:
        for i, g in enumerate(golden):
            out.setdefault(g["slice"].get(key, "(none)"), []).append(i)
    return out


@implementation(CheckRelevance, KIND)
def _impl_check_relevance(store: MilvusSchema, op: CheckRelevance, ctx):
    base = getattr(getattr(ctx, "config", None), "directory", None)
    try:
        golden = load_golden(op.golden, base)
    except ValueError as e:
        raise OperationError(f"{op.where()}check_relevance: {e}") from None
    runs = {"new": _ranked(store, op, op.collection, op.embed, golden)}
    if op.against:
        runs["old"] = _ranked(store, op, op.against, op.against_embed or op.embed, golden)

    def measure(indices):
        sub = [golden[i] for i in indices]
        return {side: score([ranked[i] for i in indices], sub, op.k) for side, ranked in runs.items()}

    report = {"k": op.k, "overall": measure(range(len(golden))), "slices": {}}
    for value, indices in sorted(_slices(golden, op.slice_by).items())[:50]:
        report["slices"][value] = measure(indices)
    ctx.captured["relevance"] = report

    problems = []
    overall = report["overall"]
    if op.min_score is not None:
        for metric in op.gates():
            if overall["new"][metric] < op.min_score:
                problems.append(f"{metric}@{op.k} {overall['new'][metric]:.4f} below min_score={op.min_score}")
    if op.against:
        scopes = [("overall", overall)] + [(f"{op.slice_by}={v}", m) for v, m in report["slices"].items()
                                           if m["new"]["queries"] >= op.min_slice_queries]
        for where, m in scopes:
            for metric in op.gates():
                old, new = m["old"][metric], m["new"][metric]
                if old > 0 and (old - new) / old > op.max_regression:
                    problems.append(f"{where}: {metric}@{op.k} {old:.4f} -> {new:.4f} "
                                    f"({(new - old) / old:+.1%}, allowed -{op.max_regression:.0%})")
    if problems:
        raise CheckFailed(f"{op.where()}check_relevance {op.collection!r}"
                          + (f" vs {op.against!r}" if op.against else "") + ": " + "; ".join(problems[:10]))
    return None


# --- --plan: what a re-embed costs ------------------------------------------------------------

def embed_cost(store: MilvusSchema, op, rows: int | None, options: dict | None = None) -> dict | None:
    """For ``--plan``: texts to embed, tokens (estimated on a sample of up to
    200 texts, :func:`ragrev.embeddings.estimate_tokens`), the share already
    in the embedding cache (same sample), and the time at the configured rate
    (the embedding's ``ragrev_rate()``, else ``[ragrev] embed_texts_per_second``
    / ``embed_tokens_per_minute``)."""
    from ragrev.embeddings import CachedEmbedder, content_hash, estimate_tokens

    phys = store.resolve(op.collection)
    if phys is None or rows is None:
        return None
    sample = [r.get(op.text_field) for page in store.scan(phys, batch=200, fields=(op.text_field,))
              for r in page][:200]
    per_text = sum(estimate_tokens(t) for t in sample) / len(sample) if sample else 0.0
    cached_share = 0.0
    embed = op.embed
    if isinstance(embed, CachedEmbedder) and sample:
        found = embed.lookup([content_hash(t) for t in sample])
        cached_share = sum(1 for t in sample if content_hash(t) in found) / len(sample)
        inner_rate = embed.ragrev_rate()
    else:
        inner_rate = embed.ragrev_rate() if callable(getattr(embed, "ragrev_rate", None)) else None
    rate = dict(inner_rate or {})
    options = options or {}
    for key in ("texts_per_second", "tokens_per_minute"):
        if rate.get(key) is None and options.get(f"embed_{key}") is not None:
            rate[key] = float(options[f"embed_{key}"])
    texts = round(rows * (1 - cached_share))
    tokens = round(texts * per_text)
    seconds = None
    if rate.get("texts_per_second") or rate.get("tokens_per_minute"):
        seconds = max(texts / rate["texts_per_second"] if rate.get("texts_per_second") else 0.0,
                      tokens * 60.0 / rate["tokens_per_minute"] if rate.get("tokens_per_minute") else 0.0)
    return {"texts": rows, "cached": rows - texts, "to_embed": texts, "tokens": tokens,
            "seconds": round(seconds, 1) if seconds is not None else None}
