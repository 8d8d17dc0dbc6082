"""Fixtures for the Milvus adapter tests, all on Milvus Lite (a real engine,
in-process): an open store in a temporary directory, operations recorded as a
revision would record them, applying and reverting them through the store as
the runner does, and content hashes (primary key -> vector bytes + scalars)
read back from the store."""
from __future__ import annotations

import pytest

from ragrev.stores import open_store
from tests.helpers.milvus import lite_config


@pytest.fixture
def lite(tmp_path):
    """A connected Milvus Lite store (closed, and the file released, afterwards)."""
    store = open_store(lite_config(tmp_path / "vectors.db"))
    store.connect()
    store.ensure_meta()
    yield store
    store.close()


