"""The Milvus store's collections: listing, aliases, the schema of a
collection as :class:`~ragrev.ops.vector_schema.CollectionState` (what
preflight simulates on), creating collections and indexes, renames and the
trash.
"""
from __future__ import annotations

import itertools
import json

from pymilvus import DataType, MilvusClient, MilvusException

from ragrev.drivers.milvus.client import CONTRACT_PROPERTY, _index_args, _number, read_contract
from ragrev.drivers.milvus.connection import MilvusConnection
from ragrev.ops.vector import RESERVED_PREFIX, TRASH_PREFIX, VECTOR_TYPES, CollectionState, SchemaState
from ragrev.stores import trash_name

_INDEX_INFO_KEYS = {"index_type", "metric_type", "field_name", "index_name", "total_rows", "indexed_rows",
                    "pending_index_rows", "state", "index_state", "failed_reason", "params"}


class MilvusSchema(MilvusConnection):
    """The collections of a Milvus store (on top of its connection)."""

    # --- collections ------------------------------------------------------------------
    def user_collections(self) -> list[str]:
        """The user's collections (ragrev's own and the trash left out)."""
        return sorted(n for n in self.c.list_collections() if not n.startswith(RESERVED_PREFIX))

    def is_collection(self, name: str) -> bool:
        return name in self.c.list_collections()

    def aliases(self, collection: str = "") -> list[str]:
        """Aliases (of ``collection``, or all) in this store's database: Milvus
        2.3 resolves alias calls in ``default`` unless the request names the
        database, and pymilvus names it only for this one."""
        kw = {"db_name": self.db_name} if not self.lite and self.db_name else {}
        return list(self.c.list_aliases(collection, **kw).get("aliases", []))

    def alias_target(self, name: str) -> str | None:
        if self.lite or not self.db_name:
            try:
                return self.c.describe_alias(name)["collection_name"]
            except MilvusException:
                return None
        # describe_alias has no database on Milvus 2.3: describe the collection the alias names
        if name not in self.aliases():
            return None
        try:
            return self.c.describe_collection(name).get("collection_name")
        except MilvusException:
            return None

    def resolve(self, name: str) -> str | None:
        """The collection behind ``name`` (itself, or the target of an alias); None if neither."""
        if self.is_collection(name):
            return name
        return self.alias_target(name)

    def need(self, op, name: str) -> str:
        phys = self.resolve(name)
        if phys is None:
            raise op.fail(f"no collection {name!r}")
        return phys

    def aliases_of(self, name: str) -> list[str]:
        return sorted(self.aliases(name))

    def collection_state(self, name: str) -> CollectionState:
        """The schema and indexes of a collection (or of the one an alias names)."""
        d = self.c.describe_collection(name)
        phys = d.get("collection_name") or name
        fields = {}
        for f in d["fields"]:
            params = f.get("params") or {}
            ftype = DataType(f["type"]).name
            default = f.get("default_value")
            if default is not None and hasattr(default, "WhichOneof"):
                kind = default.WhichOneof("data")
                default = getattr(default, kind) if kind else None
            fields[f["name"]] = {
                "name": f["name"], "type": ftype, "primary": bool(f.get("is_primary")),
                "auto_id": bool(f.get("auto_id") or (f.get("is_primary") and d.get("auto_id"))),
                "dim": int(params["dim"]) if "dim" in params else None,
                "max_length": int(params["max_length"]) if "max_length" in params else None,
                "element_type": DataType(f["element_type"]).name if f.get("element_type") else None,
                "max_capacity": int(params["max_capacity"]) if "max_capacity" in params else None,
                "nullable": bool(f.get("nullable")), "default": default, "description": f.get("description") or "",
            }
        indexes = {}
        for iname in self.c.list_indexes(phys):
            info = self.c.describe_index(phys, iname) or {}
            params = dict(info["params"]) if isinstance(info.get("params"), dict) else \
                {k: _number(v) for k, v in info.items() if k not in _INDEX_INFO_KEYS}
            params.pop("params", None)
            indexes[info.get("field_name") or iname] = {
                "index_type": str(info.get("index_type", "AUTOINDEX")).upper(),
                "metric_type": str(info["metric_type"]).upper() if info.get("metric_type") else None,
                "params": params}
        return CollectionState(fields, bool(d.get("enable_dynamic_field")), indexes, d.get("description") or "",
                               read_contract(d))

    def create(self, name: str, cs: CollectionState, trash: bool = False) -> None:
        """Create a collection from a schema (``trash``: flat indexes, no auto id:
        a copy kept for an inverse), or finish creating it: Milvus creates a
        collection and its indexes in separate calls, so a run killed between
        them leaves the collection without indexes; called again, this adds
        the missing ones (and loads it). The caller checks that an existing
        collection is the one it created."""
        exists = self.is_collection(name)
        have = set(self.collection_state(name).indexes) if exists else set()
        ip = self.c.prepare_index_params()
        for fname, spec in cs.indexes.items():
            ftype = cs.fields[fname]["type"]
            if fname in have or (trash and ftype not in VECTOR_TYPES):
                continue
            if trash and ftype not in ("SPARSE_FLOAT_VECTOR", "BINARY_VECTOR"):
                spec = {"index_type": "FLAT", "metric_type": spec["metric_type"], "params": {}}
            ip.add_index(fname, **_index_args(spec, self.caps))
        if not exists:
            self.c.create_collection(name, schema=self._schema(cs, trash), consistency_level="Strong")
        if cs.embedding and not trash:
            self.c.alter_collection_properties(name, properties={CONTRACT_PROPERTY: json.dumps(cs.embedding)})
        if len(ip):
            if exists:
                self.c.release_collection(name)
            self.c.create_index(name, ip, sync=exists and not self.lite)  # new: empty, nothing to wait for
        self.load(name)

    @staticmethod
    def _schema(cs: CollectionState, trash: bool):
        auto = any(f["auto_id"] for f in cs.fields.values()) and not trash
        schema = MilvusClient.create_schema(auto_id=auto, enable_dynamic_field=cs.dynamic, description=cs.description)
        for f in cs.fields.values():
            kw = {}
            if f["primary"]:
                kw["is_primary"] = True
            for key in ("dim", "max_length", "max_capacity", "description"):
                if f.get(key):
                    kw[key] = f[key]
            if f.get("element_type"):
                kw["element_type"] = DataType[f["element_type"]]
            if f.get("nullable"):
                kw["nullable"] = True
            if f.get("default") is not None:
                kw["default_value"] = f["default"]
            schema.add_field(f["name"], DataType[f["type"]], **kw)
        return schema

    def create_index(self, collection: str, fname: str, spec: dict) -> None:
        ip = self.c.prepare_index_params()
        ip.add_index(fname, **_index_args(spec, self.caps))
        self.c.release_collection(collection)
        self.c.create_index(collection, ip, sync=not self.lite)  # Lite builds it in load()
        self.load(collection)

    def load(self, name: str) -> None:
        try:
            self.c.load_collection(name)
        except MilvusException:  # e.g. a vector field without index on a server: stays released
            pass

    def rename(self, old: str, new: str, load: bool = True) -> None:
        self.c.release_collection(old)
        self.c.rename_collection(old, new)
        if load:
            self.load(new)

    def trash_name(self, name: str, tag: str = "") -> str:
        return trash_name(name, tag, taken=set(self.c.list_collections()), limit=255)

    def fresh_name(self, logical: str) -> str:
        """``<logical>_v<n>``: the next generation not used by a collection, an alias or the trash."""
        names = self.c.list_collections()
        used = set(names) | set(self.aliases())
        trashed = [n[len(TRASH_PREFIX):].partition("_")[2] + "_" for n in names if n.startswith(TRASH_PREFIX)]
        return next(f"{logical}_v{n}" for n in itertools.count(2) if f"{logical}_v{n}" not in used
                    and not any(t.startswith(f"{logical}_v{n}_") for t in trashed))

    def soft_drop(self, name: str, trash: str) -> None:
        if self.is_collection(name):
            self.rename(name, trash, load=False)


    def _entry(self, name: str):
        if self.is_collection(name):
            return ("collection", self.collection_state(name))
        target = self.alias_target(name)
        return ("alias", target) if target else None

    def schema_state(self) -> SchemaState:
        """The store's schema, read lazily, as preflight and rebuilds simulate on it."""
        return SchemaState(self._entry, self.caps)
