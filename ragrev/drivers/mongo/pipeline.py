"""How a MongoDB store runs ``aggregate_into`` (:mod:`ragrev.ops.document_pipeline`):
one ``aggregate`` with ``$merge`` on the server, then, with ``catch_up=``,
the rounds carrying the writes that arrived meanwhile.

Catch-up, as recorded in ``ctx.captured["catch_up"]`` (a killed step resumes
in the phase it was in):

1. Before the pipeline runs, a change stream is opened on the source and its
   resume token kept (``mode: "changes"``); on a server without change
   streams, with ``catch_up="field"``, ``mark`` (``time.time()``) is kept
   instead (``mode: "watermark"``).
2. Rounds: the ``_id`` values changed since the token (or whose watermark is
   ``>= mark - catch_up_skew``) are collected, deleted from the target, and
   the pipeline runs over them into it again (so those it no longer yields,
   deleted, tombstoned or filtered out, stay deleted). The token (or the
   round's start as the next ``mark``) is checkpointed after each round.
   The rounds stop when one finds fewer than ``catch_up_threshold`` ids, or
   after ``catch_up_rounds``.
3. Watermark mode only: the target's ``_id`` values are read in pages, each
   looked up in the source, and those the source no longer has are deleted
   (memory: one page).
"""
from __future__ import annotations

import datetime as dt
import time

from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

from ragrev.errors import OperationError
from ragrev.ops.document_pipeline import AggregateInto
from ragrev.stores import estimator, implementation
from ragrev.drivers.mongo.steps import KIND, _coll, _fail

#: ids per ``$in`` list (a round's aggregates, the deletes' look-ups): SecantusDB's time for one grows
#: with the list's square (3,000 ids: 47 s; 500: 1.3 s), so short lists (2,000 ids in 0.4 s by 50, 1 s by 100)
ROUND_CHUNK = 50
#: how long a drained change stream waits for more before a round ends (ms)
STREAM_WAIT_MS = 200
#: change stream events that name a document of the source
DOC_EVENTS = ("insert", "update", "replace", "delete")


@implementation(AggregateInto, KIND)
def aggregate_into(store, op, ctx):
    coll = _coll(store, op)
    if op.catch_up is True and "catch_up" not in ctx.captured:  # say so before anything is created
        probe = _open_stream(op, coll)
        if probe is None:
            raise _no_streams(op)
        probe.close()
    if not ctx.captured.get("created"):
        if store.collection_options(op.into) is not None:
            raise _fail(op, f"into={op.into!r} already exists: aggregate_into writes a new collection", OperationError)
        ctx.captured["created"] = True
        ctx.checkpoint(None, 0)
    if store.collection_options(op.into) is None:
        try:
            store.db.create_collection(op.into)
        except CollectionInvalid:
            pass
    if not op.catch_up:
        _run(op, coll, op.stages())
        done = store.db[op.into].count_documents({})
        ctx.checkpoint(None, done)
        return done
    return _with_catch_up(store, op, ctx, coll)


def _run(op, coll, stages):
    try:
        return list(coll.aggregate(stages, allowDiskUse=True))
    except PyMongoError as e:
        details = getattr(e, "details", None) or {}
        raise _fail(op, f"the pipeline failed on the server: {details.get('errmsg', str(e))}") from None


def _open_stream(op, coll, token=None):
    """A change stream on ``coll`` (resumed after ``token``), or None when the server has none."""
    try:
        return coll.watch(resume_after=token, max_await_time_ms=STREAM_WAIT_MS)
    except OperationFailure as e:
        if token is not None and e.code not in (40573, 20):  # history lost: the caller starts over
            return "lost"
        return None


def _no_streams(op):
    return _fail(op, "catch_up=True needs change streams, which this server does not support (a standalone "
                     "server, such as ragrev's embedded secantus://); give catch_up= a watermark field instead",
                 OperationError)


def _with_catch_up(store, op, ctx, coll):
    c = ctx.captured
    cu = c.get("catch_up")
    stream = None
    if cu is not None and cu["mode"] == "changes":
        stream = _open_stream(op, coll, cu["token"])
        if stream is None or stream == "lost":  # the token is too old (or the server changed): start over
            cu, stream = None, None
    if cu is None:
        stream = _open_stream(op, coll)
        if stream is not None:
            cu = {"mode": "changes", "token": stream.resume_token}
        elif op.catch_up is True:
            raise _no_streams(op)
        else:
            cu = {"mode": "watermark", "field": op.catch_up, "mark": time.time()}
        cu.update(phase="copy", round=0, rounds=[])
        c["catch_up"] = cu
        ctx.checkpoint(None, 0)
    try:
        if cu["phase"] == "copy":
            _run(op, coll, op.stages())
            cu = _set(c, phase="rounds")
            ctx.checkpoint(None, store.db[op.into].count_documents({}))
        while cu["phase"] == "rounds":
            if cu["round"] >= op.catch_up_rounds:
                cu = _set(c, phase="deletes")
                break
            started = time.time()
            if stream is not None:
                ids, token = _drain(op, stream, store.db)
            else:
                ids, token = _since_mark(op, coll, cu["mark"]), None
            _carry(store, op, coll, ids)
            cu = _set(c, round=cu["round"] + 1, rounds=cu["rounds"] + [len(ids)],
                      **({"token": token} if token is not None else {"mark": started}),
                      **({"phase": "deletes"} if len(ids) < op.catch_up_threshold else {}))
            ctx.checkpoint(None, ctx.rows_done + len(ids))
            ctx.progress(ctx.rows_done, None)
        if cu["phase"] == "deletes":
            deleted = _delete_missing(store, op, coll) if cu["mode"] == "watermark" else 0
            cu = _set(c, phase="done", deleted=deleted)
    finally:
        if stream is not None:
            stream.close()
    done = store.db[op.into].count_documents({})
    ctx.checkpoint(None, done)
    return done


def _set(c: dict, **changes) -> dict:
    """A new ``captured["catch_up"]`` (never changed in place: a checkpoint may hold the previous one)."""
    c["catch_up"] = {**c["catch_up"], **changes}
    return c["catch_up"]


def _drain(op, stream, db) -> tuple[list, dict]:
    """The distinct source ``_id`` values of the events up to now, and the token after them.

    "Now" is the server's operation time when the round starts: under steady
    writes the stream is never empty, so reading until it is would not end."""
    upto = db.command("ping").get("operationTime")  # a replica set's cluster time (absent: read until empty)
    seen: dict = {}
    while True:
        try:
            change = stream.try_next()
        except PyMongoError as e:
            raise _fail(op, f"the change stream failed: {e}") from None
        if change is None:
            break
        kind = change.get("operationType")
        if kind in DOC_EVENTS:
            seen[repr(change["documentKey"]["_id"])] = change["documentKey"]["_id"]
        elif kind in ("drop", "rename", "dropDatabase", "invalidate"):
            raise _fail(op, f"the source's change stream ended ({kind}) during the catch-up")
        if upto is not None and change.get("clusterTime") is not None and change["clusterTime"] >= upto:
            break
    return list(seen.values()), stream.resume_token


def _since_mark(op, coll, mark: float) -> list:
    """The ``_id`` values whose watermark is ``>= mark - catch_up_skew`` (epoch seconds or dates)."""
    since = mark - op.catch_up_skew
    sample = coll.find_one({op.catch_up: {"$type": "date"}}, {op.catch_up: 1})
    bound = dt.datetime.fromtimestamp(since, dt.timezone.utc) if sample is not None else since
    return [d["_id"] for d in coll.find({op.catch_up: {"$gte": bound}}, {"_id": 1})]


def _carry(store, op, coll, ids: list) -> None:
    """Rerun the pipeline over ``ids`` into the target: their documents are
    deleted from it, then merged again (those the pipeline no longer yields
    stay deleted). The target is not in service yet; a round killed between
    the two is redone from the same token or mark."""
    target = store.db[op.into]
    for i in range(0, len(ids), ROUND_CHUNK):
        chunk = ids[i:i + ROUND_CHUNK]
        target.delete_many({"_id": {"$in": chunk}})
        _run(op, coll, op.stages(chunk))


def _delete_missing(store, op, coll) -> int:
    """Delete the target documents whose ``_id`` the source no longer has (tombstoned counts as gone)."""
    target, deleted, page = store.db[op.into], 0, []

    def flush() -> int:
        query = {"_id": {"$in": page}}
        if op.tombstone:
            query[op.tombstone] = {"$ne": True}
        there = {repr(d["_id"]) for d in coll.find(query, {"_id": 1})}
        gone = [k for k in page if repr(k) not in there]
        return target.delete_many({"_id": {"$in": gone}}).deleted_count if gone else 0

    for d in target.find({}, {"_id": 1}, batch_size=ROUND_CHUNK):
        page.append(d["_id"])
        if len(page) >= ROUND_CHUNK:
            deleted += flush()
            page = []
    return deleted + (flush() if page else 0)


@estimator(AggregateInto, KIND)
def _estimate(store, op):
    if store.collection_options(op.collection) is None:
        return None
    return store.db[op.collection].count_documents(op.filter or {})
