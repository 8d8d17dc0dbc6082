"""A store's content as a fingerprint: ``{object name: SHA-256}`` over its
tables or collections, leaving out ragrev's own (``ragrev_*``: the version
table, the journal, the lock, the trash). Two stores with equal
fingerprints hold the same user objects with the same definitions and rows.
The pytest plugin compares a store after ``upgrade heads`` then ``downgrade
base`` with the store before (:mod:`ragrev.pytest_plugin`).

What counts, per kind:

- SQL: each table's columns by name (type, nullable; not their order: a
  dropped column restored by a downgrade comes back last), primary key,
  indexes, and its rows (order-free);
- MongoDB: each collection's validator and indexes, and its documents by
  ``_id`` (as canonical Extended JSON);
- Milvus: each collection's fields, indexes and aliases, and its rows by
  primary key (at most :data:`MILVUS_ROWS` rows a collection).
"""
from __future__ import annotations

import hashlib
import json

from ragrev.stores import RESERVED_PREFIX

#: rows read per Milvus collection (fingerprints are for test-sized data)
MILVUS_ROWS = 16384


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def fingerprint(store) -> dict[str, str]:
    """The fingerprint of a connected ragrev store adapter (:func:`ragrev.stores.open_store`)."""
    return {"sql": _sql, "mongo": _mongo, "milvus": _milvus}[store.kind](store)


def _sql(store) -> dict[str, str]:
    import sqlalchemy as sa

    conn = store.conn
    insp = sa.inspect(conn)
    out = {}
    for table in sorted(insp.get_table_names()):
        if table.startswith(RESERVED_PREFIX):
            continue
        cols = {c["name"]: [str(c["type"]), bool(c["nullable"])] for c in insp.get_columns(table)}
        indexes = sorted([ix["name"], list(ix["column_names"]), bool(ix["unique"])] for ix in insp.get_indexes(table))
        names = sorted(cols)
        t = sa.table(table, *[sa.column(n) for n in names])
        rows = sorted(repr(tuple(r)) for r in conn.execute(sa.select(*t.c)).all())
        conn.commit()
        out[table] = _digest({"columns": cols, "pk": insp.get_pk_constraint(table).get("constrained_columns"),
                              "indexes": indexes, "rows": rows})
    return out


def _mongo(store) -> dict[str, str]:
    from bson import json_util

    def canon(value):
        return json.loads(json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS))

    db = store.db
    out = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith(RESERVED_PREFIX) or name.startswith("system."):
            continue
        info = next(iter(db.list_collections(filter={"name": name})), {})
        validator = (info.get("options") or {}).get("validator") or None
        indexes = sorted((canon({k: v for k, v in ix.items() if k not in ("v", "ns")})
                          for ix in db[name].list_indexes()), key=json.dumps)
        docs = [canon(d) for d in db[name].find({}, sort=[("_id", 1)])]
        out[name] = _digest({"validator": canon(validator), "indexes": indexes, "documents": docs})
    return out


def _milvus(store) -> dict[str, str]:
    client = store.client
    out = {}
    for name in sorted(client.list_collections()):
        if name.startswith(RESERVED_PREFIX):
            continue
        desc = client.describe_collection(name)
        fields = sorted(({k: v for k, v in f.items() if k in ("name", "type", "params", "is_primary",
                                                              "nullable", "default_value")}
                         for f in desc.get("fields", [])), key=lambda f: f["name"])
        pk = next((f["name"] for f in desc.get("fields", []) if f.get("is_primary")), None)
        indexes = []
        for ix in sorted(client.list_indexes(name)):
            d = client.describe_index(name, ix)
            indexes.append({k: v for k, v in d.items() if k not in ("total_rows", "indexed_rows", "pending_index_rows",
                                                                     "state")})
        try:
            aliases = sorted(client.list_aliases(name).get("aliases", []))
        except Exception:  # pragma: no cover - servers without alias listing
            aliases = []
        rows = client.query(name, filter="", output_fields=["*"], limit=MILVUS_ROWS)
        rows = sorted(({k: _plain(v) for k, v in r.items()} for r in rows), key=lambda r: repr(r.get(pk)))
        out[name] = _digest({"fields": fields, "dynamic": desc.get("enable_dynamic_field"), "indexes": indexes,
                             "aliases": aliases, "rows": rows})
    return out


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float):
        return round(value, 6)
    return value
