"""How a MongoDB store applies the document operations of :mod:`ragrev.ops.document`.

This module applies the collection, validator and index operations, and
imports the others' modules so that all register together (the document
operations name this module in ``impl_modules``): fields in
:mod:`ragrev.drivers.mongo.fields`, documents in :mod:`ragrev.drivers.mongo.data`,
checks in :mod:`ragrev.drivers.mongo.checks`, ``aggregate_into`` in
:mod:`ragrev.drivers.mongo.pipeline`, shared helpers in
:mod:`ragrev.drivers.mongo.common`.

Each ``fn(store, op, ctx)`` is registered with ``@implementation``. Rules
they follow:

- Work on the server where MongoDB can: ``add_field(default=)`` is one
  ``update_many``, ``rename_field`` is ``$rename`` (an update pipeline with
  ``keep_order=True``), ``drop_field`` an update pipeline,
  values kept for inverses go to the trash with ``$merge``, and come back
  by batches of in-place updates (never a ``$merge`` into the user's
  collection: SecantusDB replaces a matched document by deleting and
  inserting it, and a kill in between would lose it). Only ``add_field(fill=)`` and
  ``transform`` pull documents through Python, in ``_id`` order,
  ``batch_size`` at a time.
- Exact inverses: a field renamed with ``keep_order=True`` keeps its
  position (``$objectToArray`` / ``$arrayToObject``; by default ``$rename``
  moves it last, and back); a dropped field's value and position are kept
  and put back where they were; ``add_field`` records which documents it
  changed (or, with ``default=``, that no document had the field).
- Resumable: a step first checkpoints the name of its trash collection, then
  works in idempotent phases (``$exists`` guards, ``keepExisting`` merges).
  ``transform`` saves each batch's new documents (as one BSON blob, with the
  batch's ids) in its trash before writing them, then checkpoints, so a
  crash between the write and the checkpoint replays the saved documents
  instead of calling ``fn`` on a document twice. ``insert`` records
  each batch's new ids in its trash before inserting them, so a replayed
  batch knows which of the documents already there are its own.
"""
from __future__ import annotations

from pymongo.errors import CollectionInvalid, OperationFailure

from ragrev.errors import OperationError, StepFailed
from ragrev.ops import document as m
from ragrev.stores import estimator, implementation
from ragrev.drivers.mongo.common import (KIND, SAMPLE, _coll, _count, _fail, _ids, _token, log,  # noqa: F401
                                         rename_collection, set_validator, validator_state)
from ragrev.drivers.mongo.store import from_ejson, to_ejson
# the other implementations register themselves when imported
from ragrev.drivers.mongo import checks, data, fields  # noqa: F401,E402
from ragrev.drivers.mongo.checks import bson_validator, is_bson_type  # noqa: F401


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
    specs = {ix["name"]: ix for ix in coll.list_indexes()}
    name = op.resolve({n: list(ix["key"].items()) for n, ix in specs.items()})
    if name is None:
        if ctx.resuming and "spec" in ctx.captured:
            return 0
        what = repr(op.index_name) if op.index_name is not None else f"on {op.field!r} alone"
        raise _fail(op, f"no index {what}", OperationError)
    spec = dict(specs[name])
    for k in ("v", "ns", "name"):
        spec.pop(k, None)
    key = [[f, _direction(d)] for f, d in spec.pop("key").items()]
    ctx.captured["spec"] = {"key": key, **to_ejson(spec, relaxed=True)}
    ctx.captured["index_name"] = name
    ctx.checkpoint(None)
    coll.drop_index(name)
    return 0


# --- estimates for --plan ---------------------------------------------------------------------------------------

@estimator(m.SetSchema, KIND)
@estimator(m.ValidateAll, KIND)
@estimator(m.ExpectCount, KIND)
def _est_scan(store, op):
    return _count(store, op.collection, getattr(op, "filter", None))
