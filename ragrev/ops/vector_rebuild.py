"""Vector operations that change a collection's fields (docs/store-kinds.md):
``add_field``, ``drop_field``, ``alter_field`` and ``reembed``. Milvus cannot
make most of these changes in place (none on Milvus Lite), so each may
*rebuild*: copy the rows into a new collection ``<name>_v<n>``, point an alias
named as the collection at it and keep the old collection in the trash; the
inverse switches back (:class:`Rebuild`). A rebuild that failed before switching
is undone by ``discard_collection`` (made only by ``reverse()``).
Registered with the rest of the family by :mod:`ragrev.ops.vector`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ragrev.errors import Irreversible
from ragrev.ops import register
from ragrev.ops.vector_schema import (
    DENSE_TYPES, FAMILY, VECTOR_TYPES, Capabilities, CollectionState, MilvusOp, SchemaState,
    _captured, _without_none, default_index, field_spec, index_spec,
)
from ragrev.ops.vector_online import catch_up_params, simulate_catch_up, validate_catch_up


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
        from ragrev.ops.vector import AlterAlias, DropAlias, DropCollection, RenameCollection

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
