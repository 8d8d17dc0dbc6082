"""Fixtures for the Milvus adapter tests, on Milvus Lite (a real engine,
in-process), or on the Milvus server ``RAGREV_TEST_MILVUS_URI`` names (each
store path then maps to a database of its own, dropped after the test): an open store in a temporary directory, operations recorded as a
revision would record them, applying and reverting them through the store as
the runner does, and content hashes (primary key -> vector bytes + scalars)
read back from the store."""
from __future__ import annotations

import hashlib
import json
import uuid

import numpy as np
import pytest

from ragrev.config import StoreConfig
from ragrev.context import StepContext
from ragrev.plan import Recorder
from ragrev.stores import open_store


from tests.conftest import MILVUS_SERVER, _milvus_drop_database

_SERVER_DBS: dict[str, str] = {}   # store path -> its database on the server, for this test


def lite_config(path, name: str = "vectors", options: dict | None = None) -> StoreConfig:
    """A store at ``path`` on Milvus Lite, or (on a server) in a database of its own."""
    if not MILVUS_SERVER:
        return StoreConfig(name, f"milvus-lite:///{path}", "milvus", options or {})
    key = str(path)
    if key not in _SERVER_DBS:
        from pymilvus import MilvusClient

        _SERVER_DBS[key] = "t_" + uuid.uuid4().hex[:12]
        client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
        client.create_database(_SERVER_DBS[key])
        client.close()
    return StoreConfig(name, f"{MILVUS_SERVER.rstrip('/')}/{_SERVER_DBS[key]}", "milvus", options or {})


_SERVER_CAPS = []


@pytest.fixture(autouse=True)
def _server_features(request):
    """``@pytest.mark.milvus_feature(name, ...)``: skipped on a server that lacks
    one (:data:`ragrev.ops.milvus_schema.FEATURES`); such a revision is refused there."""
    marker = request.node.get_closest_marker("milvus_feature")
    if marker is None or not MILVUS_SERVER:
        return
    if not _SERVER_CAPS:
        from pymilvus import MilvusClient

        from ragrev.ops.milvus_schema import parse_version, server_capabilities

        client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
        _SERVER_CAPS.append(server_capabilities(parse_version(client.get_server_version())))
        client.close()
    missing = [f for f in marker.args if not getattr(_SERVER_CAPS[0], f)]
    if missing:
        pytest.skip(f"{_SERVER_CAPS[0].server} lacks {', '.join(missing)}")


@pytest.fixture(autouse=True)
def _drop_server_databases():
    yield
    while _SERVER_DBS:
        _milvus_drop_database(MILVUS_SERVER, _SERVER_DBS.popitem()[1])


@pytest.fixture
def lite(tmp_path):
    """A connected store (Milvus Lite, or the server's; closed, and a Lite file released, afterwards)."""
    store = open_store(lite_config(tmp_path / "vectors.db"))
    store.connect()
    store.ensure_meta()
    yield store
    store.close()


def record(store, build) -> list:
    """The operations ``build(op)`` records, as in a revision's upgrade(op)."""
    rec = Recorder({store.name: store.config})
    build(rec)
    return rec.ops


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
