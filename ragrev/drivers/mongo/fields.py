"""How a MongoDB store applies the field operations (:mod:`ragrev.ops.document_fields`):
``add_field`` (``default=`` on the server, ``fill=`` in batches), ``rename_field``
(``$rename``, or with ``keep_order`` an update pipeline keeping the field's
position) and ``drop_field`` (a pipeline keeping positions for the inverse),
and their inverses, which bring values back from the trash by in-place updates."""
from __future__ import annotations

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from ragrev.ops import document_fields as m
from ragrev.ops.document_base import parent_of
from ragrev.stores import chunks, estimator, implementation
from ragrev.drivers.mongo.common import (KIND, SAMPLE, TRASH_BATCH, _and, _bulk, _coll, _count, _exists, _fail, _ids,
                                         _token)
from ragrev.drivers.mongo.data import _in_id_order


# --- field paths as aggregation expressions ----------------------------------------------------

def _split(path: str) -> tuple[str, str]:
    parent, _, leaf = path.rpartition(".")
    return parent, leaf


def _prefixes(path: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``: the objects on the way to a field."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


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



# --- fields --------------------------------------------------------------------------------------------

@implementation(m.AddField, KIND)
def add_field(store, op, ctx):
    coll = _coll(store, op)
    if op.fill is not None:
        return _add_field_fn(store, op, ctx, coll)
    tok = _token(ctx, f"{op.collection}.{op.field}.added", phase=0)
    lacking = _and(op.filter, _exists(op.field, False))
    if tok.get("phase", 0) < 1:  # nothing is updated before phase 1: a rerun may decide again
        # read-only, stops at the first document (of filter) that has the field already
        if coll.find_one(_and(op.filter, _exists(op.field)), {"_id": 1}) is None:
            tok["shape"] = "all"  # the inverse unsets the field wherever filter matches
        else:  # record which documents get the field ($out: a rerun replaces the list)
            tok["shape"] = "ids"
            coll.aggregate([{"$match": lacking}, {"$project": {"_id": 1}}, {"$out": tok["trash"]}])
            if store.collection_options(tok["trash"]) is None:  # $out of nothing leaves no collection on SecantusDB
                store.db.create_collection(tok["trash"])
        ctx.captured["shape"] = tok["shape"]
        ctx.checkpoint({**tok, "phase": 1})
    ctx.captured["shape"] = tok.get("shape", "ids")  # a token without a shape is a former release's: ids
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
        values = [(d["_id"], op.fill(d)) for d in docs]
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



@implementation(m.RemoveAddedField, KIND)
def remove_added_field(store, op, ctx):
    _coll(store, op)
    if store.collection_options(op.trash) is None:
        raise _fail(op, f"trash collection {op.trash!r} is gone (purged?)")
    trash, coll = store.db[op.trash], store.db[op.collection]
    if op.default is not m.MISSING:
        return _remove_from_all(op, coll)
    batches = trash.find_one({"ids": {"$exists": True}}) is not None
    ids = [{"$unwind": "$ids"}, {"$project": {"_id": "$ids"}}] if batches else [{"$project": {"_id": 1}}]
    # each document updated in place: SecantusDB runs $merge's whenMatched as a delete and an insert,
    # and a kill between the two would lose the document
    done = 0
    for chunk in chunks((d["_id"] for d in trash.aggregate(ids)), TRASH_BATCH):
        done += coll.update_many({"_id": {"$in": chunk}}, [{"$unset": op.field}]).modified_count
    return done


def _remove_from_all(op, coll):
    """The step found no document with the field: unset it wherever ``filter``
    matches, after keeping (with its position, as ``drop_field`` does) every
    value other than the default, written since by someone else. Both
    passes may be rerun: the first keeps values already kept."""
    having = _and(op.filter, _exists(op.field))
    coll.aggregate([
        {"$match": _and(having, {"$expr": {"$or": [  # another value, or the same of another type (1.0, 1)
            {"$ne": [f"${op.field}", {"$literal": op.default}]},
            {"$ne": [{"$type": f"${op.field}"}, {"$type": {"$literal": op.default}}]}]}})},
        {"$project": {"_id": 1, "v": f"${op.field}", "pos": position_expr(op.field)}},
        {"$merge": {"into": op.trash, "whenMatched": "keepExisting", "whenNotMatched": "insert"}},
    ])
    try:
        return coll.update_many(having, [{"$unset": op.field}]).modified_count
    except PyMongoError as e:
        raise _fail(op, f"update failed: {e}") from None


@implementation(m.RenameField, KIND)
def rename_field(store, op, ctx):
    coll = _coll(store, op)
    clash = _and(_exists(op.field), _exists(op.new_name))
    # read-only, stops at the first clash: nothing is written unless no document has both names
    if coll.find_one(clash, {"_id": 1}) is not None:
        count = coll.count_documents(clash)
        sample = [d["_id"] for d in coll.find(clash, {"_id": 1}).sort("_id", 1).limit(SAMPLE)]
        raise _fail(op, f"{count} document(s) have both {op.field!r} and {op.new_name!r} (e.g. _id {_ids(sample)}); "
                        "nothing changed")
    tok = ctx.resume_token if ctx.resuming and isinstance(ctx.resume_token, dict) else None
    if tok is None:  # a rerun without a token was started by a release that always kept the order (or
        # killed before its first write): finish it, and undo it, the order-keeping way
        tok = {"keep_order": True if ctx.resuming else op.keep_order}
        ctx.captured["keep_order"] = tok["keep_order"]
        ctx.checkpoint(tok, 0)  # the form is journaled before the first write
    keep = ctx.captured["keep_order"] = tok["keep_order"]
    query = _exists(op.field)
    if parent_of(op.field) != parent_of(op.new_name):  # the field lands last in its new parent
        update = {"$rename": {op.field: op.new_name}}
    elif keep:
        update = rename_pipeline(op.field, op.new_name)
    else:  # documents with an array on the way are left alone, as the pipeline leaves them ($rename fails there)
        update = {"$rename": {op.field: op.new_name}}
        query = _and(query, *({p: {"$not": {"$type": "array"}}} for p in _prefixes(op.field)))
    try:
        result = coll.update_many(query, update)
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


def _bind_new(value, new: dict):
    """``value`` (a pipeline) with ``$$new.<key>`` replaced by ``new[key]`` as a literal."""
    if isinstance(value, str) and value.startswith("$$new."):
        return {"$literal": new.get(value[len("$$new."):])}
    if isinstance(value, list):
        return [_bind_new(v, new) for v in value]
    if isinstance(value, dict):
        return {k: _bind_new(v, new) for k, v in value.items()}
    return value



@estimator(m.AddField, KIND)
def _est_add(store, op):
    return _count(store, op.collection, _and(op.filter, _exists(op.field, False)))


@estimator(m.RenameField, KIND)
@estimator(m.DropField, KIND)
def _est_field(store, op):
    return _count(store, op.collection, _exists(op.field))


@estimator(m.RemoveAddedField, KIND)
@estimator(m.RestoreField, KIND)
def _est_trash(store, op):
    if getattr(op, "default", m.MISSING) is not m.MISSING:
        return _count(store, op.collection, _and(op.filter, _exists(op.field)))
    return _count(store, op.trash, None)
