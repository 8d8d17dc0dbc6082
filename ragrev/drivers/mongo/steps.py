"""How a MongoDB store applies the document operations of :mod:`ragrev.ops.document`.

Each ``fn(store, op, ctx)`` is registered with ``@implementation``. Rules
they follow:

- Work on the server where MongoDB can: ``add_field(default=)`` is one
  ``update_many``, ``rename_field``/``drop_field`` are update pipelines,
  values kept for inverses go to the trash with ``$merge``, and come back
  by batches of in-place updates (never a ``$merge`` into the user's
  collection: SecantusDB replaces a matched document by deleting and
  inserting it, and a kill in between would lose it). Only ``fn=`` and
  ``transform`` pull documents through Python, in ``_id`` order,
  ``batch_size`` at a time.
- Exact inverses: a renamed field keeps its position (``$objectToArray`` /
  ``$arrayToObject``); a dropped field's value and position are kept and put
  back where they were; ``add_field`` records which documents it changed.
- Resumable: a step first checkpoints the name of its trash collection, then
  works in idempotent phases (``$exists`` guards, ``keepExisting`` merges).
  ``transform`` saves each batch's new documents (as one BSON blob, with the
  batch's ids) in its trash before writing them, then checkpoints, so a
  crash between the write and the checkpoint replays the saved documents
  instead of calling ``fn`` on a document twice. ``insert_many`` records
  each batch's new ids in its trash before inserting them, so a replayed
  batch knows which of the documents already there are its own.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import logging
import time

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from bson import Int64, ObjectId
from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, CollectionInvalid, CursorNotFound, OperationFailure, PyMongoError

from ragrev.errors import CheckFailed, OperationError, StepFailed
from ragrev.ops import document as m
from ragrev.stores import LOG_TABLE, chunks, estimator, implementation
from ragrev.drivers.mongo.store import from_ejson, to_ejson, trash_name

KIND = "mongo"
log = logging.getLogger("ragrev.mongo")
#: a transform batch's saved documents are cut at about this many bytes (BSON documents max 16 MiB)
PENDING_LIMIT = 8 * 1024 * 1024
SAMPLE = 5
_VKEYS = ("validator", "validationLevel", "validationAction")
_RAW = CodecOptions(document_class=RawBSONDocument)


# --- small helpers -----------------------------------------------------------------------

def _fail(op, message: str, cls=StepFailed):
    return cls(f"{op.where()}{op.name} {op.collection!r}: {message}")


def _coll(store, op, name: str | None = None):
    name = name or op.collection
    if store.collection_options(name) is None:
        raise _fail(op, f"no collection {name!r} in store {store.name!r}", OperationError)
    return store.db[name]


def _and(*parts) -> dict:
    parts = [p for p in parts if p]
    return {} if not parts else parts[0] if len(parts) == 1 else {"$and": list(parts)}


def _exists(path: str, yes: bool = True) -> dict:
    return {path: {"$exists": yes}}


def _ids(docs) -> str:
    return ", ".join(repr(d) for d in docs)


def validator_state(store, name: str) -> dict:
    opts = store.collection_options(name) or {}
    return {k: opts[k] for k in _VKEYS if k in opts}


def set_validator(store, name: str, validator, level=None, action=None) -> None:
    cmd = {"validator": validator or {}}
    if level:
        cmd["validationLevel"] = level
    if action:
        cmd["validationAction"] = action
    store.db.command("collMod", name, **cmd)


def rename_collection(store, src: str, dst: str) -> None:
    """Rename keeping the validator (SecantusDB drops collection options on rename)."""
    state = validator_state(store, src)
    store.db[src].rename(dst)
    if state and validator_state(store, dst) != state:
        set_validator(store, dst, state.get("validator"), state.get("validationLevel"), state.get("validationAction"))


def _token(ctx, what: str, create: bool = True, **start) -> dict:
    """The step's resume token; on a fresh start, a new trash name checkpointed
    before anything is written. ``create``: make the (empty) trash collection."""
    tok = ctx.resume_token if ctx.resuming and isinstance(ctx.resume_token, dict) else None
    if not tok or "trash" not in tok:
        tok = {"trash": trash_name(what), **start}
        ctx.captured["trash"] = tok["trash"]
        ctx.checkpoint(dict(tok), 0)
    ctx.captured["trash"] = tok["trash"]
    if create and ctx.store.collection_options(tok["trash"]) is None:
        try:
            ctx.store.db.create_collection(tok["trash"])
        except CollectionInvalid:
            pass
    return dict(tok)


# --- field paths as aggregation expressions ----------------------------------------------------

def _split(path: str) -> tuple[str, str]:
    parent, _, leaf = path.rpartition(".")
    return parent, leaf


def _ref(parent: str) -> str:
    return f"${parent}" if parent else "$$ROOT"


def _replace_parent(parent: str, expr) -> dict:
    """A pipeline stage replacing the object holding a field (the document or
    an embedded object, left alone when it is not an object)."""
    if not parent:
        return {"$replaceWith": expr}
    return {"$set": {parent: {"$cond": [{"$eq": [{"$type": f"${parent}"}, "object"]}, expr, f"${parent}"]}}}


def rename_pipeline(old: str, new: str) -> list:
    parent, leaf = _split(old)
    expr = {"$arrayToObject": {"$map": {"input": {"$objectToArray": _ref(parent)}, "in": {
        "k": {"$cond": [{"$eq": ["$$this.k", leaf]}, _split(new)[1], "$$this.k"]}, "v": "$$this.v"}}}}
    return [_replace_parent(parent, expr)]


def position_expr(path: str) -> dict:
    parent, leaf = _split(path)
    return {"$indexOfArray": [{"$map": {"input": {"$objectToArray": _ref(parent)}, "in": "$$this.k"}}, leaf]}


def restore_pipeline(path: str) -> list:
    """For an update from a drop_field trash document (``$$new.v``, ``$$new.pos``):
    put the value back at its position, unless the field is there already."""
    parent, leaf = _split(path)
    pairs = {"$objectToArray": _ref(parent)}
    pos = {"$max": ["$$new.pos", 0]}
    inserted = {"$arrayToObject": {"$concatArrays": [
        {"$slice": [pairs, pos]}, [{"k": leaf, "v": "$$new.v"}], {"$slice": [pairs, pos, 2 ** 31 - 1]}]}}
    return [_replace_parent(parent, {"$cond": [{"$eq": [{"$type": f"${path}"}, "missing"]}, inserted, _ref(parent)]})]


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


# --- collections -----------------------------------------------------------------------------------

@implementation(m.CreateCollection, KIND)
def create_collection(store, op, ctx):
    kwargs = from_ejson(op.options) if op.options else {}
    if op.mongo_schema is not None:
        kwargs.update(validator={"$jsonSchema": op.mongo_schema}, validationLevel=op.validation_level,
                      validationAction=op.validation_action)
    if store.collection_options(op.collection) is not None:
        count = store.db[op.collection].estimated_document_count()
        if count and not ctx.resuming:
            raise _fail(op, f"already exists with {count} documents", OperationError)
        if op.mongo_schema is not None:
            set_validator(store, op.collection, kwargs["validator"], op.validation_level, op.validation_action)
        return 0
    try:
        store.db.create_collection(op.collection, **kwargs)
    except CollectionInvalid:  # created meanwhile
        pass
    except OperationFailure as e:
        raise _fail(op, e.details.get("errmsg", str(e)) if e.details else str(e), OperationError) from None
    return 0


@implementation(m.DropCollection, KIND)
def drop_collection(store, op, ctx):
    tok = _token(ctx, op.collection, create=False)
    if store.collection_options(op.collection) is None:
        if ctx.resuming and store.collection_options(tok["trash"]) is not None:
            return 0
        raise _fail(op, f"no collection {op.collection!r} in store {store.name!r}", OperationError)
    rename_collection(store, op.collection, tok["trash"])
    return 0


@implementation(m.RestoreCollection, KIND)
def restore_collection(store, op, ctx):
    if store.collection_options(op.trash) is None:
        if store.collection_options(op.collection) is not None and ctx.resuming:
            return 0
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)", StepFailed)
    if store.collection_options(op.collection) is not None:
        raise _fail(op, "a collection of that name exists again; rename it first", StepFailed)
    rename_collection(store, op.trash, op.collection)
    return 0


@implementation(m.RenameCollection, KIND)
def rename(store, op, ctx):
    src, dst = store.collection_options(op.collection), store.collection_options(op.new_name)
    if src is None and dst is not None and ctx.resuming:
        return 0
    _coll(store, op)
    if dst is not None:
        raise _fail(op, f"target {op.new_name!r} already exists", OperationError)
    rename_collection(store, op.collection, op.new_name)
    return 0


# --- validators ---------------------------------------------------------------------------------------

def _capture_validator(store, op, ctx) -> None:
    if not (ctx.resuming and "previous" in ctx.captured):
        ctx.captured["previous"] = to_ejson(validator_state(store, op.collection))
        ctx.checkpoint({"phase": "captured"})


@implementation(m.SetSchema, KIND)
def set_schema(store, op, ctx):
    coll = _coll(store, op)
    validator = {"$jsonSchema": op.mongo_schema}
    if op.dropped_keywords:
        log.info("set_schema %s: dropped annotations MongoDB does not accept: %s", op.collection,
                 "; ".join(op.dropped_keywords))
    violating = {"$nor": [validator]}
    try:
        count = coll.count_documents(violating)
    except OperationFailure as e:
        raise _fail(op, f"the server refuses the schema: {e.details.get('errmsg') if e.details else e}",
                    OperationError) from None
    if count:
        sample = [d["_id"] for d in coll.find(violating, {"_id": 1}).sort("_id", 1).limit(SAMPLE)]
        message = f"{count} existing document(s) violate the new schema (e.g. _id {_ids(sample)})"
        if op.on_violation == "fail":
            raise _fail(op, message + "; nothing changed (fix them first, or on_violation='warn')")
        log.warning("set_schema %s: %s; setting it anyway (on_violation='warn')", op.collection, message)
        ctx.captured["violators"] = count
    _capture_validator(store, op, ctx)
    set_validator(store, op.collection, validator, op.validation_level, op.validation_action)
    return count


@implementation(m.SetValidator, KIND)
def set_raw_validator(store, op, ctx):
    _coll(store, op)
    validator = from_ejson(op.validator) if op.ejson and op.validator is not None else op.validator
    _capture_validator(store, op, ctx)
    set_validator(store, op.collection, validator, op.validation_level, op.validation_action)
    return 0


# --- fields --------------------------------------------------------------------------------------------

@implementation(m.AddField, KIND)
def add_field(store, op, ctx):
    coll = _coll(store, op)
    if op.fn is not None:
        return _add_field_fn(store, op, ctx, coll)
    tok = _token(ctx, f"{op.collection}.{op.field}.added", phase=0)
    ctx.captured["shape"] = "ids"
    lacking = _and(op.filter, _exists(op.field, False))
    if tok.get("phase", 0) < 1:  # record which documents get the field
        # nothing is updated before phase 1, so a rerun may replace the list ($out)
        coll.aggregate([{"$match": lacking}, {"$project": {"_id": 1}}, {"$out": tok["trash"]}])
        if store.collection_options(tok["trash"]) is None:  # $out of nothing leaves no collection on SecantusDB
            store.db.create_collection(tok["trash"])
        ctx.checkpoint({**tok, "phase": 1})
    try:
        result = coll.update_many(lacking, {"$set": {op.field: op.default}})
    except PyMongoError as e:
        raise _fail(op, f"update failed: {e}") from None
    ctx.progress(result.modified_count, result.modified_count)
    return result.modified_count


def _add_field_fn(store, op, ctx, coll):
    tok = _token(ctx, f"{op.collection}.{op.field}.added", seq=0)
    ctx.captured["shape"] = "batches"
    trash = store.db[tok["trash"]]
    seq, done = tok["seq"], (ctx.rows_done if ctx.resuming else 0)
    lacking = _and(op.filter, _exists(op.field, False))
    pos = (trash.find_one({"_id": seq}) or {}).get("pos") if seq else None
    total = coll.estimated_document_count()  # for progress only: an upper bound, no scan
    for docs, position in _in_id_order(coll, lacking, op.batch_size, pos):
        values = [(d["_id"], op.fn(d)) for d in docs]
        seq += 1
        ctx.fence()
        # $push, not $addToSet (quadratic on some servers): an id twice is harmless to the inverse
        trash.update_one({"_id": seq}, {"$set": {"pos": position(len(docs))},
                                        "$push": {"ids": {"$each": [i for i, _ in values]}}}, upsert=True)
        # by _id alone (an extra predicate costs ~30% on SecantusDB): the batch was read
        # lacking the field, and a rerun reads only documents still lacking it
        _bulk(op, coll, [UpdateOne({"_id": i}, {"$set": {op.field: v}}) for i, v in values])
        done += len(docs)
        ctx.checkpoint({**tok, "seq": seq}, done)
        ctx.progress(done, total)
    return done


def _bulk(op, coll, requests) -> None:
    if not requests:
        return
    try:
        coll.bulk_write(requests, ordered=False)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors") or [{}]
        first = errors[0]
        raise _fail(op, f"{len(errors)} write(s) failed, first: {first.get('errmsg')} "
                        f"(document {first.get('op', {}).get('q', first.get('op', {}))!r:.120})") from None


@implementation(m.RemoveAddedField, KIND)
def remove_added_field(store, op, ctx):
    _coll(store, op)
    if store.collection_options(op.trash) is None:
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)")
    trash, coll = store.db[op.trash], store.db[op.collection]
    batches = trash.find_one({"ids": {"$exists": True}}) is not None
    ids = [{"$unwind": "$ids"}, {"$project": {"_id": "$ids"}}] if batches else [{"$project": {"_id": 1}}]
    # each document updated in place: SecantusDB runs $merge's whenMatched as a delete and an insert,
    # and a kill between the two would lose the document
    done = 0
    for chunk in chunks((d["_id"] for d in trash.aggregate(ids)), TRASH_BATCH):
        done += coll.update_many({"_id": {"$in": chunk}}, [{"$unset": op.field}]).modified_count
    return done


@implementation(m.RenameField, KIND)
def rename_field(store, op, ctx):
    coll = _coll(store, op)
    clash = _and(_exists(op.field), _exists(op.new_name))
    count = coll.count_documents(clash)
    if count:
        sample = [d["_id"] for d in coll.find(clash, {"_id": 1}).sort("_id", 1).limit(SAMPLE)]
        raise _fail(op, f"{count} document(s) have both {op.field!r} and {op.new_name!r} (e.g. _id {_ids(sample)}); "
                        "nothing changed")
    if m.parent_of(op.field) == m.parent_of(op.new_name):
        update = rename_pipeline(op.field, op.new_name)
    else:  # moves across objects: the field lands last in its new parent
        update = {"$rename": {op.field: op.new_name}}
    try:
        result = coll.update_many(_exists(op.field), update)
    except PyMongoError as e:
        raise _fail(op, f"update failed: {e}") from None
    return result.modified_count


@implementation(m.DropField, KIND)
def drop_field(store, op, ctx):
    coll = _coll(store, op)
    tok = _token(ctx, f"{op.collection}.{op.field}.dropped", phase=0)
    if tok.get("phase", 0) < 1:  # keep each value and its position
        coll.aggregate([
            {"$match": _exists(op.field)},
            {"$project": {"_id": 1, "v": f"${op.field}", "pos": position_expr(op.field)}},
            {"$merge": {"into": tok["trash"], "whenMatched": "keepExisting", "whenNotMatched": "insert"}},
        ])
        ctx.checkpoint({**tok, "phase": 1})
    try:
        result = coll.update_many(_exists(op.field), [{"$unset": op.field}])
    except PyMongoError as e:
        raise _fail(op, f"update failed: {e}") from None
    return result.modified_count


@implementation(m.RestoreField, KIND)
def restore_field(store, op, ctx):
    _coll(store, op)
    if store.collection_options(op.trash) is None:
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)")
    trash, coll = store.db[op.trash], store.db[op.collection]
    # each document updated in place (see remove_added_field), its value and position given as literals
    done = 0
    for chunk in chunks(trash.find(), TRASH_BATCH):
        _bulk(op, coll, [UpdateOne({"_id": t["_id"]}, _bind_new(restore_pipeline(op.field), t)) for t in chunk])
        done += len(chunk)
    return done


TRASH_BATCH = 1000


def _bind_new(value, new: dict):
    """``value`` (a pipeline) with ``$$new.<key>`` replaced by ``new[key]`` as a literal."""
    if isinstance(value, str) and value.startswith("$$new."):
        return {"$literal": new.get(value[len("$$new."):])}
    if isinstance(value, list):
        return [_bind_new(v, new) for v in value]
    if isinstance(value, dict):
        return {k: _bind_new(v, new) for k, v in value.items()}
    return value


# --- indexes ---------------------------------------------------------------------------------------------

def _direction(d):
    return int(d) if isinstance(d, float) and d.is_integer() else d


@implementation(m.CreateIndex, KIND)
def create_index(store, op, ctx):
    coll = _coll(store, op)
    options = from_ejson(op.options) if op.options else {}
    if op.unique:
        options["unique"] = True
    try:
        coll.create_index([(f, d) for f, d in op.keys], name=op.index_name, **options)
    except OperationFailure as e:
        raise _fail(op, f"index {op.index_name!r}: {e.details.get('errmsg') if e.details else e}") from None
    return 0


@implementation(m.DropIndex, KIND)
def drop_index(store, op, ctx):
    coll = _coll(store, op)
    spec = next((ix for ix in coll.list_indexes() if ix["name"] == op.index_name), None)
    if spec is None:
        if ctx.resuming and "spec" in ctx.captured:
            return 0
        raise _fail(op, f"no index {op.index_name!r}", OperationError)
    spec = dict(spec)
    for k in ("v", "ns", "name"):
        spec.pop(k, None)
    key = [[f, _direction(d)] for f, d in spec.pop("key").items()]
    ctx.captured["spec"] = {"key": key, **to_ejson(spec, relaxed=True)}
    ctx.checkpoint(None)
    coll.drop_index(op.index_name)
    return 0


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


@implementation(m.InsertMany, KIND)
def insert_many(store, op, ctx):
    """Batches of the document stream, from the checkpointed position: drop
    the documents already there with the same content (and fail on other
    content), record the new ids in the trash, insert them, checkpoint."""
    coll = _coll(store, op)
    tok = _token(ctx, f"{op.collection}.inserted", seq=0, pos=0, t=int(time.time()), ids=2)
    trash = store.db[tok["trash"]]
    seq, pos = tok["seq"], tok["pos"]
    done = ctx.rows_done if ctx.resuming else 0
    source = op.documents() if callable(op.documents) else op.documents
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
        ours = {_key(i) for i in record["ids"]} if record else set()
        missing, already = _not_there(op, coll, docs, ours)
        ctx.fence()
        if record is None:
            trash.insert_one({"_id": seq, "ids": [d["_id"] for d in missing], "pos": pos + len(batch)})
        else:
            extra = [d["_id"] for d in missing if _key(d["_id"]) not in ours]
            if extra:
                trash.update_one({"_id": seq}, {"$push": {"ids": {"$each": extra}}})
        _insert(op, coll, missing)
        pos += len(batch)
        done += len(missing) + already
        ctx.checkpoint({**tok, "seq": seq, "pos": pos}, done)
        ctx.progress(pos, total)
    return done


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


def _not_there(op, coll, docs, ours) -> tuple[list, int]:
    """The documents of a batch not in ``coll`` yet (repeats within the batch
    dropped), and how many are there already from this batch's interrupted
    run (``ours``). Fails when an ``_id`` is taken by other content (the
    collection's, or an earlier document's of the batch). One look-up of the
    batch's ids (ids only); documents are compared as stored only where an
    ``_id`` is there already or repeats."""
    codec = coll.codec_options
    keys = [_key(d["_id"]) for d in docs]
    there = {_key(d["_id"]) for d in coll.find({"_id": {"$in": [d["_id"] for d in docs]}}, {"_id": 1})}
    repeated = len(set(keys)) < len(keys)
    if not there and not repeated:
        return docs, 0
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


def _insert(op, coll, docs) -> None:
    if not docs:
        return
    try:
        coll.insert_many(docs, ordered=False)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors") or [{}]
        first = errors[0]
        doc = first.get("op") or {}
        raise _fail(op, f"{len(errors)} insert(s) failed, first: _id {doc.get('_id')!r}: {first.get('errmsg')}") from None


@implementation(m.DeleteInserted, KIND)
def delete_inserted(store, op, ctx):
    coll = _coll(store, op)
    if store.collection_options(op.trash) is None:
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)")
    done = 0
    total = _inserted_total(store, op.trash)
    for record in store.db[op.trash].find({}, {"ids": 1}).sort("_id", 1):
        if record.get("ids"):
            done += coll.delete_many({"_id": {"$in": record["ids"]}}).deleted_count
        ctx.progress(done, total)
    return done


def _inserted_total(store, trash: str) -> int:
    rows = list(store.db[trash].aggregate([{"$group": {"_id": None, "n": {"$sum": {"$size": "$ids"}}}}]))
    return rows[0]["n"] if rows else 0


# --- checks -------------------------------------------------------------------------------------------------

@implementation(m.ExpectCount, KIND)
def expect_count(store, op, ctx):
    coll = _coll(store, op)
    n = coll.count_documents(op.filter or {})
    wanted = []
    if op.count is not None and n != op.count:
        wanted.append(f"expected {op.count}")
    if op.at_least is not None and n < op.at_least:
        wanted.append(f"expected at least {op.at_least}")
    if op.at_most is not None and n > op.at_most:
        wanted.append(f"expected at most {op.at_most}")
    if wanted:
        what = " matching the filter" if op.filter else ""
        raise _fail(op, f"{n} documents{what}, {' and '.join(wanted)}", CheckFailed)
    return n


@implementation(m.ValidateAll, KIND)
def validate_all(store, op, ctx):
    coll = _coll(store, op)
    validator = bson_validator(op.schema)
    bad, sample, first, seen = 0, [], None, 0
    for doc in coll.find(op.filter or {}).sort("_id", 1).batch_size(op.batch_size):
        seen += 1
        error = next(iter(validator.iter_errors(doc)), None)
        if error is not None:
            bad += 1
            if len(sample) < op.sample:
                sample.append(doc["_id"])
            if first is None:
                where = "/".join(str(p) for p in error.absolute_path) or "(document)"
                first = f"{where}: {error.message}"[:200]
    if bad:
        raise _fail(op, f"{bad} of {seen} document(s) do not match the schema (e.g. _id {_ids(sample)}; first: {first})",
                    CheckFailed)
    return seen


def bson_validator(schema: dict):
    """A ``jsonschema`` validator for ``schema`` that also understands ``bsonType``."""
    import jsonschema
    from jsonschema import validators

    base = validators.validator_for(schema, default=jsonschema.Draft202012Validator)

    def bson_type(validator, types, instance, _schema):
        types = [types] if isinstance(types, str) else types
        if not any(is_bson_type(instance, t) for t in types):
            yield jsonschema.ValidationError(f"{instance!r:.60} is not of bsonType {types}")

    return validators.extend(base, {"bsonType": bson_type})(schema)


def is_bson_type(value, alias: str) -> bool:
    from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
    import re

    integer = isinstance(value, int) and not isinstance(value, bool)
    checks = {
        "double": isinstance(value, float), "string": isinstance(value, str), "object": isinstance(value, dict),
        "array": isinstance(value, list), "binData": isinstance(value, (bytes, Binary)),
        "objectId": isinstance(value, ObjectId), "bool": isinstance(value, bool),
        "date": isinstance(value, _dt.datetime), "null": value is None,
        "regex": isinstance(value, (Regex, re.Pattern)), "javascript": isinstance(value, Code),
        "int": integer and not isinstance(value, Int64) and -2 ** 31 <= value < 2 ** 31,
        "long": isinstance(value, Int64) or (integer and not -2 ** 31 <= value < 2 ** 31),
        "timestamp": isinstance(value, Timestamp), "decimal": isinstance(value, Decimal128),
        "minKey": isinstance(value, MinKey), "maxKey": isinstance(value, MaxKey),
        "number": (integer or isinstance(value, (float, Decimal128))),
    }
    return checks.get(alias, False)


# --- estimates for --plan ---------------------------------------------------------------------------------------

def _count(store, collection, query):
    if store.collection_options(collection) is None:
        return None
    coll = store.db[collection]
    return coll.count_documents(query) if query else coll.estimated_document_count()


@estimator(m.AddField, KIND)
def _est_add(store, op):
    return _count(store, op.collection, _and(op.filter, _exists(op.field, False)))


@estimator(m.RenameField, KIND)
@estimator(m.DropField, KIND)
def _est_field(store, op):
    return _count(store, op.collection, _exists(op.field))


@estimator(m.UpdateMany, KIND)
def _est_update(store, op):
    return _count(store, op.collection, op.filter)


@estimator(m.Transform, KIND)
def _est_transform(store, op):
    if op.ids_from:
        return _transform_total(store, op, None) if store.collection_options(op.ids_from) else None
    return _count(store, op.collection, op.filter)


@estimator(m.InsertMany, KIND)
def _est_insert(store, op):
    return len(op.documents) if isinstance(op.documents, (list, tuple)) else None


@estimator(m.DeleteInserted, KIND)
def _est_delete_inserted(store, op):
    return _inserted_total(store, op.trash) if store.collection_options(op.trash) is not None else None


@estimator(m.SetSchema, KIND)
@estimator(m.ValidateAll, KIND)
@estimator(m.ExpectCount, KIND)
def _est_scan(store, op):
    return _count(store, op.collection, getattr(op, "filter", None))


@estimator(m.RemoveAddedField, KIND)
@estimator(m.RestoreField, KIND)
def _est_trash(store, op):
    return _count(store, op.trash, None)


# --- preflight ----------------------------------------------------------------------------------------------------

def preflight(store, ops) -> None:
    """Walk the run's operations over the store's collections and indexes.
    Steps that were interrupted (their journal record not done) may find
    their own work half done, so their state is not checked."""
    cols = store.collection_names()
    indexes: dict[str, set] = {}
    interrupted = {d.get("digest") for d in store.db[LOG_TABLE].find(
        {"type": "step", "outcome": {"$ne": "done"}}, {"digest": 1})} if LOG_TABLE in cols else set()

    def index_names(c):
        if c not in indexes:
            indexes[c] = {ix["name"] for ix in store.db[c].list_indexes()} if c in cols else {"_id_"}
        return indexes[c]

    def need(op, c):
        if c not in cols:
            raise OperationError(f"{op.where()}{op.name}: store {store.name!r} has no collection {c!r}")

    for op in ops:
        if op.kind != "document":  # chat archive operations check the rest themselves, when they run
            if op.kind == "chat" and op.name != "restore" and op.digest() not in interrupted:
                need(op, op.collection)
            continue
        lenient = op.digest() in interrupted
        c = getattr(op, "collection", None)
        if isinstance(op, m.CreateCollection):
            cols.add(c)
        elif isinstance(op, m.RenameCollection):
            if not lenient:
                need(op, c)
                if op.new_name in cols:
                    raise OperationError(f"{op.where()}{op.name}: collection {op.new_name!r} already exists")
            if c in cols:
                indexes[op.new_name] = index_names(c)
            cols.discard(c)
            indexes.pop(c, None)
            cols.add(op.new_name)
        elif isinstance(op, m.DropCollection):
            if not lenient:
                need(op, c)
            cols.discard(c)
            indexes.pop(c, None)
        elif isinstance(op, m.RestoreCollection):
            if op.trash not in cols and not lenient:
                raise OperationError(f"{op.where()}{op.name}: trash collection {op.trash!r} is gone (purged?)")
            cols.add(c)
        elif c is not None:
            if not lenient:
                need(op, c)
                trash = getattr(op, "trash", None) or getattr(op, "ids_from", None)
                if trash and trash not in cols:
                    raise OperationError(f"{op.where()}{op.name}: trash collection {trash!r} is gone (purged?)")
            if isinstance(op, m.CreateIndex):
                index_names(c).add(op.index_name)
            elif isinstance(op, m.DropIndex):
                if op.index_name not in index_names(c) and not lenient:
                    raise OperationError(f"{op.where()}{op.name}: collection {c!r} has no index {op.index_name!r}")
                index_names(c).discard(op.index_name)
