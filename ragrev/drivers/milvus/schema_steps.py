"""How a Milvus store applies the vector operations on schema
(docs/store-kinds.md): collections, indexes, aliases, and the rebuilds
(``add_field``, ``drop_field``, ``alter_field``, ``reembed``: native where
the server has the call, else a copy into a new collection); registered by
(operation class, ``"milvus"``). The row operations are in
:mod:`~ragrev.drivers.milvus.data_steps`.

Every implementation is resumable: what a step decides (names of new, trash
and ledger collections, the mode of an inverse) goes into ``ctx.captured``
and is checkpointed before it acts; rows are walked in primary-key order and
the last key of each batch is checkpointed after it is written; every stage
checks whether it already happened ("rename if the source still exists",
"create if missing", upsert for a batch that may have been written).
"""
from __future__ import annotations

import numpy as np
from pymilvus import DataType, MilvusException

from ragrev.drivers.milvus.client import KIND, _first_line
from ragrev.drivers.milvus.data_steps import _fresh_writer, _pump
from ragrev.drivers.milvus.schema import MilvusSchema
from ragrev.errors import OperationError
from ragrev.ops.vector import (
    AddField, AlterAlias, AlterField, CreateAlias, CreateCollection, CreateIndex, DiscardCollection, DropAlias,
    DropCollection, DropField, DropIndex, Rebuild, Reembed, RenameCollection,
)
from ragrev.stores import implementation

# --- implementations: collections, indexes, aliases -------------------------------------------

@implementation(CreateCollection, KIND)
def _impl_create_collection(store: MilvusSchema, op: CreateCollection, ctx):
    cs = op.state()
    if store.is_collection(op.collection) and not store.collection_state(op.collection).same_shape(cs):
        raise op.fail(f"collection {op.collection!r} already exists with another schema")
    store.create(op.collection, cs)  # or finish creating it (its indexes), when a crash came between


@implementation(DropCollection, KIND)
def _impl_drop_collection(store: MilvusSchema, op: DropCollection, ctx):
    c = ctx.captured
    if "trash" not in c:
        phys = store.need(op, op.collection)
        c.update(physical=phys, aliases=store.aliases_of(phys), trash=store.trash_name(phys))
        ctx.checkpoint(None)
    for alias in c["aliases"]:
        if store.alias_target(alias) is not None:
            store.c.drop_alias(alias)
    store.soft_drop(c["physical"], c["trash"])


@implementation(DiscardCollection, KIND)
def _impl_discard_collection(store: MilvusSchema, op: DiscardCollection, ctx):
    if store.is_collection(op.collection):
        for alias in store.aliases_of(op.collection):
            store.c.drop_alias(alias)
        store.c.drop_collection(op.collection)


@implementation(RenameCollection, KIND)
def _impl_rename_collection(store: MilvusSchema, op: RenameCollection, ctx):
    if store.is_collection(op.collection):
        if store.resolve(op.new_name) is not None:
            raise op.fail(f"cannot rename {op.collection!r}: {op.new_name!r} already exists")
        store.rename(op.collection, op.new_name)
    elif not store.is_collection(op.new_name):
        raise op.fail(f"no collection {op.collection!r}")


@implementation(CreateIndex, KIND)
def _impl_create_index(store: MilvusSchema, op: CreateIndex, ctx):
    phys = store.need(op, op.collection)
    cs = store.collection_state(phys)
    spec = op.spec(op.need_field(cs, op.collection, op.field)["type"])
    current = cs.indexes.get(op.field)
    if current and (current["index_type"], current["metric_type"]) == (spec["index_type"], spec["metric_type"]):
        return None
    if current:
        raise op.fail(f"{op.collection}.{op.field} already has an index ({current['index_type']}); drop_index first")
    store.create_index(phys, op.field, spec)


@implementation(DropIndex, KIND)
def _impl_drop_index(store: MilvusSchema, op: DropIndex, ctx):
    phys = store.need(op, op.collection)
    current = store.collection_state(phys).indexes.get(op.target)
    if "index" not in ctx.captured:
        if current is None:
            raise op.fail(f"{op.collection}.{op.target} has no index")
        ctx.captured["index"] = current
        ctx.checkpoint(None)
    if current is not None:
        store.c.release_collection(phys)
        for name in store.c.list_indexes(phys, field_name=op.target) or [op.target]:
            store.c.drop_index(phys, name)


@implementation(CreateAlias, KIND)
def _impl_create_alias(store: MilvusSchema, op: CreateAlias, ctx):
    phys = store.need(op, op.collection)
    target = store.alias_target(op.alias)
    if target == phys:
        return None
    if target is not None or store.is_collection(op.alias):
        raise op.fail(f"alias {op.alias!r}: the name is taken")
    store.c.create_alias(phys, op.alias)


@implementation(AlterAlias, KIND)
def _impl_alter_alias(store: MilvusSchema, op: AlterAlias, ctx):
    phys = store.need(op, op.collection)
    if "previous" not in ctx.captured:
        previous = store.alias_target(op.alias)
        if previous is None:
            raise op.fail(f"no alias {op.alias!r}")
        ctx.captured["previous"] = previous
        ctx.checkpoint(None)
    store.c.alter_alias(phys, op.alias)


@implementation(DropAlias, KIND)
def _impl_drop_alias(store: MilvusSchema, op: DropAlias, ctx):
    target = store.alias_target(op.alias)
    if "collection" not in ctx.captured:
        if target is None:
            raise op.fail(f"no alias {op.alias!r}")
        ctx.captured["collection"] = target
        ctx.checkpoint(None)
    if target is not None:
        store.c.drop_alias(op.alias)


# --- implementations: rebuilds -----------------------------------------------------------------

def _rebuild(store: MilvusSchema, op: Rebuild, ctx, transform, elsewhere=None) -> int | None:
    """Copy ``op.collection`` into a new collection with ``op.new_state`` through
    ``transform(rows)``, point the alias named as the collection at it, and keep
    the old one in the trash. Each stage is recorded and idempotent.
    ``elsewhere(old, new)``: a function doing the copy elsewhere (bulk import, Dask), or None."""
    c = ctx.captured
    if "old" not in c:
        old = store.need(op, op.collection)
        c.update(mode="rebuild", old=old, was_alias=old != op.collection, new=store.fresh_name(op.collection),
                 trash=store.trash_name(old), aliases=[a for a in store.aliases_of(old) if a != op.collection])
        ctx.checkpoint(None, 0)
    done = ctx.rows_done
    if c.get("stage") is None:
        store.create(c["new"], op.new_state(store.collection_state(c["old"]), store.schema_state()))

        def first_pass():
            remote = elsewhere(c["old"], c["new"]) if elsewhere else None
            if remote is not None:
                return remote()
            return _pump(store, ctx, c["old"], _fresh_writer(store, ctx, c["new"]), transform,
                         batch=op.batch_size, total=store.count(c["old"]))

        if getattr(op, "catch_up", None):  # rows the application changes meanwhile
            from ragrev.drivers.milvus import online as milvus_online

            done = milvus_online.copy_with_catch_up(store, op, ctx, op.collection, c["old"], c["new"], first_pass,
                                                    transform)
        else:
            done = first_pass()
        c["stage"] = "copied"
        ctx.checkpoint(ctx.resume_token, done)
    logical, new = op.collection, c["new"]
    for alias in c["aliases"]:
        store.c.alter_alias(new, alias)
    if c["was_alias"]:
        store.c.alter_alias(new, logical)
    store.soft_drop(c["old"], c["trash"])
    if not c["was_alias"] and store.alias_target(logical) is None:
        store.c.create_alias(new, logical)
    c["stage"] = "switched"
    return done


def _native(store: MilvusSchema, op, ctx, call) -> bool:
    """Try the server's own call; False when it does not implement it."""
    if ctx.captured.get("mode") == "rebuild" or not op.native(store.caps):
        return False
    try:
        call()
    except Exception as e:
        # a server without the call answers gRPC UNIMPLEMENTED, which pymilvus passes on unwrapped
        # (a grpc.RpcError, not a MilvusException)
        if not isinstance(e, MilvusException) and not callable(getattr(e, "code", None)):
            raise
        if getattr(op, "rebuild", None) is False:
            raise
        if _unimplemented(e):
            return False
        raise
    ctx.captured["mode"] = "native"
    return True


def _unimplemented(e: BaseException) -> bool:
    code = getattr(e, "code", None)
    code = code() if callable(code) else code
    if getattr(code, "name", None) == "UNIMPLEMENTED":
        return True
    text = _first_line(e).lower()
    return "unimplemented" in text or "not support" in text or "unknown method" in text


@implementation(AddField, KIND)
def _impl_add_field(store: MilvusSchema, op: AddField, ctx):
    spec = op.spec()

    def native():
        phys = store.need(op, op.collection)
        if op.field in store.collection_state(phys).fields:
            return  # added before a crash
        kw = {k: spec[k] for k in ("max_length", "max_capacity", "dim") if spec.get(k)}
        if spec["element_type"]:
            kw["element_type"] = DataType[spec["element_type"]]
        if op.default is not None:
            kw["default_value"] = op.default
        store.c.add_collection_field(phys, op.field, DataType[spec["type"]], nullable=True, **kw)

    if _native(store, op, ctx, native):
        return None

    def transform(rows):
        values = [op.fill(dict(r)) for r in rows] if op.fill else [op.default] * len(rows)
        for row, value in zip(rows, values):
            row[op.field] = value.tolist() if hasattr(value, "tolist") else value
        return rows

    return _rebuild(store, op, ctx, transform)


@implementation(DropField, KIND)
def _impl_drop_field(store: MilvusSchema, op: DropField, ctx):
    def transform(rows):
        for row in rows:
            row.pop(op.field, None)
        return rows

    return _rebuild(store, op, ctx, transform)


@implementation(AlterField, KIND)
def _impl_alter_field(store: MilvusSchema, op: AlterField, ctx):
    phys = store.need(op, op.collection)
    if "previous" not in ctx.captured:
        ctx.captured["previous"] = {"max_length": store.collection_state(phys).fields.get(op.field, {}).get("max_length")}
    if _native(store, op, ctx, lambda: store.c.alter_collection_field(phys, op.field, {"max_length": op.max_length})):
        return None

    def transform(rows):
        if op.convert is not None:
            for row in rows:
                row[op.field] = op.convert(row.get(op.field))
        return rows

    return _rebuild(store, op, ctx, transform)


@implementation(Reembed, KIND)
def _impl_reembed(store: MilvusSchema, op: Reembed, ctx):
    names = []

    def transform(rows):
        if not names:  # the vector field being replaced, and its replacement
            names.extend(op.targets(store.collection_state(ctx.captured["old"])))
        vf, into = names
        vectors = op.embed([r.get(op.text_field) for r in rows])
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(rows), op.dim):
            raise OperationError(f"{op.where()}reembed {op.collection}.{into}: the embedding returned an array of "
                                 f"shape {vectors.shape}, expected ({len(rows)}, {op.dim})")
        for row, vec in zip(rows, vectors.tolist()):
            if not (op.keep and into != vf):
                row.pop(vf, None)
            row[into] = vec
        return rows

    def elsewhere(old, new):  # by bulk import (ragrev.drivers.milvus.bulk), or on a Dask cluster (ragrev.distributed)
        from ragrev import distributed

        if op.bulk and not store.lite:
            from ragrev.drivers.milvus import bulk as milvus_bulk

            staging = milvus_bulk.staging_of(op, ctx)
            return lambda: milvus_bulk.bulk_pass(store, op, ctx, old, new, transform, staging)
        executor = distributed.executor_of(op, ctx)
        if executor is None:
            return None
        vf, into = op.targets(store.collection_state(old))
        fn = distributed.ReembedRows(op.embed, op.text_field, op.dim, vf, into, op.keep, op.where())
        return lambda: distributed.run_pass(store, op, ctx, executor, old, new, fn)

    return _rebuild(store, op, ctx, transform, elsewhere)

