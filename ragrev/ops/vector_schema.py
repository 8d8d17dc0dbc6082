"""The vocabulary of the vector store operations (see :mod:`ragrev.ops.vector`):
Milvus field and index types, what a server supports (:class:`Capabilities`),
field and index specs in normal form, the schema state preflight simulates
a run on (:class:`SchemaState`, like Django's migration state), and
:class:`MilvusOp`, the base of the operations. No driver is imported here.
"""
from __future__ import annotations

import copy as _copy
import itertools
from dataclasses import dataclass, field as _field
from typing import Any, Callable

from ragrev.errors import Irreversible, OperationError
from ragrev.ops import Operation
from ragrev.stores import TRASH_PREFIX

KIND = "milvus"  # the reference driver's store kind
FAMILY = "vector"
RESERVED_PREFIX = "ragrev_"

SCALAR_TYPES = frozenset({"BOOL", "INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE", "VARCHAR", "JSON",
                          "ARRAY", "GEOMETRY", "TIMESTAMPTZ"})
DENSE_TYPES = frozenset({"FLOAT_VECTOR", "FLOAT16_VECTOR", "BFLOAT16_VECTOR", "INT8_VECTOR"})
VECTOR_TYPES = DENSE_TYPES | {"BINARY_VECTOR", "SPARSE_FLOAT_VECTOR"}
#: metrics by vector type
METRICS = {**{t: frozenset({"L2", "IP", "COSINE"}) for t in DENSE_TYPES},
           "BINARY_VECTOR": frozenset({"HAMMING", "JACCARD", "MHJACCARD"}),
           "SPARSE_FLOAT_VECTOR": frozenset({"IP", "BM25"})}
#: index types by vector type (Milvus server)
INDEX_TYPES = {
    **{t: frozenset({"AUTOINDEX", "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "HNSW", "HNSW_SQ",
                     "HNSW_PQ", "HNSW_PRQ", "DISKANN", "SCANN", "GPU_CAGRA", "GPU_IVF_FLAT", "GPU_IVF_PQ",
                     "GPU_BRUTE_FORCE"}) for t in DENSE_TYPES},
    "BINARY_VECTOR": frozenset({"AUTOINDEX", "BIN_FLAT", "BIN_IVF_FLAT", "MINHASH_LSH"}),
    "SPARSE_FLOAT_VECTOR": frozenset({"AUTOINDEX", "SPARSE_INVERTED_INDEX", "SPARSE_WAND"}),
}
SCALAR_INDEX_TYPES = frozenset({"AUTOINDEX", "INVERTED", "STL_SORT", "TRIE", "BITMAP", "NGRAM", "RTREE"})
_FIELD_KEYS = {"name", "type", "primary", "is_primary", "auto_id", "dim", "max_length", "element_type",
               "max_capacity", "nullable", "default", "description"}


@dataclass(frozen=True)
class Capabilities:
    """What a server supports, for ``preflight``: the types and index types it
    knows, and the features of :data:`FEATURES` it has (``lacks`` names the
    missing one and the first Milvus version that has it)."""

    server: str
    vector_types: frozenset
    index_types: frozenset      # vector index types
    scalar_index_types: frozenset
    metrics: frozenset
    native_add_field: bool
    nullable: bool = True           # nullable fields and default values
    multi_vector: bool = True       # several vector fields in a collection
    hnsw_defaults: bool = True      # HNSW without M / efConstruction
    bulk_import: bool = True
    version: tuple | None = None    # the server's (major, minor, patch); None for Milvus Lite

    def lacks(self, feature: str) -> str:
        """``"<server> lacks <what> (Milvus <version> has it)"``."""
        what, since = FEATURES[feature]
        return f"{self.server} lacks {what} (Milvus {'.'.join(map(str, since))} has it)"

    def since(self, name: str) -> str:
        """For a type or index type this server lacks: the version that has it."""
        since = SINCE.get(name)
        return f" (Milvus {'.'.join(map(str, since))} has it)" if since else ""


#: features that came with a Milvus version: key -> (what it is, first version)
FEATURES = {
    "native_add_field": ("adding a field in place (add_collection_field)", (2, 6, 0)),
    "native_alter_field": ("changing max_length in place (alter_collection_field)", (2, 6, 0)),
    "nullable": ("nullable fields and default values", (2, 5, 0)),
    "multi_vector": ("several vector fields in one collection", (2, 4, 0)),
    "hnsw_defaults": ("defaults for HNSW's M and efConstruction", (2, 4, 0)),
    "bulk_import": ("bulk import (import jobs)", (2, 4, 0)),
}
#: the first Milvus version with each type, index type and metric (older ones: since 2.3)
SINCE = {
    "SPARSE_FLOAT_VECTOR": (2, 4, 0), "FLOAT16_VECTOR": (2, 4, 0), "BFLOAT16_VECTOR": (2, 4, 0),
    "INT8_VECTOR": (2, 6, 0), "SPARSE_INVERTED_INDEX": (2, 4, 0), "SPARSE_WAND": (2, 4, 0),
    "INVERTED": (2, 4, 0), "BITMAP": (2, 5, 0), "NGRAM": (2, 6, 0), "RTREE": (2, 6, 0),
    "HNSW_SQ": (2, 5, 0), "HNSW_PQ": (2, 5, 0), "HNSW_PRQ": (2, 5, 0), "IVF_RABITQ": (2, 6, 0),
    "MINHASH_LSH": (2, 6, 0), "MHJACCARD": (2, 6, 0), "BM25": (2, 5, 0),
}

MILVUS = Capabilities("Milvus", VECTOR_TYPES, frozenset().union(*INDEX_TYPES.values()), SCALAR_INDEX_TYPES,
                      frozenset().union(*METRICS.values()), True)
MILVUS_LITE = Capabilities("Milvus Lite", frozenset({"FLOAT_VECTOR", "SPARSE_FLOAT_VECTOR"}),
                           frozenset({"AUTOINDEX", "FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8",
                                      "SPARSE_INVERTED_INDEX"}),
                           frozenset({"INVERTED"}), frozenset({"L2", "IP", "COSINE", "BM25"}), False)


def parse_version(text: str) -> tuple | None:
    """``"v2.3.5-lite"`` -> ``(2, 3, 5)``; None when it names no version."""
    import re

    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def server_capabilities(version: tuple | None) -> Capabilities:
    """What a Milvus server of ``version`` supports (all of :data:`MILVUS`
    when the version is unknown or newer than the table)."""
    if version is None:
        return MILVUS
    has = lambda since: version >= since  # noqa: E731
    known = lambda names: frozenset(n for n in names if has(SINCE.get(n, (0,))))  # noqa: E731
    scalar = known(SCALAR_INDEX_TYPES) | ({"STL_SORT", "TRIE"} if version < (2, 4) else frozenset())
    flags = {k: has(FEATURES[k][1]) for k in ("nullable", "multi_vector", "hnsw_defaults", "bulk_import")}
    return Capabilities(f"Milvus {'.'.join(map(str, version))}", known(VECTOR_TYPES),
                        known(frozenset().union(*INDEX_TYPES.values())), scalar,
                        known(frozenset().union(*METRICS.values())), has(FEATURES["native_add_field"][1]),
                        version=version, **flags)


# --- specs ----------------------------------------------------------------------------

def field_spec(spec, fail) -> dict:
    """A field spec in normal form; ``fail(msg)`` builds the error to raise."""
    if not isinstance(spec, dict):
        raise fail(f"a field is given as a dict with 'name' and 'type', not {spec!r}")
    unknown = set(spec) - _FIELD_KEYS
    if unknown:
        raise fail(f"field {spec.get('name')!r}: unknown key(s) {', '.join(sorted(unknown))}")
    name, ftype = spec.get("name"), str(spec.get("type", "")).upper()
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(f"field name {name!r} is not an identifier")
    if ftype not in SCALAR_TYPES | VECTOR_TYPES:
        raise fail(f"field {name!r}: unknown type {spec.get('type')!r}")
    out = {"name": name, "type": ftype, "primary": bool(spec.get("primary", spec.get("is_primary", False))),
           "auto_id": bool(spec.get("auto_id", False)), "dim": spec.get("dim"), "max_length": spec.get("max_length"),
           "element_type": str(spec["element_type"]).upper() if spec.get("element_type") else None,
           "max_capacity": spec.get("max_capacity"), "nullable": bool(spec.get("nullable", False)),
           "default": spec.get("default"), "description": spec.get("description", "") or ""}
    if ftype in VECTOR_TYPES and ftype != "SPARSE_FLOAT_VECTOR":
        if not isinstance(out["dim"], int) or isinstance(out["dim"], bool) or out["dim"] <= 0:
            raise fail(f"vector field {name!r} needs dim= a positive integer, not {out['dim']!r}")
    elif out["dim"] is not None:
        raise fail(f"field {name!r} of type {ftype} takes no dim")
    if ftype == "VARCHAR" and not (isinstance(out["max_length"], int) and 0 < out["max_length"] <= 65535):
        raise fail(f"VARCHAR field {name!r} needs max_length= 1..65535, not {out['max_length']!r}")
    if ftype == "ARRAY" and (out["element_type"] not in SCALAR_TYPES - {"ARRAY", "JSON"} or not out["max_capacity"]):
        raise fail(f"ARRAY field {name!r} needs element_type= (a scalar type) and max_capacity=")
    if out["primary"] and ftype not in ("INT64", "VARCHAR"):
        raise fail(f"primary key {name!r} must be INT64 or VARCHAR, not {ftype}")
    return out


def index_spec(collection: str, fname: str, ftype: str, spec, fail) -> dict:
    if not isinstance(spec, dict):
        raise fail(f"index of {collection}.{fname}: give a dict with index_type, metric_type, params")
    itype = str(spec.get("index_type") or "AUTOINDEX").upper()
    metric = spec.get("metric_type")
    metric = str(metric).upper() if metric else None
    if ftype in VECTOR_TYPES:
        metric = metric or ("IP" if ftype == "SPARSE_FLOAT_VECTOR" else "HAMMING" if ftype == "BINARY_VECTOR" else "COSINE")
        if itype not in INDEX_TYPES[ftype]:
            raise fail(f"{collection}.{fname}: index type {itype!r} does not apply to {ftype} "
                       f"(use one of {', '.join(sorted(INDEX_TYPES[ftype]))})")
        if metric not in METRICS[ftype]:
            raise fail(f"{collection}.{fname}: metric {metric!r} does not apply to {ftype} "
                       f"(use one of {', '.join(sorted(METRICS[ftype]))})")
    elif itype not in SCALAR_INDEX_TYPES:
        raise fail(f"{collection}.{fname}: index type {itype!r} is not a scalar index type "
                   f"(use one of {', '.join(sorted(SCALAR_INDEX_TYPES))})")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise fail(f"{collection}.{fname}: index params must be a dict")
    extra = set(spec) - {"index_type", "metric_type", "params"}
    if extra:
        raise fail(f"{collection}.{fname}: unknown index key(s) {', '.join(sorted(extra))}")
    return {"index_type": itype, "metric_type": metric, "params": dict(params)}


def default_index(ftype: str) -> dict:
    if ftype == "SPARSE_FLOAT_VECTOR":
        return {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP", "params": {}}
    if ftype == "BINARY_VECTOR":
        return {"index_type": "BIN_FLAT", "metric_type": "HAMMING", "params": {}}
    return {"index_type": "AUTOINDEX", "metric_type": "COSINE", "params": {}}


# --- schema state ---------------------------------------------------------------------------

@dataclass
class CollectionState:
    """A collection's schema as preflight sees it."""

    fields: dict                     # name -> field spec (normal form)
    dynamic: bool = False
    indexes: dict = _field(default_factory=dict)   # field -> index spec
    description: str = ""
    #: the embedding contract: {"field", "model", "version", "chunker"} (None: none recorded)
    embedding: dict | None = None

    @property
    def pk(self) -> str:
        return next(n for n, f in self.fields.items() if f["primary"])

    @property
    def vector_fields(self) -> list[str]:
        return [n for n, f in self.fields.items() if f["type"] in VECTOR_TYPES]

    def clone(self) -> "CollectionState":
        return _copy.deepcopy(self)

    def same_shape(self, other: "CollectionState") -> bool:
        keys = ("type", "primary", "dim", "max_length", "element_type")
        return list(self.fields) == list(other.fields) and all(
            self.fields[n].get(k) == other.fields[n].get(k) for n in self.fields for k in keys)


class SchemaState:
    """The store's collections and aliases as the run's steps leave them.

    ``loader(name)`` tells what ``name`` is in the store now:
    ``("collection", CollectionState)``, ``("alias", collection_name)`` or None.
    """

    def __init__(self, loader: Callable, caps: Capabilities, probe: bool = True):
        self._loader = loader
        self._entries: dict[str, Any] = {}
        self.caps = caps
        #: steps may call embedding functions to check their dimension (preflight);
        #: False when only the effect is wanted (:mod:`ragrev.state`)
        self.probe = probe
        self._fresh = itertools.count(1)

    def entry(self, name: str):
        if name not in self._entries:
            self._entries[name] = self._loader(name)
        return self._entries[name]

    def exists(self, name: str) -> bool:
        return self.entry(name) is not None

    def is_alias(self, name: str) -> bool:
        e = self.entry(name)
        return e is not None and e[0] == "alias"

    def physical(self, name: str) -> str | None:
        e = self.entry(name)
        if e is None:
            return None
        return e[1] if e[0] == "alias" else name

    def collection(self, name: str) -> CollectionState | None:
        phys = self.physical(name)
        if phys is None:
            return None
        e = self.entry(phys)
        return e[1] if e is not None and e[0] == "collection" else None

    def put(self, name: str, cs: CollectionState) -> None:
        self._entries[name] = ("collection", cs)

    def alias(self, alias: str, target: str) -> None:
        self._entries[alias] = ("alias", target)

    def remove(self, name: str) -> None:
        self._entries[name] = None
        for k, e in list(self._entries.items()):
            if e is not None and e[0] == "alias" and e[1] == name:
                self._entries[k] = None

    def rename(self, old: str, new: str) -> None:
        """A collection renamed: its aliases follow it."""
        self._entries[new] = self._entries[old]
        self._entries[old] = None
        for k, e in list(self._entries.items()):
            if e is not None and e[0] == "alias" and e[1] == old:
                self._entries[k] = ("alias", new)

    def unalias(self, alias: str) -> None:
        self._entries[alias] = None

    def replace(self, logical: str, cs: CollectionState) -> None:
        """A rebuild: ``logical`` becomes an alias of a new collection with ``cs``;
        the other aliases of the old collection follow (as the rebuild moves
        them), and the old collection goes to the trash."""
        old = self.physical(logical)
        fresh = f"{logical}~{next(self._fresh)}"
        self.put(fresh, cs)
        for k, e in list(self._entries.items()):
            if e is not None and e[0] == "alias" and e[1] == old:
                self._entries[k] = ("alias", fresh)
        if old is not None and old != logical:
            self._entries[old] = None
        self.alias(logical, fresh)


# --- the operations ---------------------------------------------------------------------------

class MilvusOp(Operation):
    """Base of the vector store operations."""

    impl_modules = {KIND: "ragrev.drivers.milvus.store"}

    def fail(self, message: str) -> OperationError:
        return OperationError(f"{self.where()}{self.name} on store {self.store!r}: {message}")

    def simulate(self, state: SchemaState) -> None:
        """Check this step against ``state`` and apply its schema effect there."""

    def need(self, state: SchemaState, name: str) -> CollectionState:
        cs = state.collection(name)
        if cs is None:
            raise self.fail(f"no collection {name!r} in the store (nor created by an earlier step)")
        return cs

    def need_field(self, cs: CollectionState, collection: str, fname: str) -> dict:
        if fname not in cs.fields:
            raise self.fail(f"collection {collection!r} has no field {fname!r} (it has: {', '.join(cs.fields)})")
        return cs.fields[fname]

    def vector_field(self, cs: CollectionState, collection: str, fname: str | None) -> str:
        if fname is not None:
            f = self.need_field(cs, collection, fname)
            if f["type"] not in VECTOR_TYPES:
                raise self.fail(f"field {collection}.{fname} is {f['type']}, not a vector field")
            return fname
        vecs = cs.vector_fields
        if len(vecs) != 1:
            raise self.fail(f"collection {collection!r} has vector fields {', '.join(vecs)}: name one with field=")
        return vecs[0]

    def check_index(self, state: SchemaState, collection: str, fspec: dict, ispec: dict) -> None:
        caps, name = state.caps, fspec["name"]
        if fspec["type"] in VECTOR_TYPES:
            if ispec["index_type"] not in caps.index_types:
                raise self.fail(f"{collection}.{name}: index type {ispec['index_type']!r} is not supported by "
                                f"{caps.server}{caps.since(ispec['index_type'])} "
                                f"(it supports {', '.join(sorted(caps.index_types))})")
            if ispec["metric_type"] not in caps.metrics:
                raise self.fail(f"{collection}.{name}: metric {ispec['metric_type']!r} is not supported by "
                                f"{caps.server}{caps.since(ispec['metric_type'])}")
        elif ispec["index_type"] not in caps.scalar_index_types:
            raise self.fail(f"{collection}.{name}: scalar index type {ispec['index_type']!r} is not supported by "
                            f"{caps.server}{caps.since(ispec['index_type'])} "
                            f"(it supports {', '.join(sorted(caps.scalar_index_types))})")

    def check_field_type(self, state: SchemaState, collection: str, fspec: dict) -> None:
        caps = state.caps
        if fspec["type"] in VECTOR_TYPES and fspec["type"] not in caps.vector_types:
            raise self.fail(f"{collection}.{fspec['name']}: {fspec['type']} is not supported by "
                            f"{caps.server}{caps.since(fspec['type'])}")
        if not caps.nullable and (fspec.get("nullable") or fspec.get("default") is not None):
            raise self.fail(f"{collection}.{fspec['name']}: {caps.lacks('nullable')}")

    def check_vector_count(self, state: SchemaState, collection: str, cs: "CollectionState") -> None:
        if not state.caps.multi_vector and len(cs.vector_fields) > 1:
            raise self.fail(f"collection {collection!r} would have vector fields {', '.join(cs.vector_fields)}: "
                            f"{state.caps.lacks('multi_vector')}")

    def check_rows(self, cs: CollectionState, collection: str, rows) -> None:
        """Rows against the schema: unknown fields, vector dimensions, missing values."""
        for row in rows:
            if not isinstance(row, dict):
                raise self.fail(f"rows for {collection!r} must be dicts, not {type(row).__name__}")
            for key, value in row.items():
                f = cs.fields.get(key)
                if f is None:
                    if not cs.dynamic:
                        raise self.fail(f"collection {collection!r} has no field {key!r} (and no dynamic field)")
                    continue
                if f["type"] in DENSE_TYPES and value is not None and hasattr(value, "__len__") \
                        and len(value) != f["dim"]:
                    raise self.fail(f"{collection}.{key}: vector of dimension {len(value)}, the field has dim {f['dim']}")
            for fname, f in cs.fields.items():
                if fname not in row and not f["nullable"] and f["default"] is None and not f["auto_id"]:
                    raise self.fail(f"a row for {collection!r} lacks field {fname!r}")


def _no_reserved(op: MilvusOp, name: str, what: str = "collection") -> None:
    if not isinstance(name, str) or not name:
        raise op.fail(f"{what} name must be a non-empty string, not {name!r}")
    if name.startswith(RESERVED_PREFIX):
        raise op.fail(f"{what} names starting with {RESERVED_PREFIX!r} are ragrev's own: {name!r}")


def _captured(op: MilvusOp, captured: dict | None, *keys) -> dict:
    if not captured or any(k not in captured for k in keys):
        raise Irreversible(f"{op.where()}{op.describe()} on store {op.store!r}: the journal has no record of what it "
                           f"changed (was it applied by ragrev?); write downgrade(op) in the revision")
    return captured


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
