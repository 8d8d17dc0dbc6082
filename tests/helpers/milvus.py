"""Test helpers (milvus), imported by the test modules and conftest files."""
from __future__ import annotations

import hashlib
import json
import os
import uuid

import numpy as np

from ragrev.config import StoreConfig, load_config
from ragrev.context import StepContext
from ragrev.plan import Recorder
from ragrev.stores import open_store


#: a Milvus server (``milvus://127.0.0.1:PORT``) for the vector-store tests; else Milvus Lite
MILVUS_SERVER = os.environ.get("RAGREV_TEST_MILVUS_URI")
#: store path -> its database on the server, for the running test (dropped after it)
SERVER_DBS: dict[str, str] = {}


def lite_config(path, name: str = "vectors", options: dict | None = None) -> StoreConfig:
    """A store at ``path`` on Milvus Lite, or (on a server) in a database of its own."""
    if not MILVUS_SERVER:
        return StoreConfig(name, f"milvus-lite:///{path}", "milvus", options or {})
    key = str(path)
    if key not in SERVER_DBS:
        from pymilvus import MilvusClient

        SERVER_DBS[key] = "t_" + uuid.uuid4().hex[:12]
        client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
        client.create_database(SERVER_DBS[key])
        client.close()
    return StoreConfig(name, f"{MILVUS_SERVER.rstrip('/')}/{SERVER_DBS[key]}", "milvus", options or {})


def drop_server_database(uri: str, name: str) -> None:
    """Drop a test's database on the Milvus server, with its aliases and collections."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri.replace("milvus://", "http://"), db_name=name)
    try:
        for alias in client.list_aliases(db_name=name).get("aliases", []):
            client.drop_alias(alias)
        for coll in client.list_collections():
            client.drop_collection(coll)
        client.drop_database(name)
    finally:
        client.close()


def record(store, build) -> list:
    """The operations ``build(op)`` records, as in a revision's upgrade(op)."""
    rec = Recorder({store.name: store.config})
    build(rec)
    return rec._ops


def apply(store, ops) -> list[dict]:
    """Preflight, then run each operation as a step; the captured data of each."""
    store.preflight(ops)
    captured = []
    for op in ops:
        ctx = StepContext(store=store, op=op)
        store.apply(op, ctx)
        captured.append(ctx.captured)
    return captured


def revert(store, ops, captured) -> None:
    """Run the derived downgrade: the inverses of ``ops`` in reverse order."""
    inverse = []
    for op, cap in reversed(list(zip(ops, captured))):
        inverse += op.reverse(cap)
    apply(store, inverse)


def rows_of(store, name: str, fields=("*",)) -> list[dict]:
    phys = store.resolve(name)
    return [r for page in store.scan(phys, batch=5000, fields=fields) for r in page]


def content_hash(store, name: str) -> dict:
    """pk -> sha256 of (vector fields as float32 bytes, other fields as JSON)."""
    phys = store.resolve(name)
    if phys is None:
        return {}
    cs = store.collection_state(phys)
    out = {}
    for row in rows_of(store, phys):
        h = hashlib.sha256()
        for key in sorted(row):
            value = row[key]
            if key in cs.fields and cs.fields[key]["type"] == "FLOAT_VECTOR":
                h.update(key.encode() + np.asarray(value, dtype=np.float32).tobytes())
            else:
                h.update(key.encode() + json.dumps(value, sort_keys=True).encode())
        out[row[cs.pk]] = h.hexdigest()
    return out


def schema_of(store, name: str) -> dict:
    cs = store.collection_state(store.resolve(name))
    return {n: (f["type"], f["dim"]) for n, f in cs.fields.items()}


DOCS_FIELDS = [
    {"name": "id", "type": "INT64", "primary": True},
    {"name": "text", "type": "VARCHAR", "max_length": 512},
    {"name": "vec", "type": "FLOAT_VECTOR", "dim": 8},
]


def doc_rows(n: int, dim: int = 8, start: int = 0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    return [{"id": start + i, "text": f"doc {start + i} on {'cats' if i % 2 else 'dogs'} {i % 11}",
             "vec": vecs[i].tolist()} for i in range(n)]


BASE = '''
def upgrade(op):
    op.vectors.create_collection("docs", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 64},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 8}])
    op.vectors.insert("docs", rows=[{"id": i, "text": f"t{i}", "vec": [float(i)] * 8} for i in range(50)])
'''


def state(project) -> dict:
    store = open_store(load_config(project.config).store("vectors"))
    store.connect()
    try:
        return {"heads": store.read_heads(), "collections": sorted(store.c.list_collections()),
                "aliases": sorted(store.aliases()), "docs": content_hash(store, "docs"),
                "indexes": store.collection_state("docs").indexes}
    finally:
        store.close()
