"""How a MongoDB store applies the document operations on documents
(:mod:`ragrev.ops.document_data`): ``update_many`` on the server;
``transform`` and ``insert`` in ``_id`` order or stream order, batch by
batch, resumable (see :mod:`ragrev.drivers.mongo.steps` for the rules);
``delete_inserted``. Also the ``_id``-ordered batches ``add_field(fill=)`` reads."""
from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import time

import bson
from bson import Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, CursorNotFound, PyMongoError

from ragrev.errors import OperationError
from ragrev.ops import document_data as m
from ragrev.stores import estimator, implementation
from ragrev.drivers.mongo.common import KIND, SAMPLE, _and, _bulk, _coll, _count, _fail, _ids, _token

#: a transform batch's saved documents are cut at about this many bytes (BSON documents max 16 MiB)
PENDING_LIMIT = 8 * 1024 * 1024
_RAW = CodecOptions(document_class=RawBSONDocument)


# --- _id order across BSON types ------------------------------------------------------------------

#: BSON comparison order of the types an _id can have, as ``$type`` aliases
_ORDER = [["minKey"], ["null"], ["int", "long", "double", "decimal"], ["string", "symbol"], ["object"],
          ["binData"], ["objectId"], ["bool"], ["date"], ["timestamp"], ["maxKey"]]


def _rank(value) -> int:
    from bson import Binary, Decimal128, MaxKey, MinKey, ObjectId, Timestamp

    checks = [(MinKey, 0), (type(None), 1), (bool, 7), ((int, float, Decimal128), 2), (str, 3), (dict, 4),
              ((bytes, Binary), 5), (ObjectId, 6), (_dt.datetime, 8), (Timestamp, 9), (MaxKey, 10)]
    for types, rank in checks:
        if isinstance(value, types):
            return rank
    return 10


def later_types(after) -> list[str]:
    """``$type`` aliases of the _id types that sort after ``after``'s."""
    return [alias for aliases in _ORDER[_rank(after) + 1:] for alias in aliases]



# --- data ---------------------------------------------------------------------------------------------------

@implementation(m.UpdateMany, KIND)
def update_many(store, op, ctx):
    coll = _coll(store, op)
    try:
        result = coll.update_many(op.filter, op.update)
    except PyMongoError as e:
        raise _fail(op, f"update failed: {e}") from None
    return result.modified_count


@implementation(m.Transform, KIND)
def transform(store, op, ctx):
    """Batches: compute the new documents, save them with the batch's ids in
    the trash (one document per batch), replace them, checkpoint, then drop
    the saved copy. A batch saved but not checkpointed is replayed."""
    coll = _coll(store, op)
    if op.ids_from is not None and store.collection_options(op.ids_from) is None:
        raise _fail(op, f"trash collection {op.ids_from!r} is gone (purged?)")
    if op.ids_from is not None:  # the step being undone failed with a batch saved, maybe partly written: finish it
        source = store.db[op.ids_from]
        for batch in source.find({"pending": {"$exists": True}}):
            _replace(op, coll, bson.decode_all(batch["pending"], _RAW))
            source.update_one({"_id": batch["_id"]}, {"$unset": {"pending": ""}})
    tok = _token(ctx, f"{op.collection}.transform", seq=0)
    trash = store.db[tok["trash"]]
    seq, done = tok["seq"], (ctx.rows_done if ctx.resuming else 0)
    pending = trash.find_one({"_id": seq + 1})
    if pending is not None and pending.get("pending") is not None:  # saved, maybe partly written
        _replace(op, coll, bson.decode_all(pending["pending"], _RAW))
        seq, done = seq + 1, pending["done"]
        ctx.checkpoint({**tok, "seq": seq}, done)
    trash.update_many({"pending": {"$exists": True}}, {"$unset": {"pending": ""}})
    pos = (trash.find_one({"_id": seq}) or {}).get("pos") if seq else None
    batches = _from_ids(store, op, pos) if op.ids_from else _in_id_order(coll, op.filter, op.batch_size, pos)
    total = _transform_total(store, op, coll)
    codec = coll.codec_options
    for docs, position in batches:
        raws, ids, size, used = [], [], 0, len(docs)
        for k, doc in enumerate(docs, 1):
            _id = doc["_id"]
            new = op.fn(doc)
            if new is not None:
                if "_id" not in new:
                    new = {"_id": _id, **new}
                elif new["_id"] != _id:
                    raise _fail(op, f"fn changed _id {_id!r} to {new['_id']!r}")
                raw = bson.encode(new, codec_options=codec)
                raws.append(raw)
                ids.append(_id)
                size += len(raw)
            if size >= PENDING_LIMIT:
                used = k
                break
        seq += 1
        done += used
        ctx.fence()  # fn may have run long (or the process was paused): is the lease still ours?
        trash.replace_one({"_id": seq}, {"_id": seq, "pos": position(used), "ids": ids, "done": done,
                                         "pending": bson.Binary(b"".join(raws))}, upsert=True)
        _replace(op, coll, [RawBSONDocument(r, _RAW) for r in raws])
        ctx.checkpoint({**tok, "seq": seq}, done)
        trash.update_one({"_id": seq}, {"$unset": {"pending": ""}})
        ctx.progress(done, total)
    return done


def _replace(op, coll, raws) -> None:
    _bulk(op, coll, [ReplaceOne({"_id": r["_id"]}, r) for r in raws])


def _in_id_order(coll, query, batch_size, pos):
    """Batches of the documents matching ``query`` in ``_id`` order, after
    ``pos["last"]``. Yields ``(docs, position)``: the caller says how many
    documents it used (``position(k)``) and gets the position to save; the
    documents it did not use come first in the next batch."""
    stream = id_stream(coll, query, pos["last"] if pos else None, pos is not None, batch_size)
    rest: list = []
    while True:
        docs = rest + list(itertools.islice(stream, batch_size - len(rest)))
        if not docs:
            return
        used = []
        yield docs, lambda k: used.append(k) or {"last": docs[k - 1]["_id"]}
        rest = docs[used[-1]:]


def id_stream(coll, query, after, started: bool, batch_size: int):
    """The documents matching ``query`` after ``_id`` ``after`` (all of them
    unless ``started``), in ``_id`` order, from one server cursor read
    ``batch_size`` at a time (a new range query per batch costs a seek that
    grows with the collection on some servers). The checkpointed last key is
    where a cursor the server dropped reopens. ``$gt`` stops at the end of
    ``after``'s BSON type bracket: then the next bracket's first document
    starts a new cursor (once per bracket)."""
    whole = not started
    while True:
        q = (query or {}) if whole else _and(query, {"_id": {"$gt": after}})
        try:
            for doc in coll.find(q).sort("_id", 1).batch_size(batch_size):
                yield doc
                after, started = doc["_id"], True
        except CursorNotFound:  # idle too long between batches (a slow fn): reopen after the last document
            whole = not started
            continue
        if whole or not started:
            return
        later = later_types(after)
        first = next(iter(coll.find(_and(query, {"_id": {"$type": later}})).sort("_id", 1).limit(1)), None) \
            if later else None
        if first is None:
            return
        yield first
        after = first["_id"]


def _from_ids(store, op, pos):
    """Batches of the documents listed in a transform trash (``ids_from``), in its order."""
    coll, source = store.db[op.collection], store.db[op.ids_from]
    src, off = (pos["src"], pos["off"]) if pos else (0, 0)
    for batch in source.find({"_id": {"$gte": src}}, {"ids": 1}).sort("_id", 1):
        ids = batch.get("ids") or []
        if batch["_id"] > src:
            off = 0
        while off < len(ids):
            chunk = ids[off:off + op.batch_size]
            docs = list(coll.find({"_id": {"$in": chunk}}).sort("_id", 1))
            if not docs:
                off += len(chunk)
                continue
            used = []
            yield docs, lambda k: used.append(k) or {"src": batch["_id"], "off": off + chunk.index(docs[k - 1]["_id"]) + 1}
            off += chunk.index(docs[used[-1] - 1]["_id"]) + 1


def _transform_total(store, op, coll):
    if op.ids_from:
        rows = list(store.db[op.ids_from].aggregate([{"$group": {"_id": None, "n": {"$sum": {"$size": "$ids"}}}}]))
        return rows[0]["n"] if rows else 0
    return coll.count_documents(op.filter) if op.filter else coll.estimated_document_count()


@implementation(m.Insert, KIND)
def insert(store, op, ctx):
    """Batches of the document stream, from the checkpointed position: drop
    the documents already there with the same content (and fail on other
    content), record the new ids in the trash, insert them, checkpoint."""
    coll = _coll(store, op)
    tok = _token(ctx, f"{op.collection}.inserted", seq=0, pos=0, t=int(time.time()), ids=2)
    trash = store.db[tok["trash"]]
    seq, pos = tok["seq"], tok["pos"]
    done = ctx.rows_done if ctx.resuming else 0
    source = op.rows() if callable(op.rows) else op.rows
    total = len(source) if isinstance(source, (list, tuple)) else None
    stream = itertools.islice(iter(source), pos, None)
    make_id = _id_maker(op, tok)
    replay = ctx.resuming  # only the first batch after a checkpoint can have been recorded before a crash
    while True:
        batch = list(itertools.islice(stream, op.batch_size))
        if not batch:
            break
        docs = [_with_id(op, make_id, pos + i, d) for i, d in enumerate(batch)]
        seq += 1
        record = trash.find_one({"_id": seq}) if replay else None  # written before a crash: this batch is a replay
        replay = False
        ours = {_key(i) for i in _record_ids(record)} if record else set()
        # the _ids this run generates are new (its start time, trash name and stream position): only the
        # ones the documents carry can be taken already, or any on a replay
        given = docs if record else [d for d, b in zip(docs, batch) if d is b]
        missing, already = _not_there(op, coll, docs, ours, given)
        ctx.fence()
        if record is None and not given and tok.get("ids") == 2:  # all generated: their positions say them
            trash.insert_one({"_id": seq, "ids": [], "gen": [bson.Binary(make_id(0).binary[:7]), pos, pos + len(batch)],
                              "pos": pos + len(batch)})
        elif record is None:
            trash.insert_one({"_id": seq, "ids": [d["_id"] for d in missing], "pos": pos + len(batch)})
        else:
            extra = [d["_id"] for d in missing if _key(d["_id"]) not in ours]
            if extra:
                trash.update_one({"_id": seq}, {"$push": {"ids": {"$each": extra}}})
        _insert(op, coll, missing, trash, seq)
        pos += len(batch)
        done += len(missing) + already
        ctx.checkpoint({**tok, "seq": seq, "pos": pos}, done)
        ctx.progress(pos, total)
    return done


def _record_ids(record: dict) -> list:
    """The ids an insert trash record lists: ``ids``, and the generated ids
    of the stream positions ``gen`` = [first 7 bytes, from, to] names."""
    ids = list(record.get("ids") or [])
    if record.get("gen"):
        head, start, end = record["gen"]
        ids += [ObjectId(bytes(head) + p.to_bytes(5, "big")) for p in range(start, end)]
    return ids


def _key(value):
    """A hashable form of an ``_id``, exact as its BSON type (``1``, ``1.0``,
    ``Int64(1)`` and ``True`` differ; a Python int is an int32 or an int64
    as the driver encodes it)."""
    t = type(value)
    if t is str or t is ObjectId:
        return (t, value)
    if t is int or t is Int64:
        return ("int64" if t is Int64 or not -2 ** 31 <= value < 2 ** 31 else "int32", int(value))
    return bson.encode({"k": value})


def _id_maker(op, tok):
    """The ``_id`` of the document at ``position`` of the stream, for documents
    without one: an ObjectId made of the run's start time and, for runs
    started by this version, 3 bytes of the trash name's hash and the
    position (a run started by an older version keeps its per-document hash,
    so a resumed run finds the ids it wrote)."""
    head = int(tok["t"]).to_bytes(4, "big")
    if tok.get("ids") != 2:
        return lambda position: ObjectId(
            head + hashlib.blake2b(f"{tok['trash']}:{position}".encode(), digest_size=8).digest())
    head += hashlib.blake2b(tok["trash"].encode(), digest_size=3).digest()
    return lambda position: ObjectId(head + position.to_bytes(5, "big"))


def _with_id(op, make_id, position: int, doc) -> dict:
    if not isinstance(doc, dict):
        raise _fail(op, f"document {position} is a {type(doc).__name__}, not a dict", OperationError)
    if "_id" in doc:
        return doc
    return {"_id": make_id(position), **doc}


def _not_there(op, coll, docs, ours, given) -> tuple[list, int]:
    """The documents of a batch not in ``coll`` yet (repeats within the batch
    dropped), and how many are there already from this batch's interrupted
    run (``ours``). Fails when an ``_id`` is taken by other content (the
    collection's, or an earlier document's of the batch). One look-up of the
    ``given`` documents' ids (ids only; none when all ids are generated);
    documents are compared as stored only where an ``_id`` is there already
    or repeats."""
    if not given:
        return docs, 0
    codec = coll.codec_options
    keys = [_key(d["_id"]) for d in given]
    there = {_key(d["_id"]) for d in coll.find({"_id": {"$in": [d["_id"] for d in given]}}, {"_id": 1})}
    if not there and len(set(keys)) == len(keys):
        return docs, 0
    keys = [_key(d["_id"]) for d in docs] if given is not docs else keys
    repeated = len(set(keys)) < len(keys)
    existing = {_key(d["_id"]): d for d in coll.find({"_id": {"$in": [d["_id"] for d in docs
                                                                    if _key(d["_id"]) in there]}})} if there else {}
    missing, seen, clash, already = [], {}, [], 0
    for doc, k in zip(docs, keys):
        if k not in existing and not repeated:
            missing.append(doc)
            continue
        as_stored = bson.decode(bson.encode(doc, codec_options=codec), codec_options=codec)
        if k in seen:
            if seen[k] != as_stored:
                clash.append(doc["_id"])
            continue
        seen[k] = as_stored
        if k in existing:
            if k in ours:
                already += 1
            elif existing[k] != as_stored:
                clash.append(doc["_id"])
            continue  # ours from the interrupted run, or the same document put there by someone else
        missing.append(doc)
    if clash:
        raise _fail(op, f"{len(clash)} document(s) have the _id of another document with other content "
                        f"(e.g. _id {_ids(clash[:SAMPLE])}); nothing of this batch was written")
    return missing, already


def _insert(op, coll, docs, trash, seq) -> None:
    if not docs:
        return
    try:
        coll.insert_many(docs, ordered=False)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors") or [{}]
        first = errors[0]
        doc = first.get("op") or {}
        failed = {_key(docs[err["index"]]["_id"]) for err in errors if "index" in err}
        if failed:  # not inserted, maybe someone else's (a concurrent writer): not ours to delete
            ids = [i for i in _record_ids(trash.find_one({"_id": seq}) or {}) if _key(i) not in failed]
            trash.update_one({"_id": seq}, {"$set": {"ids": ids}, "$unset": {"gen": ""}})
        raise _fail(op, f"{len(errors)} insert(s) failed, first: _id {doc.get('_id')!r}: {first.get('errmsg')}") from None


@implementation(m.DeleteInserted, KIND)
def delete_inserted(store, op, ctx):
    coll = _coll(store, op)
    if store.collection_options(op.trash) is None:
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)")
    done = 0
    total = _inserted_total(store, op.trash)
    for record in store.db[op.trash].find({}, {"ids": 1, "gen": 1}).sort("_id", 1):
        ids = _record_ids(record)
        if ids:
            done += coll.delete_many({"_id": {"$in": ids}}).deleted_count
        ctx.progress(done, total)
    return done


def _inserted_total(store, trash: str) -> int:
    generated = {"$ifNull": [{"$subtract": [{"$arrayElemAt": ["$gen", 2]}, {"$arrayElemAt": ["$gen", 1]}]}, 0]}
    rows = list(store.db[trash].aggregate([{"$group": {"_id": None, "n": {"$sum": {"$add": [
        {"$size": {"$ifNull": ["$ids", []]}}, generated]}}}}]))
    return rows[0]["n"] if rows else 0



@estimator(m.UpdateMany, KIND)
def _est_update(store, op):
    return _count(store, op.collection, op.filter)


@estimator(m.Transform, KIND)
def _est_transform(store, op):
    if op.ids_from:
        return _transform_total(store, op, None) if store.collection_options(op.ids_from) else None
    return _count(store, op.collection, op.filter)


@estimator(m.Insert, KIND)
def _est_insert(store, op):
    return len(op.rows) if isinstance(op.rows, (list, tuple)) else None


@estimator(m.DeleteInserted, KIND)
def _est_delete_inserted(store, op):
    return _inserted_total(store, op.trash) if store.collection_options(op.trash) is not None else None
