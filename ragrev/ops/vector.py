"""Vector store operations (docs/store-kinds.md): what ``op.<milvus store>.<name>(...)`` records.

Each operation is a dataclass of plain parameters (callables allowed for row
functions and embeddings). It knows, without any driver:

- ``validate()``: its arguments on their own (field specs, index types, metrics);
- ``simulate(state)``: its effect on a :class:`SchemaState` — the schema of the
  store as the run's earlier steps leave it — raising :class:`OperationError`
  naming the collection and field for a wrong dimension, an unknown field or
  collection, or an index type / operation the server does not support
  (``MilvusStore.preflight`` runs this before anything changes);
- ``reverse(captured)``: the operations that undo it, from what its
  implementation captured when it ran.

Field specs are dicts: ``{"name": "id", "type": "INT64", "primary": True}``,
``{"name": "text", "type": "VARCHAR", "max_length": 2048}``,
``{"name": "meta", "type": "JSON", "nullable": True}``,
``{"name": "embedding", "type": "FLOAT_VECTOR", "dim": 384}``. Index specs:
``{"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 16}}``,
given per vector field (``indexes={"embedding": {...}}``); a vector field
without one gets ``AUTOINDEX``/``COSINE``.

Data-changing operations keep what their inverse needs inside the store, in
``ragrev_trash_*`` collections (``ragrev purge`` deletes them). Schema changes
Milvus cannot make in place (every field change on Milvus Lite, a re-embedding
everywhere) copy the rows into a new collection ``<name>_v<n>``, point an
alias named as the collection at it, and keep the old collection in the
trash: the inverse switches back.

The operations, in a revision (inverse in brackets):

- ``create_collection(collection, fields, indexes=None, dynamic=False)`` [soft drop]
- ``drop_collection(collection)`` [rename back from the trash, aliases restored]
- ``rename_collection(collection, new_name)`` [rename back]
- ``create_index(collection, field, index_type=, metric_type=, params=)`` [drop_index]
- ``drop_index(collection, field=None, index_name=None)`` [create_index with the captured spec]
- ``create_alias(collection, alias)`` / ``alter_alias(collection, alias)`` /
  ``drop_alias(alias)`` [drop / point back / re-create]
- in :mod:`ragrev.ops.vector_rebuild`: ``add_field`` / ``drop_field`` /
  ``alter_field`` / ``reembed`` [switch back]
- in :mod:`ragrev.ops.vector_data`: ``copy``, ``insert``, ``upsert``,
  ``delete`` [``restore_rows``, or dropping a collection ``copy`` created]
  and the checks ``expect_count``, ``check_recall``;
- in :mod:`ragrev.ops.vector_online`: the catch-up parameters of ``copy``
  and ``reembed`` (``catch_up=``, ``tombstone=``) and the checks
  ``expect_fresh`` and ``check_relevance``.

Specs, capabilities and the schema state live in :mod:`ragrev.ops.vector_schema`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ragrev.errors import Irreversible
from ragrev.ops import register
from ragrev.ops.vector_schema import (
    DENSE_TYPES, FAMILY, INDEX_TYPES, KIND, METRICS, MILVUS, MILVUS_LITE, RESERVED_PREFIX, SCALAR_INDEX_TYPES, SCALAR_TYPES,
    TRASH_PREFIX, VECTOR_TYPES, Capabilities, CollectionState, MilvusOp, SchemaState, _captured, _no_reserved,
    _without_none, default_index, embedding_spec, field_spec, index_spec,
)


@register(FAMILY)
@dataclass
class CreateCollection(MilvusOp):
    """Create a collection: ``fields`` (dicts, one ``primary``), ``indexes``
    (vector field -> index spec), ``dynamic`` (a dynamic field for keys not in
    the schema). Inverse: a soft ``drop_collection``."""

    name = "create_collection"
    collection: str
    fields: list
    indexes: dict | None = None
    dynamic: bool = False
    description: str = ""
    embedding: dict | None = None

    def params(self) -> dict:
        return _without_none(super().params(), "embedding")

    def validate(self) -> None:
        _no_reserved(self, self.collection)
        if not isinstance(self.fields, (list, tuple)) or not self.fields:
            raise self.fail(f"collection {self.collection!r}: fields= must be a non-empty list of field dicts")
        specs = [field_spec(f, lambda m: self.fail(f"collection {self.collection!r}: {m}")) for f in self.fields]
        names = [s["name"] for s in specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise self.fail(f"collection {self.collection!r}: duplicate field(s) {', '.join(sorted(dup))}")
        if sum(s["primary"] for s in specs) != 1:
            raise self.fail(f"collection {self.collection!r}: mark exactly one field primary=True")
        if not any(s["type"] in VECTOR_TYPES for s in specs):
            raise self.fail(f"collection {self.collection!r}: Milvus needs at least one vector field")
        self.fields = specs
        by_name = {s["name"]: s for s in specs}
        indexes = dict(self.indexes or {})
        for fname in indexes:
            if fname not in by_name:
                raise self.fail(f"collection {self.collection!r}: index on unknown field {fname!r}")
        for s in specs:
            if s["type"] in VECTOR_TYPES and s["name"] not in indexes:
                indexes[s["name"]] = default_index(s["type"])
        self.indexes = {f: index_spec(self.collection, f, by_name[f]["type"], spec, self.fail)
                        for f, spec in indexes.items()}
        if self.embedding is not None:
            self.embedding = embedding_spec(self, self.embedding, [s["name"] for s in specs
                                                                   if s["type"] in DENSE_TYPES])

    def state(self) -> CollectionState:
        return CollectionState({s["name"]: s for s in self.fields}, bool(self.dynamic), dict(self.indexes),
                               self.description, dict(self.embedding) if self.embedding else None)

    def describe(self) -> str:
        def one(f):
            size = f["dim"] or f["max_length"]
            return f"{f['name']} {f['type']}" + (f"({size})" if size else "") + (" pk" if f["primary"] else "")

        parts = [one(f) for f in self.fields] + [f"{f}: {i['index_type']}/{i['metric_type']}"
                                                 for f, i in self.indexes.items()]
        return f"create_collection({self.collection!r}: {', '.join(parts)}" + (", dynamic)" if self.dynamic else ")")

    def simulate(self, state):
        cs = self.state()
        for f in self.fields:
            self.check_field_type(state, self.collection, f)
        for fname, ispec in self.indexes.items():
            self.check_index(state, self.collection, cs.fields[fname], ispec)
        self.check_vector_count(state, self.collection, cs)
        existing = state.collection(self.collection)
        if state.exists(self.collection) and not (existing and not state.is_alias(self.collection)
                                                  and existing.same_shape(cs)):
            raise self.fail(f"collection {self.collection!r} already exists")
        state.put(self.collection, cs)

    def reverse(self, captured):
        return self.inverse(DropCollection(self.collection))


@register(FAMILY)
@dataclass
class DropCollection(MilvusOp):
    """Soft drop: the collection is renamed into the trash (its aliases are
    dropped and remembered); the inverse renames it back and restores them.
    Dropping an alias-name drops the collection behind it."""

    name = "drop_collection"
    destructive = True
    drops_collection = True
    collection: str

    def simulate(self, state):
        self.need(state, self.collection)
        state.remove(state.physical(self.collection))

    def reverse(self, captured):
        c = _captured(self, captured, "trash", "physical")
        return self.inverse(RenameCollection(c["trash"], c["physical"]),
                            *[CreateAlias(c["physical"], a) for a in c.get("aliases", [])])


@register(FAMILY)
@dataclass
class RenameCollection(MilvusOp):
    """Rename a collection (not an alias: use ``alter_alias``). Inverse: the rename back.
    (Formerly ``rename_collection(old=, new=)``: still accepted, with a warning.)"""

    name = "rename_collection"
    renamed = {"old": "collection", "new": "new_name"}
    collection: str
    new_name: str

    def validate(self) -> None:
        _no_reserved(self, self.new_name)

    def simulate(self, state):
        if state.is_alias(self.collection):
            raise self.fail(f"{self.collection!r} is an alias; use alter_alias / drop_alias")
        self.need(state, self.collection)
        if state.exists(self.new_name):
            raise self.fail(f"cannot rename {self.collection!r}: {self.new_name!r} already exists")
        state.rename(self.collection, self.new_name)

    def reverse(self, captured):
        return self.inverse(RenameCollection(self.new_name, self.collection))


@register(FAMILY)
@dataclass(init=False)
class CreateIndex(MilvusOp):
    """Build an index on a field: ``create_index(collection, field,
    index_type=, metric_type=, params=)`` (the collection is released,
    indexed, loaded again). Inverse: ``drop_index``."""

    name = "create_index"
    collection: str
    field: str
    index_type: str = "AUTOINDEX"
    metric_type: str | None = None
    index_params: dict | None = None   # ``params=`` in a revision (``params`` names Operation.params)

    def __init__(self, collection: str, field: str, index_type: str = "AUTOINDEX", metric_type: str | None = None,
                 params: dict | None = None):
        self.collection, self.field, self.index_type = collection, field, index_type
        self.metric_type, self.index_params = metric_type, params

    def spec(self, ftype: str) -> dict:
        return index_spec(self.collection, self.field, ftype, {"index_type": self.index_type,
                          "metric_type": self.metric_type, "params": self.index_params}, self.fail)

    def simulate(self, state):
        cs = self.need(state, self.collection)
        f = self.need_field(cs, self.collection, self.field)
        ispec = self.spec(f["type"])
        self.check_index(state, self.collection, f, ispec)
        if self.field in cs.indexes and cs.indexes[self.field] != ispec:
            raise self.fail(f"{self.collection}.{self.field} already has an index "
                            f"({cs.indexes[self.field]['index_type']}); drop_index first")
        cs.indexes[self.field] = ispec

    def reverse(self, captured):
        return self.inverse(DropIndex(self.collection, self.field))


@register(FAMILY)
@dataclass
class DropIndex(MilvusOp):
    """Drop the index of a vector or scalar field: ``drop_index(collection,
    field)``, or ``drop_index(collection, index_name=...)`` (an index ragrev
    made is named after its field). The collection stays released until an
    index is created again. Inverse: ``create_index`` with the spec it had."""

    name = "drop_index"
    added = ("index_name",)
    collection: str
    field: str | None = None
    index_name: str | None = None

    def validate(self) -> None:
        if (self.field is None) == (self.index_name is None):
            raise self.fail(f"{self.collection}: give field= or index_name=, one of them")

    @property
    def target(self) -> str:
        """The field whose index is dropped (``index_name`` resolved by :meth:`simulate`,
        else taken as the field it is named after)."""
        return self.field or getattr(self, "_resolved", None) or self.index_name

    def simulate(self, state):
        cs = self.need(state, self.collection)
        if self.field is None:
            named = [f for f, spec in cs.indexes.items() if (spec or {}).get("index_name") == self.index_name]
            if not named and self.index_name not in cs.indexes:
                raise self.fail(f"{self.collection} has no index named {self.index_name!r}; give field=")
            self._resolved = named[0] if named else self.index_name
        self.need_field(cs, self.collection, self.target)
        if self.target not in cs.indexes:
            raise self.fail(f"{self.collection}.{self.target} has no index")
        del cs.indexes[self.target]

    def reverse(self, captured):
        spec = _captured(self, captured, "index")["index"]
        return self.inverse(CreateIndex(self.collection, self.target, spec["index_type"], spec.get("metric_type"),
                                        spec.get("params") or None))


@register(FAMILY)
@dataclass
class CreateAlias(MilvusOp):
    """Point a new alias at a collection. Inverse: ``drop_alias``."""

    name = "create_alias"
    collection: str
    alias: str

    def validate(self) -> None:
        _no_reserved(self, self.alias, "alias")

    def simulate(self, state):
        self.need(state, self.collection)
        if state.exists(self.alias) and state.physical(self.alias) != state.physical(self.collection):
            raise self.fail(f"alias {self.alias!r}: the name is taken")
        state.alias(self.alias, state.physical(self.collection))

    def reverse(self, captured):
        return self.inverse(DropAlias(self.alias))


@register(FAMILY)
@dataclass
class AlterAlias(MilvusOp):
    """Point an alias at another collection: the blue-green switch. Inverse:
    point it back."""

    name = "alter_alias"
    collection: str
    alias: str

    def simulate(self, state):
        if not state.is_alias(self.alias):
            raise self.fail(f"no alias {self.alias!r}")
        self.need(state, self.collection)
        state.alias(self.alias, state.physical(self.collection))

    def reverse(self, captured):
        return self.inverse(AlterAlias(_captured(self, captured, "previous")["previous"], self.alias))


@register(FAMILY)
@dataclass
class DropAlias(MilvusOp):
    """Drop an alias. Inverse: ``create_alias`` to the collection it named."""

    name = "drop_alias"
    alias: str

    def simulate(self, state):
        if not state.is_alias(self.alias):
            raise self.fail(f"no alias {self.alias!r}")
        state.unalias(self.alias)

    def reverse(self, captured):
        return self.inverse(CreateAlias(_captured(self, captured, "collection")["collection"], self.alias))


# the rebuilds, data operations and checks register themselves with the rest
from ragrev.ops.vector_rebuild import AddField, AlterField, DiscardCollection, DropField, Rebuild, Reembed  # noqa: E402
from ragrev.ops.vector_data import (  # noqa: E402
    CheckRecall, Copy, Delete, ExpectCount, Insert, RestoreRows, Upsert,
)
from ragrev.ops.vector_online import (  # noqa: E402
    CheckRelevance, ExpectFresh, catch_up_params, simulate_catch_up, validate_catch_up,
)

__all__ = [
    "KIND", "TRASH_PREFIX", "RESERVED_PREFIX", "SCALAR_TYPES", "DENSE_TYPES", "VECTOR_TYPES", "METRICS", "INDEX_TYPES",
    "SCALAR_INDEX_TYPES", "MILVUS", "MILVUS_LITE", "Capabilities", "CollectionState", "SchemaState", "MilvusOp",
    "field_spec", "index_spec", "default_index",
    "CreateCollection", "DropCollection", "RenameCollection", "CreateIndex", "DropIndex", "CreateAlias", "AlterAlias",
    "DropAlias", "Rebuild", "DiscardCollection", "AddField", "DropField", "AlterField", "Reembed",
    "Copy", "Insert", "Upsert", "Delete", "RestoreRows", "ExpectCount", "CheckRecall", "ExpectFresh",
    "CheckRelevance",
]
