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
- ``rename_collection(old, new)`` [rename back]
- ``create_index(collection, field, index_type=, metric_type=, params=)`` [drop_index]
- ``drop_index(collection, field)`` [create_index with the captured spec]
- ``create_alias(collection, alias)`` / ``alter_alias(collection, alias)`` /
  ``drop_alias(alias)`` [drop / point back / re-create]
- ``add_field`` / ``drop_field`` / ``alter_field`` / ``reembed`` [switch back]
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
    default_index, field_spec, index_spec,
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
    """Rename a collection (not an alias: use ``alter_alias``). Inverse: the rename back."""

    name = "rename_collection"
    old: str
    new: str

    def validate(self) -> None:
        _no_reserved(self, self.new)

    def simulate(self, state):
        if state.is_alias(self.old):
            raise self.fail(f"{self.old!r} is an alias; use alter_alias / drop_alias")
        self.need(state, self.old)
        if state.exists(self.new):
            raise self.fail(f"cannot rename {self.old!r}: {self.new!r} already exists")
        state.rename(self.old, self.new)

    def reverse(self, captured):
        return self.inverse(RenameCollection(self.new, self.old))


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
    """Drop a field's index (the collection stays released until an index is
    created again). Inverse: ``create_index`` with the spec it had."""

    name = "drop_index"
    collection: str
    field: str

    def simulate(self, state):
        cs = self.need(state, self.collection)
        self.need_field(cs, self.collection, self.field)
        if self.field not in cs.indexes:
            raise self.fail(f"{self.collection}.{self.field} has no index")
        del cs.indexes[self.field]

    def reverse(self, captured):
        spec = _captured(self, captured, "index")["index"]
        return self.inverse(CreateIndex(self.collection, self.field, spec["index_type"], spec.get("metric_type"),
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


# --- schema changes by rebuild -------------------------------------------------------------------

class Rebuild(MilvusOp):
    """A change applied by copying into a new collection and switching the alias
    (or natively where the server can). ``captured`` says which."""

    data_step = True

    def new_state(self, cs: CollectionState, state: SchemaState) -> CollectionState:
        raise NotImplementedError

    def simulate(self, state):
        cs = self.need(state, self.collection)
        new = self.new_state(cs.clone(), state)
        self.check_vector_count(state, self.collection, new)
        state.replace(self.collection, new)

    def reverse(self, captured):
        c = _captured(self, captured, "mode")
        if c["mode"] == "native":
            return self.native_inverse(c)
        c = _captured(self, captured, "old", "new", "trash", "was_alias")
        ops = [] if c["was_alias"] else [DropAlias(self.collection)]
        ops.append(RenameCollection(c["trash"], c["old"]))
        if c["was_alias"]:
            ops.append(AlterAlias(c["old"], self.collection))
        ops += [AlterAlias(c["old"], a) for a in c.get("aliases", [])]
        ops.append(DropCollection(c["new"]))
        return self.inverse(*ops)

    def native_inverse(self, captured) -> list:
        raise Irreversible(f"{self.where()}{self.describe()}: no inverse recorded")

    def reverse_failed(self, captured):
        c = captured or {}
        if c.get("mode") != "rebuild":
            return []  # nothing recorded, or the native call, which failed whole
        if c.get("stage") is None:  # failed while filling the new collection: the old one is untouched
            return self.inverse(DiscardCollection(c["new"]))
        return self.reverse(c)  # failed while switching: the full inverse (each of its steps is idempotent)


@dataclass
class DiscardCollection(MilvusOp):  # not registered: no revision calls it, only a revert makes it
    """Inverse of a rebuild that failed before switching to its new
    collection: drop that collection (if it was created) for good. Only the
    failed step wrote into it (copies of rows it still has elsewhere), so
    nothing is kept in the trash."""

    kind = FAMILY
    name = "discard_collection"
    inverse_only = True
    collection: str

    def simulate(self, state):
        if state.exists(self.collection):
            state.remove(self.collection)

    def reverse(self, captured):
        raise Irreversible(f"{self.where()}discard_collection has no inverse")


@register(FAMILY)
@dataclass
class AddField(Rebuild):
    """Add a field. Values: ``fill(row)`` when given, else ``default`` (or
    null). Native (``add_collection_field``) on a server when the field is
    nullable and no ``fill`` is given; otherwise (always on Milvus Lite) a
    rebuild. ``rebuild=True/False`` forces the choice."""

    name = "add_field"
    collection: str
    field: str
    type: str
    default: Any = None
    nullable: bool = True
    fill: Callable | None = None
    max_length: int | None = None
    dim: int | None = None
    element_type: str | None = None
    max_capacity: int | None = None
    index: dict | None = None
    rebuild: bool | None = None
    batch_size: int = 1000

    def spec(self) -> dict:
        return field_spec({"name": self.field, "type": self.type, "nullable": self.nullable, "default": self.default,
                           "max_length": self.max_length, "dim": self.dim, "element_type": self.element_type,
                           "max_capacity": self.max_capacity},
                          lambda m: self.fail(f"collection {self.collection!r}: {m}"))

    def validate(self) -> None:
        s = self.spec()
        if s["type"] in VECTOR_TYPES and self.fill is None:
            raise self.fail(f"{self.collection}.{self.field}: a new vector field needs fill=row -> vector")

    def native(self, caps: Capabilities) -> bool:
        if self.rebuild is not None:
            return not self.rebuild
        return caps.native_add_field and self.nullable and self.fill is None and self.spec()["type"] not in VECTOR_TYPES

    def new_state(self, cs, state):
        if self.field in cs.fields:
            raise self.fail(f"collection {self.collection!r} already has a field {self.field!r}")
        if self.rebuild is False and not state.caps.native_add_field:
            raise self.fail(f"{self.collection}.{self.field}: {state.caps.server} cannot add a field in place "
                            "(add_collection_field is not implemented there); drop rebuild=False")
        s = self.spec()
        if not state.caps.nullable and s["nullable"] and s["type"] not in VECTOR_TYPES:
            if self.fill is None and self.default is None:
                raise self.fail(f"{self.collection}.{self.field}: {state.caps.lacks('nullable')}; give fill= or "
                                "default= (the rebuild then writes a value into every row)")
            s = {**s, "nullable": False, "default": None}  # the fallback: a plain field, filled by the rebuild
        if not state.caps.nullable:
            s = {**s, "default": None}
        self.check_field_type(state, self.collection, s)
        cs.fields[self.field] = s
        if s["type"] in VECTOR_TYPES:
            cs.indexes[self.field] = index_spec(self.collection, self.field, s["type"],
                                                self.index or default_index(s["type"]), self.fail)
            self.check_index(state, self.collection, s, cs.indexes[self.field])
        return cs

    def native_inverse(self, captured):
        return self.inverse(DropField(self.collection, self.field))


@register(FAMILY)
@dataclass
class DropField(Rebuild):
    """Drop a field: a rebuild without it; the old collection (with the
    values) stays in the trash for the inverse."""

    name = "drop_field"
    destructive = True
    collection: str
    field: str
    batch_size: int = 1000

    def new_state(self, cs, state):
        f = self.need_field(cs, self.collection, self.field)
        if f["primary"]:
            raise self.fail(f"{self.collection}.{self.field} is the primary key")
        if f["type"] in VECTOR_TYPES and len(cs.vector_fields) == 1:
            raise self.fail(f"{self.collection}.{self.field} is the only vector field")
        del cs.fields[self.field]
        cs.indexes.pop(self.field, None)
        if cs.embedding and cs.embedding.get("field") == self.field:
            cs.embedding = None
        return cs


@register(FAMILY)
@dataclass
class AlterField(Rebuild):
    """Change a field: ``max_length``, ``nullable``, ``default``, ``type``
    (with ``convert(value)`` for the values). Native on a server for
    ``max_length`` alone (``alter_collection_field``); otherwise a rebuild."""

    name = "alter_field"
    destructive = True
    collection: str
    field: str
    type: str | None = None
    max_length: int | None = None
    nullable: bool | None = None
    default: Any = None
    convert: Callable | None = None
    element_type: str | None = None
    max_capacity: int | None = None
    batch_size: int = 1000

    def changes(self) -> dict:
        keys = ("type", "max_length", "nullable", "default", "element_type", "max_capacity")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    def validate(self) -> None:
        if not self.changes() and self.convert is None:
            raise self.fail(f"{self.collection}.{self.field}: nothing to change")

    def native(self, caps: Capabilities) -> bool:
        return caps.native_add_field and set(self.changes()) == {"max_length"} and self.convert is None  # same version

    def new_state(self, cs, state):
        old = self.need_field(cs, self.collection, self.field)
        if old["primary"]:
            raise self.fail(f"{self.collection}.{self.field} is the primary key; copy into a new collection instead")
        merged = {**old, **self.changes()}
        if merged["type"] != "VARCHAR":
            merged["max_length"] = None if "max_length" not in self.changes() else merged["max_length"]
        if merged["type"] != "ARRAY":
            merged["element_type"] = merged["max_capacity"] = None
        if merged["type"] not in VECTOR_TYPES:
            merged["dim"] = None
        spec = field_spec({k: v for k, v in merged.items()},
                          lambda m: self.fail(f"collection {self.collection!r}: {m}"))
        if old["type"] in VECTOR_TYPES or spec["type"] in VECTOR_TYPES:
            if spec["type"] != old["type"] or spec["dim"] != old["dim"]:
                raise self.fail(f"{self.collection}.{self.field}: change vectors with reembed, not alter_field")
        self.check_field_type(state, self.collection, spec)
        cs.fields[self.field] = spec
        return cs

    def native_inverse(self, captured):
        return self.inverse(AlterField(self.collection, self.field, max_length=captured["previous"]["max_length"]))


@register(FAMILY)
@dataclass
class Reembed(Rebuild):
    """Re-embed ``text_field`` through ``embed(texts) -> vectors`` of ``dim``
    values into a new collection whose vector field ``field`` (the only one by
    default) is replaced by ``into`` (same name by default; ``keep=True``
    keeps the old vector field next to it), then switch the alias. ``index``
    defaults to the old field's index. ``catch_up=``/``tombstone=`` as for
    ``copy``: rows the application changes during the copy are re-embedded
    in rounds before the switch. ``workers=`` (``"dask://host:port"``,
    ``"local"``, ``"local:N"``; else ``[ragrev] executor``) runs the first
    pass on Dask by primary-key ranges (:mod:`ragrev.distributed`);
    ``bulk=`` by bulk import on a Milvus server, as for ``copy``.
    Inverse: switch back."""

    name = "reembed"
    collection: str
    text_field: str
    embed: Callable
    dim: int
    field: str | None = None
    into: str | None = None
    index: dict | None = None
    keep: bool = False
    batch_size: int = 500
    model: str | None = None
    version: str | None = None
    chunker: str | None = None
    catch_up: str | None = None
    tombstone: str | None = None
    catch_up_threshold: int = 100
    catch_up_rounds: int = 10
    catch_up_skew: float = 1.0
    workers: str | None = None
    bulk: Any = None

    def params(self) -> dict:
        return catch_up_params(self, _without_none(super().params(), "model", "version", "chunker"))

    def contract(self, into: str, previous: dict | None) -> dict:
        """The embedding contract the new vectors carry: the model and version
        given, else the embedding function's own (see :func:`ragrev.contracts.embedder_identity`)."""
        from ragrev.contracts import embedder_identity

        model, version = embedder_identity(self.embed)
        chunker = self.chunker if self.chunker is not None else (previous or {}).get("chunker")
        return {"field": into, "model": self.model or model, "version": self.version or version,
                "chunker": chunker}

    def validate(self) -> None:
        from ragrev.distributed import check_workers

        validate_catch_up(self)
        check_workers(self, self.workers)
        if not callable(self.embed):
            raise self.fail(f"{self.collection}: embed= must be a callable texts -> vectors")
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim <= 0:
            raise self.fail(f"{self.collection}: dim= must be a positive integer, not {self.dim!r}")
        edim = getattr(self.embed, "dim", None)
        if isinstance(edim, int) and edim != self.dim:
            raise self.fail(f"{self.collection}.{self.into or self.field or 'vector'}: the embedding makes "
                            f"{edim}-dimensional vectors, dim={self.dim}")

    def targets(self, cs: CollectionState) -> tuple[str, str]:
        vf = self.vector_field(cs, self.collection, self.field)
        return vf, self.into or vf

    def probe_dim(self, field: str) -> None:
        """Without a ``dim`` attribute, call the embedding once on a probe text."""
        if isinstance(getattr(self.embed, "dim", None), int):
            return
        try:
            out = self.embed(["ragrev dimension probe"])
            got = len(out[0])
        except Exception as e:
            raise self.fail(f"{self.collection}.{field}: the embedding failed on a probe text: "
                            f"{type(e).__name__}: {e}") from None
        if got != self.dim:
            raise self.fail(f"{self.collection}.{field}: the embedding makes {got}-dimensional vectors, dim={self.dim}")

    def new_state(self, cs, state):
        simulate_catch_up(self, cs, self.collection)
        tf = self.need_field(cs, self.collection, self.text_field)
        if tf["type"] in VECTOR_TYPES:
            raise self.fail(f"{self.collection}.{self.text_field} is a vector field, not text")
        vf, into = self.targets(cs)
        old = cs.fields[vf]
        if old["type"] not in DENSE_TYPES:
            raise self.fail(f"{self.collection}.{vf}: reembed makes dense vectors, the field is {old['type']}")
        if into != vf and into in cs.fields:
            raise self.fail(f"collection {self.collection!r} already has a field {into!r}")
        if state.probe:
            self.probe_dim(into)
        spec = {**old, "name": into, "dim": self.dim}
        ispec = index_spec(self.collection, into, spec["type"], self.index or cs.indexes.get(vf) or
                           default_index(spec["type"]), self.fail)
        self.check_index(state, self.collection, spec, ispec)
        if self.keep and into != vf:
            cs.fields[into] = spec
        else:
            cs.fields = {(into if n == vf else n): (spec if n == vf else f) for n, f in cs.fields.items()}
            cs.indexes.pop(vf, None)
        cs.indexes[into] = ispec
        cs.embedding = self.contract(into, cs.embedding)
        return cs


def _without_none(params: dict, *keys) -> dict:
    """``params`` without ``keys`` left at None: parameters added later leave the
    checksums of revisions that do not use them as they were."""
    return {k: v for k, v in params.items() if not (k in keys and v is None)}


_CONTRACT_KEYS = {"field", "model", "version", "chunker"}


def embedding_spec(op: MilvusOp, spec, dense: list) -> dict:
    """``create_collection(embedding=...)`` in normal form: ``{"field", "model",
    "version", "chunker"}`` (``field`` defaults to the only dense vector field)."""
    if isinstance(spec, str):
        spec = {"model": spec}
    if not isinstance(spec, dict):
        raise op.fail(f"collection {op.collection!r}: embedding= is a dict with model, version, chunker, field")
    unknown = set(spec) - _CONTRACT_KEYS
    if unknown:
        raise op.fail(f"collection {op.collection!r}: embedding= has unknown key(s) {', '.join(sorted(unknown))} "
                      f"(known: {', '.join(sorted(_CONTRACT_KEYS))})")
    field = spec.get("field")
    if field is None:
        if len(dense) != 1:
            raise op.fail(f"collection {op.collection!r}: name the vector field of embedding= with field=")
        field = dense[0]
    elif field not in dense:
        raise op.fail(f"collection {op.collection!r}: embedding field {field!r} is not a dense vector field")
    out = {"field": field}
    for k in ("model", "version", "chunker"):
        v = spec.get(k)
        if v is not None and not isinstance(v, str):
            v = str(v)
        out[k] = v
    return out


# the data operations and checks register themselves with the rest
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
