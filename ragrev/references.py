"""Cross-store references: ``op.check_references(source, target, ...)``.

A check step (it changes nothing) that every value of a field in one store
exists as a value of a field in another (or the same) store::

    op.check_references("vectors.chunks.doc_id", "docs.documents._id")
    op.check_references("meta.sources.id", "vectors.chunks.source_id", max_dangling=10)
    op.check_references("docs.conversations_archive", "archive")   # every pointer's file and manifest

``source`` and ``target`` are ``store.collection.field`` (a MongoDB field may
be a dotted path; a Milvus collection may be an alias). The source is
streamed in batches of ``batch_size`` rows; the distinct values of a batch
are looked up in the target with one query (``in [...]`` / ``$in`` / ``IN``),
so neither side is ever held in memory. The result counts the source rows
checked and those whose value has no match (dangling), with a sample of up
to ``sample`` distinct dangling values; more than ``max_dangling`` dangling
rows fail the step (exit 1) in a revision.

With ``target="archive"``, the source is a chat archive's pointer collection
(``<collection>_archive``): each distinct (root, path) of its pointers must
have its data file and its manifest in cold storage.

The step belongs to the source store (it runs, and is journaled, there);
``ragrev drift`` runs again every ``check_references`` of the revisions a
store is at, and reports dangling references as drift.
"""
from __future__ import annotations

import json
from typing import ClassVar

from ragrev.errors import CheckFailed, OperationError
from ragrev.ops import Operation
from ragrev.stores import chunks, implementation

ARCHIVE = "archive"


def parse_ref(op, text, what: str, field_required: bool = True) -> tuple[str, str, str | None]:
    if not isinstance(text, str) or text.count(".") < (2 if field_required else 1):
        raise OperationError(f"{op.where()}check_references: {what}={text!r}: write store.collection.field")
    store, coll, *rest = text.split(".", 2)
    if not store or not coll or (rest and not rest[0]):
        raise OperationError(f"{op.where()}check_references: {what}={text!r}: write store.collection.field")
    return store, coll, rest[0] if rest else None


class CheckReferences(Operation):
    """Every ``source`` value exists in ``target`` (see the module docstring)."""

    kind: ClassVar[str] = "references"
    name: ClassVar[str] = "check_references"
    is_check: ClassVar[bool] = True
    impl_modules: ClassVar[dict] = {}

    def __init__(self, source: str, target: str, batch_size: int = 1000, sample: int = 10,
                 max_dangling: int = 0, filter=None):
        self.source, self.target = source, target
        self.batch_size, self.sample, self.max_dangling, self.filter = batch_size, sample, max_dangling, filter

    def params(self) -> dict:
        return {"source": self.source, "target": self.target, "batch_size": self.batch_size, "sample": self.sample,
                "max_dangling": self.max_dangling, "filter": self.filter}

    def validate(self) -> None:
        archive = self.target == ARCHIVE
        self.src = parse_ref(self, self.source, "source", field_required=not archive)
        self.dst = None if archive else parse_ref(self, self.target, "target")
        for key in ("batch_size", "sample", "max_dangling"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if key == "batch_size" else 0):
                raise OperationError(f"{self.where()}check_references: {key} must be a "
                                     f"{'positive' if key == 'batch_size' else 'non-negative'} integer, not {v!r}")

    def describe(self) -> str:
        return f"check_references({self.source} -> {self.target})"


def check(op: CheckReferences, stores: dict, open_store) -> dict:
    """Run the check: ``{"checked", "dangling", "sample"}`` (source values
    checked and dangling, one per row; distinct dangling values). ``stores``: connected
    stores by name; ``open_store(name)`` opens another (returns it and a close function)."""
    closers = []

    def get(name):
        if name in stores:
            return stores[name]
        s, close = open_store(name)
        closers.append(close)
        stores[name] = s
        return s

    try:
        src_store = get(op.src[0])
        values = READERS[src_store.kind](src_store, op.src[1], op.src[2], op.batch_size, op.filter)
        if op.dst is None:
            return _check_archive(op, src_store, values)
        dst_store = get(op.dst[0])
        lookup = LOOKUPS[dst_store.kind]
        checked = dangling = 0
        sample = []
        for batch in values:
            present = [v for v in batch if v is not None]
            found = lookup(dst_store, op.dst[1], op.dst[2], list({_key(v): v for v in present}.values()))
            missing = [v for v in present if _key(v) not in found]
            checked += len(present)
            dangling += len(missing)
            for v in missing:
                if len(sample) < op.sample and v not in sample:
                    sample.append(v)
        return {"checked": checked, "dangling": dangling, "sample": sample}
    finally:
        for close in closers:
            close()


def _key(v):
    return json.dumps(v, sort_keys=True, default=str)


def _check_archive(op, store, pointers) -> dict:
    from ragrev.chats.archive import MANIFEST_SUFFIX, open_root

    roots, seen = {}, set()
    checked = dangling = 0
    sample = []
    base = getattr(op, "base_dir", None)
    for batch in pointers:
        for p in batch:
            if not isinstance(p, dict) or "root" not in p or "path" not in p:
                continue
            key = (p["root"], p["path"])
            if key in seen:
                continue
            seen.add(key)
            if p["root"] not in roots:
                roots[p["root"]] = open_root(p["root"], base)
            root = roots[p["root"]]
            checked += 1
            gone = [suffix for suffix in ("", MANIFEST_SUFFIX) if not root.fs.exists(root.full(p["path"]) + suffix)]
            if gone:
                dangling += 1
                if len(sample) < op.sample:
                    sample.append(root.location(p["path"]) + (" (manifest)" if gone == [MANIFEST_SUFFIX] else ""))
    return {"checked": checked, "dangling": dangling, "sample": sample}


# --- per-kind readers (source values, streamed) and lookups (target values of a batch) ---------------

def _read_milvus(store, coll, field, batch, filter):
    phys = store.resolve(coll)
    if phys is None:
        raise OperationError(f"check_references: no collection {coll!r} in store {store.name!r}")
    for rows in store.scan(phys, filter=filter, batch=batch, fields=(field,)):
        yield [r.get(field) for r in rows]


def _lookup_milvus(store, coll, field, values):
    from ragrev.drivers.milvus.store import lit

    phys = store.resolve(coll)
    if phys is None:
        raise OperationError(f"check_references: no collection {coll!r} in store {store.name!r}")
    if not values:
        return set()
    rows = store.c.query(phys, filter=f"{field} in [{', '.join(lit(v) for v in values)}]", output_fields=[field],
                         limit=len(values) * 4 + 16)
    return {_key(r[field]) for r in rows}


def _read_mongo(store, coll, field, batch, filter):
    if coll not in store.collection_names():
        raise OperationError(f"check_references: no collection {coll!r} in store {store.name!r}")
    projection = None if field is None else {field: 1}
    cursor = store.db[coll].find(filter or {}, projection).batch_size(batch)
    for docs in chunks(cursor, batch):
        yield docs if field is None else [_dig(d, field) for d in docs]


def _dig(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _lookup_mongo(store, coll, field, values):
    if coll not in store.collection_names():
        raise OperationError(f"check_references: no collection {coll!r} in store {store.name!r}")
    return {_key(_dig(d, field)) for d in store.db[coll].find({field: {"$in": values}}, {field: 1})}


def _read_sql(store, coll, field, batch, filter):
    import sqlalchemy as sa

    q = sa.select(sa.column(field)).select_from(sa.table(coll))
    if filter:
        q = q.where(sa.text(filter))
    result = store.conn.execution_options(yield_per=batch).execute(q)
    try:
        for rows in result.partitions(batch):
            yield [r[0] for r in rows]
    finally:
        result.close()


def _lookup_sql(store, coll, field, values):
    import sqlalchemy as sa

    if not values:
        return set()
    col = sa.column(field)
    rows = store.conn.execute(sa.select(col).select_from(sa.table(coll)).where(col.in_(values))).fetchall()
    return {_key(r[0]) for r in rows}


READERS = {"milvus": _read_milvus, "mongo": _read_mongo, "sql": _read_sql}
LOOKUPS = {"milvus": _lookup_milvus, "mongo": _lookup_mongo, "sql": _lookup_sql}


def _apply(store, op: CheckReferences, ctx):
    from ragrev.stores import open_store as _open

    def opener(name):
        config = getattr(ctx, "config", None)
        if config is None or name not in config.stores:
            raise OperationError(f"{op.where()}check_references: unknown store {name!r}")
        s = _open(config.store(name))
        s.connect()
        return s, s.close

    op.base_dir = getattr(getattr(ctx, "config", None), "directory", None)
    stores = {**(ctx.stores or {}), store.name: store}
    result = check(op, stores, opener)
    ctx.captured.update(result)
    if result["dangling"] > op.max_dangling:
        raise CheckFailed(f"{op.where()}check_references: {result['dangling']} of {result['checked']} "
                          f"{op.source} value(s) have no match in {op.target}; e.g. "
                          f"{', '.join(map(str, result['sample']))}")
    return result["checked"]


for _kind in ("milvus", "mongo", "sql"):
    implementation(CheckReferences, _kind)(_apply)
del _kind
