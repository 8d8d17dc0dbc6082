"""How a Milvus store applies the vector operations on rows (docs/store-kinds.md):
``copy``, ``insert``/``upsert``, ``delete``, ``restore_rows``, the checks
``expect_count`` and ``check_recall``, and the row estimates for ``--plan``;
registered by (operation class, ``"milvus"``). The schema operations are in
:mod:`~ragrev.drivers.milvus.schema_steps`.

Every implementation is resumable: what a step decides (names of new, trash
and ledger collections, the mode of an inverse) goes into ``ctx.captured``
and is checkpointed before it acts; rows are walked in primary-key order and
the last key of each batch is checkpointed after it is written; every stage
checks whether it already happened ("rename if the source still exists",
"create if missing", upsert for a batch that may have been written).
"""
from __future__ import annotations

import itertools
import numbers
import random

import numpy as np

from ragrev.drivers.milvus.client import KIND, ZERO, lit
from ragrev.drivers.milvus.schema import MilvusSchema
from ragrev.errors import CheckFailed, OperationError
from ragrev.ops.vector import (
    AddField, AlterField, CheckRecall, CollectionState, Copy, Delete, DropField, ExpectCount, Insert, Reembed,
    RestoreRows, Upsert,
)
from ragrev.stores import estimator, implementation

# --- implementations: rows --------------------------------------------------------------------

def _pump(store: MilvusSchema, ctx, source: str, write, transform=None, filter=None, batch=1000, total=None,
          token_extra=None) -> int:
    """Read ``source`` in pk order from the checkpointed position, ``write(rows)``
    each transformed batch, checkpoint after each (see :func:`_ahead` for a
    writer with a ``note``)."""
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    done = int(token.get("done", 0))
    pk = store.pk_of(source)
    pairs = ((rows, transform(rows) if transform else rows)
             for rows in store.scan(source, filter, after=token.get("last"), batch=batch, pk=pk))
    if getattr(write, "note", None):
        pairs = _ahead(pairs, lambda pair: write.note(pair[1]), ctx)
    for rows, out in pairs:
        ctx.fence()
        if out:
            write(out)
        done += len(rows)
        ctx.checkpoint({**(token_extra or {}), "last": rows[-1][pk], "done": done}, done)
        ctx.progress(done, total)
    return done


def _ahead(batches, note, ctx):
    """``batches``, each one noted (``note(batch)`` records in ``ctx.captured``
    what the inverse needs: the keys it creates) before the batch before it
    is checkpointed: the journal knows of every batch before it is written,
    at the price of one checkpoint before the first, none per batch."""
    it = iter(batches)
    batch = next(it, None)
    if batch is None:
        return
    note(batch)
    ctx.checkpoint(ctx.resume_token, ctx.rows_done)
    while batch is not None:
        following = next(it, None)
        if following is not None:
            note(following)
        yield batch
        batch = following


def _row_mapper(fn, pk=None):
    def transform(rows):
        out = []
        for row in rows:
            new = fn(dict(row))
            if new is None:
                continue
            if pk is not None and new.get(pk) != row[pk]:
                raise OperationError(f"a transform changed the primary key {row[pk]!r} -> {new.get(pk)!r}")
            out.append(new)
        return out

    return transform


def _ledgers(store: MilvusSchema, ctx, collection: str) -> None:
    """Choose how the rows written into an existing ``collection`` will be
    undone: the keys created (see :func:`_ledger_writer`) and, if it was not
    empty, the rows overwritten (a ``saved`` trash collection)."""
    c = ctx.captured
    if "undo" in c:
        return
    c["undo"] = "ledger"
    if store.count(collection):
        c.update(created=store.trash_name(collection, "created"), saved=store.trash_name(collection, "saved"))
    ctx.checkpoint(ctx.resume_token, ctx.rows_done)


#: at most this many ranges of integer keys in a step's journal record (``created_keys``); past them, a key ledger
MAX_KEY_RANGES = 200


def _with_keys(ranges: list, keys) -> list | None:
    """``ranges`` (sorted, disjoint ``[first, last]`` pairs of integer keys)
    with ``keys`` added, adjacent ranges merged; None when a key is not an integer."""
    keys = list(keys)
    if not all(type(k) is int for k in keys):  # the common case, without an ABC check per key
        if any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in keys):
            return None
        keys = [int(k) for k in keys]
    runs: list = []  # the keys as runs of consecutive integers, then merged with the ranges
    for k in sorted(set(keys)):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    out: list = []
    for first, last in sorted([list(r) for r in ranges] + runs):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return out


def _fresh_writer(store: MilvusSchema, ctx, collection: str):
    """``write(rows)`` into a collection only this step writes to: inserts,
    except the first batch of a resumed step (it may have been written before
    the crash), which is upserted."""
    first = [bool(ctx.resuming)]

    def write(rows):
        if first[0]:
            first[0] = False
            store.c.upsert(collection, rows)
        else:
            store.c.insert(collection, rows)

    return write


def _key_ledger(store: MilvusSchema, name: str, cs: CollectionState) -> None:
    """A trash collection of primary keys (and the dummy vector Milvus wants)."""
    pk = cs.pk
    store.create(name, CollectionState(
        {pk: {**cs.fields[pk], "auto_id": False},
         "v": {"name": "v", "type": "FLOAT_VECTOR", "dim": len(ZERO), "primary": False, "auto_id": False,
               "max_length": None, "element_type": None, "max_capacity": None, "nullable": False,
               "default": None, "description": ""}},
        False, {"v": {"index_type": "FLAT", "metric_type": "L2", "params": {}}}))


def _ledger_writer(store: MilvusSchema, ctx, collection: str):
    """``write(rows)`` keeping what the inverse needs: for a collection this
    step created, nothing; for one that was empty, the keys written —
    as ranges of integer keys in the journal (``created_keys``, noted by
    ``write.note`` a batch ahead: see :func:`_ahead`), or, for other keys or
    past :data:`MAX_KEY_RANGES` ranges, in a ``created`` ledger collection;
    otherwise also each row it overwrites (``saved``) — once, before
    writing, so a redone batch keeps the true originals."""
    c = ctx.captured
    if c["undo"] == "drop":
        return _fresh_writer(store, ctx, collection)
    cs = store.collection_state(collection)
    pk = cs.pk
    if "saved" not in c:
        write_new = _fresh_writer(store, ctx, collection)
        if "created" in c:
            _key_ledger(store, c["created"], cs)

        def note(rows):
            keys = [r[pk] for r in rows]
            if "created" not in c:
                ranges = _with_keys(c.get("created_keys") or [], keys)
                if ranges is not None and len(ranges) <= MAX_KEY_RANGES:
                    c["created_keys"] = ranges
                    return
                c["created"] = store.trash_name(collection, "created")
                _key_ledger(store, c["created"], cs)
                ctx.checkpoint(ctx.resume_token, ctx.rows_done)
            # inserts (an upsert is a delete and an insert); a key twice in the ledger is deleted twice: harmless
            store.c.insert(c["created"], [{pk: k, "v": ZERO} for k in keys])

        write_new.note = note
        return write_new
    _key_ledger(store, c["created"], cs)
    store.create(c["saved"], cs, trash=True)

    def write(rows):
        keys = [r[pk] for r in rows]
        known = {r[pk] for r in store.get(c["saved"], keys, [pk])} | {r[pk] for r in store.get(c["created"], keys, [pk])}
        todo = [k for k in keys if k not in known]
        if todo:
            existing = store.get(collection, todo)
            if existing:
                store.c.upsert(c["saved"], existing)
            there = {r[pk] for r in existing}
            new = [{pk: k, "v": ZERO} for k in dict.fromkeys(todo) if k not in there]
            if new:
                store.c.upsert(c["created"], new)
        store.c.upsert(collection, rows)

    return write


@implementation(Copy, KIND)
def _impl_copy(store: MilvusSchema, op: Copy, ctx):
    src = store.need(op, op.source)
    c = ctx.captured
    if "undo" not in c and store.resolve(op.target) is None:
        c["undo"] = "drop"
        ctx.checkpoint(ctx.resume_token, ctx.rows_done)
    if c.get("undo") == "drop":
        store.create(op.target, store.collection_state(src))
    else:
        _ledgers(store, ctx, op.target)
    target = store.resolve(op.target)
    if target == src:
        raise op.fail(f"source and target are the same collection {src!r}")
    write = _ledger_writer(store, ctx, target)
    total = None if op.filter else store.count(src)
    transform = _row_mapper(op.transform) if op.transform else None

    def first_pass():
        if op.bulk:  # a Milvus server imports Parquet files: ragrev.drivers.milvus.bulk
            from ragrev.drivers.milvus import bulk as milvus_bulk

            rows = milvus_bulk.bulk_pass(store, op, ctx, src, target, transform, milvus_bulk.staging_of(op, ctx),
                                         op.filter)
            if rows is not None:
                return rows
        return _pump(store, ctx, src, write, transform, op.filter, op.batch_size, total)

    if op.catch_up:  # rows the application changes meanwhile: ragrev.drivers.milvus.online
        if c.get("undo") != "drop" and "catch_up" not in c:
            raise op.fail(f"catch_up= copies into a collection the copy creates; {op.target!r} exists")
        from ragrev.drivers.milvus import online as milvus_online

        return milvus_online.copy_with_catch_up(store, op, ctx, op.source, src, target, first_pass, transform,
                                                op.filter)
    return first_pass()


@implementation(Insert, KIND)
@implementation(Upsert, KIND)
def _impl_write_rows(store: MilvusSchema, op, ctx):
    phys = store.need(op, op.collection)
    if op.rows is None:
        return _update_where(store, op, ctx, phys)
    _ledgers(store, ctx, phys)
    write = _ledger_writer(store, ctx, phys)
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    done = int(token.get("done", 0))
    rows = iter(op.rows() if callable(op.rows) else op.rows)
    total = len(op.rows) if isinstance(op.rows, (list, tuple)) else None
    rows = itertools.islice(rows, done, None)
    batches = iter(lambda: list(itertools.islice(rows, op.batch_size)), [])
    if getattr(write, "note", None):
        batches = _ahead(batches, write.note, ctx)
    for batch in batches:
        ctx.fence()
        write(batch)
        done += len(batch)
        ctx.checkpoint({"done": done}, done)
        ctx.progress(done, total)
    return done


def _save_matching(store: MilvusSchema, op, ctx, phys: str) -> str:
    """Phase one of delete / upsert-by-filter: keep the matching rows in the trash."""
    c = ctx.captured
    if "saved" not in c:
        c.update(undo="ledger", saved=store.trash_name(phys, "saved"))
        ctx.checkpoint({"phase": "save"}, 0)
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    if token.get("phase", "save") == "save":
        store.create(c["saved"], store.collection_state(phys), trash=True)
        _pump(store, ctx, phys, _fresh_writer(store, ctx, c["saved"]), filter=op.filter,
              batch=op.batch_size, token_extra={"phase": "save"})
        ctx.checkpoint({"phase": "apply"}, 0)
    return c["saved"]


def _update_where(store: MilvusSchema, op: Upsert, ctx, phys: str):
    saved = _save_matching(store, op, ctx, phys)
    pk = store.pk_of(phys)
    fn = op.transform or (lambda row: {**row, **op.values})
    return _pump(store, ctx, saved, lambda rows: store.c.upsert(phys, rows), _row_mapper(fn, pk),
                 batch=op.batch_size, token_extra={"phase": "apply"})


@implementation(Delete, KIND)
def _impl_delete(store: MilvusSchema, op: Delete, ctx):
    phys = store.need(op, op.collection)
    saved = _save_matching(store, op, ctx, phys)
    pk = store.pk_of(phys)
    return _pump(store, ctx, saved, lambda rows: store.c.delete(phys, ids=[r[pk] for r in rows]),
                 batch=op.batch_size, token_extra={"phase": "apply"})


@implementation(RestoreRows, KIND)
def _impl_restore_rows(store: MilvusSchema, op: RestoreRows, ctx):
    phys = store.need(op, op.collection)
    pk = store.pk_of(phys)
    ranges = getattr(op, "created_keys", None) or []
    phases = (["created_keys"] if ranges else []) + [k for k in ("created", "saved") if getattr(op, k)]
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    start = phases.index(token["phase"]) if token.get("phase") in phases else 0
    done = ctx.rows_done if token else 0
    for i, phase in enumerate(phases[start:], start):
        after = token.get("last") if i == start else None
        if phase == "created_keys":  # delete the ranges of keys it created, one call each
            for j in range(0 if after is None else after + 1, len(ranges)):
                ctx.fence()
                first, last = ranges[j]
                res = store.c.delete(phys, filter=f"{pk} >= {lit(first)} and {pk} <= {lit(last)}")
                done += int((res or {}).get("delete_count", 0) if isinstance(res, dict) else 0)
                ctx.checkpoint({"phase": phase, "last": j}, done)
            continue
        if phase == "saved":  # write back the rows it overwrote or deleted
            write, fields = (lambda rows: store.c.upsert(phys, rows)), ("*",)
        else:                 # delete the keys it created
            write, fields = (lambda rows: store.c.delete(phys, ids=[r[pk] for r in rows])), (pk,)
        for rows in store.scan(getattr(op, phase), after=after, batch=op.batch_size, fields=fields, pk=pk):
            ctx.fence()
            write(rows)
            done += len(rows)
            ctx.checkpoint({"phase": phase, "last": rows[-1][pk]}, done)
    return done


# --- implementations: checks -------------------------------------------------------------------

@implementation(ExpectCount, KIND)
def _impl_expect_count(store: MilvusSchema, op: ExpectCount, ctx):
    n = store.count(store.need(op, op.collection), op.filter)
    reference = store.count(store.need(op, op.same_as), op.filter) if op.same_as is not None else None
    ctx.captured["count"] = n
    problem = op.verdict(n, reference)
    if problem:
        raise CheckFailed(f"{op.where()}expect_count: {problem}")
    return None


def _scores(metric: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Similarity (higher is nearer) of each query to each vector."""
    if metric == "COSINE":
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return q @ v.T
    if metric == "IP":
        return queries @ vectors.T
    return -(np.sum(queries ** 2, axis=1)[:, None] - 2 * queries @ vectors.T + np.sum(vectors ** 2, axis=1)[None, :])


def _search(store: MilvusSchema, name: str, field: str, queries: np.ndarray, k: int, filter, params) -> list[list]:
    out = []
    for i in range(0, len(queries), 100):
        res = store.c.search(name, data=queries[i:i + 100].tolist(), anns_field=field, limit=k, filter=filter or "",
                             search_params={"params": dict(params or {})}, output_fields=[])
        out += [[hit["id"] for hit in hits] for hits in res]
    return out


def _sample_queries(store: MilvusSchema, op: CheckRecall, phys: str, pk: str, vf: str) -> np.ndarray:
    if isinstance(op.queries, (list, tuple)):
        return np.asarray(op.queries, dtype=np.float32)
    rng, chosen, seen = random.Random(op.seed), [], 0
    for rows in store.scan(phys, op.filter, batch=5000, fields=(pk,), pk=pk):
        for r in rows:
            seen += 1
            if len(chosen) < op.queries:
                chosen.append(r[pk])
            else:
                j = rng.randrange(seen)
                if j < op.queries:
                    chosen[j] = r[pk]
    by_pk = {r[pk]: r[vf] for r in store.get(phys, chosen, (pk, vf))}
    return np.asarray([by_pk[p] for p in chosen if p in by_pk], dtype=np.float32)


@implementation(CheckRecall, KIND)
def _impl_check_recall(store: MilvusSchema, op: CheckRecall, ctx):
    phys = store.need(op, op.collection)
    cs = store.collection_state(phys)
    vf, pk = op.vector_field(cs, op.collection, op.field), cs.pk
    queries = _sample_queries(store, op, phys, pk, vf)
    if not len(queries):
        raise CheckFailed(f"{op.where()}check_recall: {op.collection!r} has no rows to query")
    k = min(op.k, store.count(phys, op.filter))
    if k == 0:
        raise CheckFailed(f"{op.where()}check_recall: no rows of {op.collection!r} match {op.filter!r}")
    ann = _search(store, phys, vf, queries, k, op.filter, op.search_params)
    if op.against == "exact":  # stream every vector, keep each query's k best exact scores
        metric = str(op.metric_type or cs.indexes[vf]["metric_type"]).upper()
        best = np.zeros((len(queries), 0), dtype=np.float32)
        for rows in store.scan(phys, op.filter, batch=5000, fields=(pk, vf), pk=pk):
            s = _scores(metric, queries, np.asarray([r[vf] for r in rows], dtype=np.float32))
            best = np.concatenate([best, s], axis=1)
            if best.shape[1] > k:
                best = -np.partition(-best, k - 1, axis=1)[:, :k]
        kth = best.min(axis=1)
        found = {r[pk]: r[vf] for r in store.get(phys, {i for hits in ann for i in hits}, (pk, vf))}
        hits = 0
        for qi, res in enumerate(ann):  # a result counts when it is as near as the k-th exact neighbour (ties)
            if res:
                s = _scores(metric, queries[qi:qi + 1], np.asarray([found[i] for i in res], dtype=np.float32))[0]
                hits += int(np.sum(s >= kth[qi] - 1e-5 * max(1.0, abs(float(kth[qi])))))
        recall = hits / (len(queries) * k)
        reference = f"exact {metric} search"
    else:
        other = store.need(op, op.against)
        truth = _search(store, other, vf, queries, k, op.filter, op.search_params)
        recall = sum(len(set(a) & set(t)) / max(1, len(t)) for a, t in zip(ann, truth)) / len(queries)
        reference = f"{op.against!r}"
    ctx.captured["recall"] = round(recall, 4)
    if recall < op.min_recall:
        raise CheckFailed(f"{op.where()}check_recall: recall@{k} of {op.collection}.{vf} is {recall:.3f} against "
                          f"{reference} on {len(queries)} queries, below {op.min_recall}")
    return None


# --- estimates for --plan -------------------------------------------------------------------------

def _count_or_none(store: MilvusSchema, name: str, filter=None):
    phys = store.resolve(name)
    return store.count(phys, filter) if phys else None


for _cls in (AddField, DropField, AlterField, Reembed):
    estimator(_cls, KIND)(lambda store, op: _count_or_none(store, op.collection))
estimator(Copy, KIND)(lambda store, op: _count_or_none(store, op.source, op.filter))
estimator(Delete, KIND)(lambda store, op: _count_or_none(store, op.collection, op.filter))
estimator(Insert, KIND)(lambda store, op: len(op.rows) if isinstance(op.rows, (list, tuple)) else None)
estimator(Upsert, KIND)(lambda store, op: len(op.rows) if isinstance(op.rows, (list, tuple))
                        else _count_or_none(store, op.collection, op.filter) if op.filter else None)
