"""How a MongoDB store runs ``aggregate_into`` (:mod:`ragrev.ops.document_pipeline`):
one ``aggregate`` with ``$merge`` on the server."""
from __future__ import annotations

from pymongo.errors import CollectionInvalid, PyMongoError

from ragrev.errors import OperationError
from ragrev.ops.document_pipeline import AggregateInto
from ragrev.stores import estimator, implementation
from ragrev.drivers.mongo.steps import KIND, _coll, _fail


@implementation(AggregateInto, KIND)
def aggregate_into(store, op, ctx):
    coll = _coll(store, op)
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
    try:
        coll.aggregate(op.stages(), allowDiskUse=True)
    except PyMongoError as e:
        details = getattr(e, "details", None) or {}
        raise _fail(op, f"the pipeline failed on the server: {details.get('errmsg', str(e))}") from None
    done = store.db[op.into].count_documents({})
    ctx.checkpoint(None, done)
    return done


@estimator(AggregateInto, KIND)
def _estimate(store, op):
    if store.collection_options(op.collection) is None:
        return None
    return store.db[op.collection].count_documents(op.filter or {})
