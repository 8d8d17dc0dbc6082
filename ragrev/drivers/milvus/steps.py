"""How a Milvus store applies each vector store operation (docs/store-kinds.md): the
implementations registered by (operation class, ``"milvus"``), and the row
estimates for ``--plan``.

Every implementation is resumable: what a step decides (names of new, trash
and ledger collections, the mode of an inverse) goes into ``ctx.captured``
and is checkpointed before it acts; rows are walked in primary-key order and
the last key of each batch is checkpointed after it is written; every stage
checks whether it already happened ("rename if the source still exists",
"create if missing", upsert for a batch that may have been written).
"""
from __future__ import annotations

import itertools
import random

import numpy as np
from pymilvus import DataType, MilvusException

from ragrev.errors import CheckFailed, OperationError
from ragrev.ops.vector import (
    AddField, AlterAlias, AlterField, CheckRecall, CollectionState, Copy, CreateAlias, CreateCollection, CreateIndex,
    Delete, DiscardCollection, DropAlias, DropCollection, DropField, DropIndex, ExpectCount, Insert, Rebuild, Reembed, RenameCollection,
    RestoreRows, Upsert,
)
from ragrev.stores import estimator, implementation
from ragrev.drivers.milvus.store import KIND, ZERO, MilvusStore, _first_line

# --- implementations: collections, indexes, aliases -------------------------------------------

@implementation(CreateCollection, KIND)
def _impl_create_collection(store: MilvusStore, op: CreateCollection, ctx):
    cs = op.state()
    if store.is_collection(op.collection) and not store.collection_state(op.collection).same_shape(cs):
        raise op.fail(f"collection {op.collection!r} already exists with another schema")
    store.create(op.collection, cs)  # or finish creating it (its indexes), when a crash came between


@implementation(DropCollection, KIND)
def _impl_drop_collection(store: MilvusStore, op: DropCollection, ctx):
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
def _impl_discard_collection(store: MilvusStore, op: DiscardCollection, ctx):
    if store.is_collection(op.collection):
        for alias in store.aliases_of(op.collection):
            store.c.drop_alias(alias)
        store.c.drop_collection(op.collection)


@implementation(RenameCollection, KIND)
def _impl_rename_collection(store: MilvusStore, op: RenameCollection, ctx):
    if store.is_collection(op.collection):
        if store.resolve(op.new_name) is not None:
            raise op.fail(f"cannot rename {op.collection!r}: {op.new_name!r} already exists")
        store.rename(op.collection, op.new_name)
    elif not store.is_collection(op.new_name):
        raise op.fail(f"no collection {op.collection!r}")


@implementation(CreateIndex, KIND)
def _impl_create_index(store: MilvusStore, op: CreateIndex, ctx):
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
def _impl_drop_index(store: MilvusStore, op: DropIndex, ctx):
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
def _impl_create_alias(store: MilvusStore, op: CreateAlias, ctx):
    phys = store.need(op, op.collection)
    target = store.alias_target(op.alias)
    if target == phys:
        return None
    if target is not None or store.is_collection(op.alias):
        raise op.fail(f"alias {op.alias!r}: the name is taken")
    store.c.create_alias(phys, op.alias)


@implementation(AlterAlias, KIND)
def _impl_alter_alias(store: MilvusStore, op: AlterAlias, ctx):
    phys = store.need(op, op.collection)
    if "previous" not in ctx.captured:
        previous = store.alias_target(op.alias)
        if previous is None:
            raise op.fail(f"no alias {op.alias!r}")
        ctx.captured["previous"] = previous
        ctx.checkpoint(None)
    store.c.alter_alias(phys, op.alias)


@implementation(DropAlias, KIND)
def _impl_drop_alias(store: MilvusStore, op: DropAlias, ctx):
    target = store.alias_target(op.alias)
    if "collection" not in ctx.captured:
        if target is None:
            raise op.fail(f"no alias {op.alias!r}")
        ctx.captured["collection"] = target
        ctx.checkpoint(None)
    if target is not None:
        store.c.drop_alias(op.alias)


# --- implementations: rows --------------------------------------------------------------------

def _pump(store: MilvusStore, ctx, source: str, write, transform=None, filter=None, batch=1000, total=None,
          token_extra=None) -> int:
    """Read ``source`` in pk order from the checkpointed position, ``write(rows)``
    each transformed batch, checkpoint after each."""
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    done = int(token.get("done", 0))
    pk = store.pk_of(source)
    for rows in store.scan(source, filter, after=token.get("last"), batch=batch, pk=pk):
        last = rows[-1][pk]
        out = transform(rows) if transform else rows
        ctx.fence()
        if out:
            write(out)
        done += len(rows)
        ctx.checkpoint({**(token_extra or {}), "last": last, "done": done}, done)
        ctx.progress(done, total)
    return done


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


def _ledgers(store: MilvusStore, ctx, collection: str) -> None:
    """Choose how the rows written into an existing ``collection`` will be
    undone: ledgers of the keys created and (if it was not empty) of the rows
    overwritten."""
    c = ctx.captured
    if "undo" in c:
        return
    c.update(undo="ledger", created=store.trash_name(collection, "created"))
    if store.count(collection):
        c["saved"] = store.trash_name(collection, "saved")
    ctx.checkpoint(ctx.resume_token, ctx.rows_done)


def _fresh_writer(store: MilvusStore, ctx, collection: str):
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


def _key_ledger(store: MilvusStore, name: str, cs: CollectionState) -> None:
    """A trash collection of primary keys (and the dummy vector Milvus wants)."""
    pk = cs.pk
    store.create(name, CollectionState(
        {pk: {**cs.fields[pk], "auto_id": False},
         "v": {"name": "v", "type": "FLOAT_VECTOR", "dim": len(ZERO), "primary": False, "auto_id": False,
               "max_length": None, "element_type": None, "max_capacity": None, "nullable": False,
               "default": None, "description": ""}},
        False, {"v": {"index_type": "FLAT", "metric_type": "L2", "params": {}}}))


def _ledger_writer(store: MilvusStore, ctx, collection: str):
    """``write(rows)`` keeping what the inverse needs: for a collection this
    step created, nothing; for one that was empty, the keys written (the
    ``created`` ledger); otherwise also each row it overwrites (``saved``) —
    once, before writing, so a redone batch keeps the true originals."""
    c = ctx.captured
    if c["undo"] == "drop":
        return _fresh_writer(store, ctx, collection)
    cs = store.collection_state(collection)
    pk = cs.pk
    _key_ledger(store, c["created"], cs)
    if "saved" not in c:
        fresh = _fresh_writer(store, ctx, collection)
        ledger = _fresh_writer(store, ctx, c["created"])  # inserts (an upsert is a delete and an insert)

        def write_new(rows):
            ledger([{pk: r[pk], "v": ZERO} for r in rows])  # a key twice in the ledger is deleted twice: harmless
            fresh(rows)

        return write_new
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
def _impl_copy(store: MilvusStore, op: Copy, ctx):
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
def _impl_write_rows(store: MilvusStore, op, ctx):
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
    while True:
        batch = list(itertools.islice(rows, op.batch_size))
        if not batch:
            return done
        ctx.fence()
        write(batch)
        done += len(batch)
        ctx.checkpoint({"done": done}, done)
        ctx.progress(done, total)


def _save_matching(store: MilvusStore, op, ctx, phys: str) -> str:
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


def _update_where(store: MilvusStore, op: Upsert, ctx, phys: str):
    saved = _save_matching(store, op, ctx, phys)
    pk = store.pk_of(phys)
    fn = op.transform or (lambda row: {**row, **op.values})
    return _pump(store, ctx, saved, lambda rows: store.c.upsert(phys, rows), _row_mapper(fn, pk),
                 batch=op.batch_size, token_extra={"phase": "apply"})


@implementation(Delete, KIND)
def _impl_delete(store: MilvusStore, op: Delete, ctx):
    phys = store.need(op, op.collection)
    saved = _save_matching(store, op, ctx, phys)
    pk = store.pk_of(phys)
    return _pump(store, ctx, saved, lambda rows: store.c.delete(phys, ids=[r[pk] for r in rows]),
                 batch=op.batch_size, token_extra={"phase": "apply"})


@implementation(RestoreRows, KIND)
def _impl_restore_rows(store: MilvusStore, op: RestoreRows, ctx):
    phys = store.need(op, op.collection)
    pk = store.pk_of(phys)
    phases = [k for k in ("created", "saved") if getattr(op, k)]
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    start = phases.index(token["phase"]) if token.get("phase") in phases else 0
    done = ctx.rows_done if token else 0
    for i, phase in enumerate(phases[start:], start):
        if phase == "saved":  # write back the rows it overwrote or deleted
            write, fields = (lambda rows: store.c.upsert(phys, rows)), ("*",)
        else:                 # delete the keys it created
            write, fields = (lambda rows: store.c.delete(phys, ids=[r[pk] for r in rows])), (pk,)
        after = token.get("last") if i == start else None
        for rows in store.scan(getattr(op, phase), after=after, batch=op.batch_size, fields=fields, pk=pk):
            ctx.fence()
            write(rows)
            done += len(rows)
            ctx.checkpoint({"phase": phase, "last": rows[-1][pk]}, done)
    return done


# --- implementations: rebuilds -----------------------------------------------------------------

def _rebuild(store: MilvusStore, op: Rebuild, ctx, transform, elsewhere=None) -> int | None:
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


def _native(store: MilvusStore, op, ctx, call) -> bool:
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
def _impl_add_field(store: MilvusStore, op: AddField, ctx):
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
def _impl_drop_field(store: MilvusStore, op: DropField, ctx):
    def transform(rows):
        for row in rows:
            row.pop(op.field, None)
        return rows

    return _rebuild(store, op, ctx, transform)


@implementation(AlterField, KIND)
def _impl_alter_field(store: MilvusStore, op: AlterField, ctx):
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
def _impl_reembed(store: MilvusStore, op: Reembed, ctx):
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


# --- implementations: checks -------------------------------------------------------------------

@implementation(ExpectCount, KIND)
def _impl_expect_count(store: MilvusStore, op: ExpectCount, ctx):
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


def _search(store: MilvusStore, name: str, field: str, queries: np.ndarray, k: int, filter, params) -> list[list]:
    out = []
    for i in range(0, len(queries), 100):
        res = store.c.search(name, data=queries[i:i + 100].tolist(), anns_field=field, limit=k, filter=filter or "",
                             search_params={"params": dict(params or {})}, output_fields=[])
        out += [[hit["id"] for hit in hits] for hits in res]
    return out


def _sample_queries(store: MilvusStore, op: CheckRecall, phys: str, pk: str, vf: str) -> np.ndarray:
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
def _impl_check_recall(store: MilvusStore, op: CheckRecall, ctx):
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

def _count_or_none(store: MilvusStore, name: str, filter=None):
    phys = store.resolve(name)
    return store.count(phys, filter) if phys else None


for _cls in (AddField, DropField, AlterField, Reembed):
    estimator(_cls, KIND)(lambda store, op: _count_or_none(store, op.collection))
estimator(Copy, KIND)(lambda store, op: _count_or_none(store, op.source, op.filter))
estimator(Delete, KIND)(lambda store, op: _count_or_none(store, op.collection, op.filter))
estimator(Insert, KIND)(lambda store, op: len(op.rows) if isinstance(op.rows, (list, tuple)) else None)
estimator(Upsert, KIND)(lambda store, op: len(op.rows) if isinstance(op.rows, (list, tuple))
                        else _count_or_none(store, op.collection, op.filter) if op.filter else None)
