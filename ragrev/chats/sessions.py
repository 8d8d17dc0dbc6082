"""``remap_sessions``, ``merge_from`` / ``unmerge`` and ``check_sequence``
over a :class:`~ragrev.chats.Backend`.

remap_sessions
    The pairs ``(old, new)`` are computed from the sessions in the store and
    checked first (two sessions onto one id, a new id that already exists, a
    chain or swap: refused before anything changes); the inverse mapping is
    written to ``captured`` and checkpointed *before* the first rename, so a
    rerun after a crash renames with the same pairs. Archived sessions
    (pointer records) keep their ids: restore them first.

merge_from
    Plans first: for each source session (in order), with ``dedupe`` drop
    messages repeated within it; if the same session id exists here and
    shares a message with it (same content hash: every field but the id), it
    is the same conversation and its new messages join it; otherwise
    ``on_conflict`` decides (``"prefix"``: the session becomes ``prefix + id``;
    ``"skip"``: left out). Messages whose content (with their new session) is
    already here are dropped. A message id already taken here gets a new one
    (a new ObjectId, the next integer, or ``prefix + id``). The plan (source id,
    new id, new session) is checkpointed before inserting, then messages are
    inserted in batches, each skipping ids already present, so a rerun never
    duplicates. ``captured["ids"]`` (the inserted ids) is what ``unmerge``
    deletes.

check_sequence
    Walks every session in order-key order: order keys strictly increasing
    (equal keys are duplicates), times (``ts_key``, when it is another field)
    never going back, sequence numbers (``seq_key``) consecutive. Fails with
    the number of problems and the first one.
"""
from __future__ import annotations

from ragrev.chats import backend_for
from ragrev.chats.archive import to_utc
from ragrev.chats.codec import content_hash, decode_key, encode_key, key_text
from ragrev.errors import CheckFailed, OperationError, StepFailed
from ragrev.stores import chunks

BATCH = 1000


def _chunks(items, size=BATCH):
    return chunks(items, size)


# --- remap_sessions ------------------------------------------------------------------------

def remap(be, op, ctx):
    if not be.exists():
        raise OperationError(f"{op.where()}remap_sessions: no collection {be.collection!r} in store {op.store!r}")
    if ctx.resuming and "inverse" in ctx.captured:
        pairs = [(decode_key(o), decode_key(n)) for n, o in ctx.captured["inverse"]]
    else:
        pairs = _remap_pairs(be, op)
        ctx.captured["inverse"] = [[encode_key(n), encode_key(o)] for o, n in pairs]
        ctx.checkpoint({"renamed": 0}, 0)
    rows = ctx.rows_done if ctx.resuming else 0
    for i, (old, new) in enumerate(pairs, 1):
        rows += be.rename_session(old, new)
        if i % 100 == 0 or i == len(pairs):
            ctx.checkpoint({"renamed": i}, rows)
            ctx.progress(i, len(pairs))
    return rows


def _remap_pairs(be, op):
    existing = be.sessions()
    known = {key_text(s) for s in existing}
    if op.pairs is not None:
        pairs = [(decode_key(o), decode_key(n)) for o, n in op.pairs]
        pairs = [(o, n) for o, n in pairs if key_text(o) in known]
    else:
        pairs = []
        for s in existing:
            new = op.mapping.get(s) if isinstance(op.mapping, dict) else op.mapping(s)
            if new is not None and key_text(new) != key_text(s):
                pairs.append((s, new))
    sources = {key_text(o) for o, _ in pairs}
    seen = {}
    for old, new in pairs:
        k = key_text(new)
        if k in seen:
            raise StepFailed(f"remap_sessions {be.collection!r}: sessions {seen[k]} and {key_text(old)} both map to "
                             f"{k}; nothing was changed")
        seen[k] = key_text(old)
        if k in sources:
            raise StepFailed(f"remap_sessions {be.collection!r}: {k} is both renamed and a new name (a chain or swap); "
                             "do it in two steps; nothing was changed")
        if k in known:
            raise StepFailed(f"remap_sessions {be.collection!r}: new session id {k} (for {key_text(old)}) already "
                             "exists; nothing was changed")
    return pairs


# --- merge_from / unmerge ------------------------------------------------------------------

def _source(be, op, ctx):
    """(source backend, label, close function)."""
    configured = getattr(getattr(ctx, "config", None), "stores", {}) or {}
    store_name, coll = None, None
    if op.source and "." in op.source:
        store_name, coll = op.source.split(".", 1)
    elif op.source and op.source in configured:
        store_name = op.source
    elif op.source:
        coll = op.source
    coll = op.source_collection or coll or be.collection
    store_name = store_name or op.store
    if store_name == op.store and coll == be.collection:
        raise OperationError(f"{op.where()}merge_from: the source is the target collection {coll!r}")
    close = None
    if store_name == op.store:
        store = be.store
    elif store_name in (ctx.stores or {}):
        store = ctx.stores[store_name]
    elif store_name in configured:
        from ragrev.stores import open_store

        store = open_store(ctx.config.store(store_name))
        store.connect()
        close = store.close
    else:
        raise OperationError(f"{op.where()}merge_from: unknown store {store_name!r}; the configuration defines: "
                             f"{', '.join(configured) or 'none'}")
    src = backend_for(store, coll, op.keys)
    if not src.exists():
        if close:
            close()
        raise OperationError(f"{op.where()}merge_from: no collection {coll!r} in store {store_name!r}")
    label = coll if store_name == op.store else f"{store_name}.{coll}"
    return src, label, close or (lambda: None)


def merge(be, op, ctx):
    if not be.exists():
        raise OperationError(f"{op.where()}merge_from: no collection {be.collection!r} in store {op.store!r}")
    src, label, close = _source(be, op, ctx)
    try:
        if ctx.resuming and "plan" in ctx.captured:
            plan = [tuple(decode_key(x) for x in row) for row in ctx.captured["plan"]]
        else:
            plan = _merge_plan(be, src, op, op.prefix if op.prefix is not None else f"{label}:")
            ctx.captured["plan"] = [[encode_key(x) for x in row] for row in plan]
            ctx.captured["ids"] = [encode_key(new_id) for _, new_id, _ in plan]
            ctx.checkpoint({"inserted": 0}, 0)
        done = 0
        for batch in _chunks(plan):
            docs = {key_text(d[src.id_key]): d for d in src.existing([row[0] for row in batch])}
            present = {key_text(d[be.id_key]) for d in be.existing([row[1] for row in batch])}
            out = []
            for src_id, new_id, session in batch:
                doc = docs.get(key_text(src_id))
                if doc is None:
                    raise StepFailed(f"merge_from {label}: message {key_text(src_id)} vanished from the source "
                                     "while merging; run again")
                if key_text(new_id) not in present:
                    out.append(_moved(doc, src, be, new_id, session))
            be.insert(out)
            done += len(batch)
            ctx.checkpoint({"inserted": done}, done)
            ctx.progress(done, len(plan))
        ctx.captured.pop("plan", None)
        return done
    finally:
        close()


def _moved(doc, src, be, new_id, session):
    """``doc`` with its new id and session, field order kept."""
    out = {}
    for k, v in doc.items():
        if k == src.id_key:
            out[be.id_key] = new_id
        elif k == src.session_key:
            out[be.session_key] = session
        else:
            out[k] = v
    out.setdefault(be.id_key, new_id)
    out.setdefault(be.session_key, session)
    return out


def _grouped(messages, session_key):
    group, current = [], object()
    for doc in messages:
        s = doc.get(session_key)
        if group and key_text(s) != key_text(current):
            yield current, group
            group = []
        current = s
        group.append(doc)
    if group:
        yield current, group


def _merge_plan(be, src, op, prefix):
    target_sessions = {key_text(s) for s in be.sessions()}
    plan = []
    for session, msgs in _grouped(src.messages(), src.session_key):
        if op.dedupe:
            seen, unique = set(), []
            for m in msgs:
                h = content_hash(m, src.id_key)
                if h not in seen:
                    seen.add(h)
                    unique.append(m)
            msgs = unique
        dest, here = session, set()
        if key_text(session) in target_sessions:
            here = _hashes(be, session)
            shared = op.dedupe and any(_as(m, src, be, session) in here for m in msgs)
            if not shared:
                if op.on_conflict == "skip":
                    continue
                if not isinstance(session, str):
                    raise StepFailed(f"merge_from: session {key_text(session)} exists in both and is not a string, so "
                                     "it cannot be prefixed; use on_conflict='skip' or remap_sessions first")
                dest = f"{prefix}{session}"
                here = _hashes(be, dest) if key_text(dest) in target_sessions else set()
        if op.dedupe:
            msgs = [m for m in msgs if _as(m, src, be, dest) not in here]
        plan += [(m[src.id_key], None, dest) for m in msgs]
    return _assign_ids(be, plan, prefix)


def _hashes(be, session):
    return {content_hash(m, be.id_key) for m in be.messages([session])}


def _as(doc, src, be, session) -> str:
    """Content hash of ``doc`` as it would be stored here in ``session``."""
    return content_hash(_moved(doc, src, be, None, session), be.id_key)


def _assign_ids(be, plan, prefix):
    """Keep source ids unless taken here; else a new ObjectId, the next integer, or ``prefix + id``."""
    taken = set()
    for chunk in _chunks([row[0] for row in plan]):
        taken |= {key_text(d[be.id_key]) for d in be.existing(chunk)}
    next_int = None
    source_ids = {key_text(row[0]) for row in plan}
    out = []
    for src_id, _, session in plan:
        new = src_id
        if key_text(src_id) in taken:
            if type(src_id).__name__ == "ObjectId":
                from bson import ObjectId

                new = ObjectId()
            elif isinstance(src_id, int) and not isinstance(src_id, bool):
                if next_int is None:
                    ints = [r[0] for r in plan if isinstance(r[0], int)]
                    next_int = max([be.max_int_id() or 0, *ints]) + 1
                new, next_int = next_int, next_int + 1
            elif isinstance(src_id, str):
                new, n = f"{prefix}{src_id}", 1
                while be.existing([new]) or key_text(new) in source_ids:
                    n += 1
                    new = f"{prefix}{src_id}~{n}"
            else:
                raise StepFailed(f"merge_from: message id {key_text(src_id)} is taken and ragrev cannot make a new "
                                 f"{type(src_id).__name__}")
        out.append((src_id, new, session))
    return out


def unmerge(be, op, ctx):
    ids = [decode_key(i) for i in op.ids or []]
    rows = ctx.rows_done if ctx.resuming else 0
    for n, chunk in enumerate(_chunks(ids), 1):
        rows += be.delete_ids(chunk)
        ctx.checkpoint({"chunks": n}, rows)
        ctx.progress(min(n * BATCH, len(ids)), len(ids))
    return rows


# --- check_sequence ------------------------------------------------------------------------

def _comparable(value):
    t = to_utc(value) if not isinstance(value, (int, float)) else None
    return t if t is not None else value


def check_sequence(be, op, ctx):
    if not be.exists():
        raise CheckFailed(f"{op.where()}check_sequence: no collection {be.collection!r} in store {op.store!r}")
    problems, bad_sessions, sessions, checked = [], set(), 0, 0
    separate_ts = be.ts_key != be.order_key
    for session, msgs in _grouped(be.messages(), be.session_key):
        sessions += 1
        prev = None
        for doc in msgs:
            checked += 1
            where = f"session {key_text(session)}, message {key_text(doc.get(be.id_key))}"
            found = _problems(be, doc, prev, separate_ts)
            if found:
                bad_sessions.add(key_text(session))
                problems += [f"{where}: {p}" for p in found]
            prev = doc
        ctx.progress(checked, None)
    if problems:
        raise CheckFailed(f"{op.where()}check_sequence {be.collection!r}: {len(problems)} problem(s) in "
                          f"{len(bad_sessions)} of {sessions} session(s); first: {problems[0]}")
    return checked


def _problems(be, doc, prev, separate_ts) -> list[str]:
    out = []
    order = doc.get(be.order_key)
    if order is None:
        out.append(f"no {be.order_key}")
    elif prev is not None and prev.get(be.order_key) is not None:
        a, b = _comparable(prev.get(be.order_key)), _comparable(order)
        try:
            if not a < b:
                verb = "repeats" if a == b else "is not after"
                out.append(f"{be.order_key} {order!s} {verb} {prev.get(be.order_key)!s}")
        except TypeError:
            out.append(f"{be.order_key} {order!r} cannot be compared with {prev.get(be.order_key)!r}")
    if separate_ts:
        ts = doc.get(be.ts_key)
        if ts is None:
            out.append(f"no {be.ts_key}")
        elif prev is not None and prev.get(be.ts_key) is not None:
            try:
                if _comparable(ts) < _comparable(prev.get(be.ts_key)):
                    out.append(f"{be.ts_key} {ts!s} goes back from {prev.get(be.ts_key)!s}")
            except TypeError:
                out.append(f"{be.ts_key} {ts!r} cannot be compared with {prev.get(be.ts_key)!r}")
    if be.seq_key:
        seq = doc.get(be.seq_key)
        if not isinstance(seq, int) or isinstance(seq, bool):
            out.append(f"{be.seq_key} {seq!r} is not an integer")
        elif prev is not None and isinstance(prev.get(be.seq_key), int):
            p = prev.get(be.seq_key)
            if seq == p:
                out.append(f"{be.seq_key} {seq} is a duplicate")
            elif seq != p + 1:
                out.append(f"{be.seq_key} {seq} follows {p} ({'a gap' if seq > p else 'out of order'})")
    return out


def estimate_all(be, op):
    return be.count()


def estimate_unmerge(be, op):
    return len(op.ids or [])
