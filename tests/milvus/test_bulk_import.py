"""Issue 17 part 4: the first pass of ``copy``/``reembed`` by bulk import on a
Milvus server (Parquet files from pymilvus' BulkWriter, ``do_bulk_insert``,
wait, verify the count), and the fallback to inserts on Milvus Lite. The
server tests run when ``RAGREV_TEST_MILVUS_URI`` (``milvus://host:port``)
names a server sharing this file system (as the ``milvus`` package's
standalone server does)."""
from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from ragrev.embeddings import hashing
from ragrev.stores import open_store

from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, lite_config, record, rows_of

SERVER = os.environ.get("RAGREV_TEST_MILVUS_URI")


@pytest.fixture
def server(tmp_path):
    """A store on the server's default database (Milvus 2.3 bulk-imports
    there only), with collection names of this test's own."""
    if not SERVER:
        pytest.skip("RAGREV_TEST_MILVUS_URI names no Milvus server")
    pytest.importorskip("pymilvus.bulk_writer")
    from pymilvus import MilvusClient

    from ragrev.config import StoreConfig

    store = open_store(StoreConfig("vectors", SERVER, "milvus"))
    store.connect()
    store.ensure_meta()
    store.tag = "b" + uuid.uuid4().hex[:10]
    yield store
    store.close()
    client = MilvusClient(uri=SERVER.replace("milvus://", "http://"))
    for name in client.list_collections():
        if store.tag in name:
            client.drop_collection(name)
    for alias in client.list_aliases().get("aliases", []) if hasattr(client, "list_aliases") else []:
        if store.tag in alias:
            client.drop_alias(alias)
    client.close()


def _upper(row):
    return {**row, "text": row["text"].upper()}


@pytest.mark.slow
def test_copy_and_reembed_by_bulk_import_on_a_server(server, tmp_path):
    staging = tmp_path / "staging"
    src, dst = f"src_{server.tag}", f"dst_{server.tag}"
    apply(server, record(server, lambda op: (op.vectors.create_collection(src, DOCS_FIELDS),
                                             op.vectors.insert(src, doc_rows(5000)))))
    captured = apply(server, record(server, lambda op: op.vectors.copy(src, dst, transform=_upper,
                                                                       bulk=str(staging))))[0]
    assert captured["bulk"]["phase"] == "done" and captured["bulk"]["rows"] == 5000 and captured["bulk"]["jobs"]
    got = {r["id"]: r for r in rows_of(server, dst)}
    want = {r["id"]: r for r in doc_rows(5000)}
    assert got.keys() == want.keys()
    assert all(got[k]["text"] == want[k]["text"].upper() and np.allclose(got[k]["vec"], want[k]["vec"])
               for k in want)
    assert not any(staging.iterdir())  # the staged files are removed once imported

    embed = hashing(16)
    captured = apply(server, record(server, lambda op: op.vectors.reembed(src, "text", embed, dim=16,
                                                                          bulk=str(staging))))[0]
    assert captured["bulk"]["rows"] == 5000
    vecs = {r["id"]: r["vec"] for r in rows_of(server, src)}
    assert len(vecs) == 5000 and np.allclose(vecs[7], embed([want[7]["text"]])[0], atol=1e-6)


@pytest.mark.lite_only  # on a server the copy bulk-imports or says why it cannot
def test_lite_falls_back_to_inserts(tmp_path):
    store = open_store(lite_config(tmp_path / "v.db"))
    store.connect()
    store.ensure_meta()
    try:
        apply(store, record(store, lambda op: (op.vectors.create_collection("src", DOCS_FIELDS),
                                               op.vectors.insert("src", doc_rows(300)))))
        captured = apply(store, record(store, lambda op: op.vectors.copy("src", "dst", bulk=str(tmp_path / "s"))))
        assert captured[0]["bulk"] == {"mode": "inserts"}
        assert store.count("dst") == 300
    finally:
        store.close()


def test_bulk_into_an_existing_collection_is_refused(tmp_path):
    from ragrev.errors import OperationError

    store = open_store(lite_config(tmp_path / "v.db"))
    store.connect()
    store.ensure_meta()
    try:
        apply(store, record(store, lambda op: (op.vectors.create_collection("src", DOCS_FIELDS),
                                               op.vectors.create_collection("dst", DOCS_FIELDS))))
        with pytest.raises(OperationError, match="bulk= copies into a collection the copy creates"):
            apply(store, record(store, lambda op: op.vectors.copy("src", "dst", bulk="/tmp/x")))
    finally:
        store.close()
