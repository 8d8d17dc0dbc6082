"""Fixtures for the Milvus adapter tests, on Milvus Lite (a real engine,
in-process), or on the Milvus server ``RAGREV_TEST_MILVUS_URI`` names (each
store path then maps to a database of its own, dropped after the test): an
open store in a temporary directory, operations recorded as a revision would
record them, applying and reverting them through the store as the runner
does, and content hashes (primary key -> vector bytes + scalars) read back
from the store (helpers in ``tests/helpers/milvus.py``)."""
from __future__ import annotations

import pytest

from ragrev.stores import open_store
from tests.helpers.milvus import MILVUS_SERVER, SERVER_DBS, drop_server_database, lite_config

_SERVER_CAPS = []


@pytest.fixture(autouse=True)
def _server_features(request):
    """``@pytest.mark.milvus_feature(name, ...)``: skipped on a server that lacks
    one (:data:`ragrev.ops.vector_schema.FEATURES`); such a revision is refused there."""
    marker = request.node.get_closest_marker("milvus_feature")
    if marker is None or not MILVUS_SERVER:
        return
    if not _SERVER_CAPS:
        from pymilvus import MilvusClient

        from ragrev.ops.vector_schema import parse_version, server_capabilities

        client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
        _SERVER_CAPS.append(server_capabilities(parse_version(client.get_server_version())))
        client.close()
    missing = [f for f in marker.args if not getattr(_SERVER_CAPS[0], f)]
    if missing:
        pytest.skip(f"{_SERVER_CAPS[0].server} lacks {', '.join(missing)}")


@pytest.fixture(autouse=True)
def _drop_server_databases():
    yield
    while SERVER_DBS:
        drop_server_database(MILVUS_SERVER, SERVER_DBS.popitem()[1])


@pytest.fixture
def lite(tmp_path):
    """A connected store (Milvus Lite, or the server's; closed, and a Lite file released, afterwards)."""
    store = open_store(lite_config(tmp_path / "vectors.db"))
    store.connect()
    store.ensure_meta()
    yield store
    store.close()
