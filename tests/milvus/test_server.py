"""Bugs found on a Milvus 2.3 server (issue 13), and what ragrev knows about a
server by its version. The server tests run when ``RAGREV_TEST_MILVUS_URI``
names one (``.ci/run`` starts one); the message tests run everywhere."""
from __future__ import annotations

import pytest

from ragrev.ops.vector_schema import MILVUS, parse_version, server_capabilities
from ragrev.drivers.milvus.store import _syntax_error
from tests.helpers.milvus import MILVUS_SERVER
from tests.helpers.milvus import DOCS_FIELDS, apply, content_hash, doc_rows, record, revert, schema_of

server = pytest.mark.skipif(not MILVUS_SERVER, reason="needs a Milvus server (RAGREV_TEST_MILVUS_URI)")


def test_how_milvus_2_3_words_an_unknown_field_is_not_a_syntax_error():
    msg = "cannot parse expression: lang == \"en\", error: field lang not exist"
    assert not _syntax_error(msg)
    assert _syntax_error("cannot parse expression: id >>> 3, error: line 1:4 extraneous input '>'")


def test_capabilities_by_version():
    old = server_capabilities(parse_version("v2.3.5-lite"))
    assert old.version == (2, 3, 5) and not old.multi_vector and not old.nullable and not old.hnsw_defaults
    assert "INVERTED" not in old.scalar_index_types and "STL_SORT" in old.scalar_index_types
    assert "SPARSE_FLOAT_VECTOR" not in old.vector_types and not old.native_add_field
    assert old.lacks("multi_vector") == "Milvus 2.3.5 lacks several vector fields in one collection (Milvus 2.4.0 has it)"
    new = server_capabilities((2, 6, 1))
    assert new.native_add_field and new.multi_vector and "INVERTED" in new.scalar_index_types
    assert server_capabilities(None) == MILVUS


@server
def test_add_field_and_alter_max_length_fall_back_to_a_rebuild_when_the_server_answers_unimplemented(lite):
    """pymilvus passes gRPC UNIMPLEMENTED on unwrapped (a grpc.RpcError): the step
    failed with exit 1 instead of rebuilding. The store is told the server is
    2.6 (it claims the native calls), the real 2.3 server refuses them."""
    store = lite
    apply(store, record(store, lambda op: (op.vectors.create_collection("docs", fields=DOCS_FIELDS),
                                           op.vectors.insert("docs", rows=doc_rows(50)))))
    before = content_hash(store, "docs")
    store._caps = server_capabilities((2, 6, 0))
    ops = record(store, lambda op: (op.vectors.add_field("docs", "lang", "VARCHAR", max_length=8, default="en"),
                                    op.vectors.alter_field("docs", "text", max_length=1024)))
    store._caps = server_capabilities((2, 6, 0))
    captured = apply(store, ops)
    assert [c["mode"] for c in captured] == ["rebuild", "rebuild"]
    assert schema_of(store, "docs")["lang"] == ("VARCHAR", None)
    assert store.collection_state(store.resolve("docs")).fields["text"]["max_length"] == 1024
    assert {r["lang"] for page in store.scan(store.resolve("docs"), fields=("lang",)) for r in page} == {"en"}
    revert(store, ops, captured)
    assert content_hash(store, "docs") == before


@server
def test_aliases_resolve_in_the_stores_own_database(make_project, milvus_url):
    """On 2.3 describe_alias answers from ``default``: an alias ``chunks`` there made
    ``create_collection('chunks')`` in a fresh database fail with "already exists"."""
    import uuid

    from pymilvus import DataType, MilvusClient

    tag = uuid.uuid4().hex[:8]
    client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))  # the default database
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection(f"c_{tag}", schema=schema)
    client.create_alias(f"c_{tag}", f"chunks_{tag}")
    try:
        p = make_project({"vectors": milvus_url})
        p.add("a1", None, f'''
def upgrade(op):
    op.vectors.create_collection("chunks_{tag}", fields=[{{"name": "id", "type": "INT64", "primary": True}},
                                                        {{"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}}])
    op.vectors.create_alias("chunks_{tag}", "docs_{tag}")
''')
        p.cli("upgrade", "head", "-q")
        p.cli("downgrade", "base", "-q")
        p.cli("upgrade", "head", "-q")
    finally:
        client.drop_alias(f"chunks_{tag}")
        client.drop_collection(f"c_{tag}")
        client.close()


@server
def test_a_revision_needing_what_the_server_lacks_is_refused_at_plan_time(make_project, milvus_url):
    p = make_project({"vectors": milvus_url})
    path = p.add("c1", None, '''
def upgrade(op):
    op.vectors.create_collection("docs", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                 {"name": "n", "type": "INT64"},
                                                 {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}])
    op.vectors.create_index("docs", "n", index_type="INVERTED")
''')
    out = p.cli("upgrade", "head", expect=2).output.strip().splitlines()[-1]
    assert f"{path}:" in out and "'INVERTED' is not supported by Milvus 2.3" in out and "(Milvus 2.4.0 has it)" in out
    assert p.cli("current").output.count("c1") == 0


@server
def test_two_runners_on_one_server_with_lock_url_one_applies_the_other_exits_3(make_project, milvus_url, tmp_path):
    """Milvus has no compare-and-set; with ``lock_url`` the lease is a row in a SQL
    database, taken by compare-and-set: of two runners started together one
    applies, the other waits, then exits 3 naming the holder."""
    lock = f"sqlite:///{tmp_path}/lock.db"
    body = '''
import time

def slow(row):
    time.sleep(0.002)
    return row

def upgrade(op):
    op.vectors.create_collection("docs", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                 {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}])
    op.vectors.insert("docs", rows=[{"id": i, "vec": [float(i), 1.0]} for i in range(3000)])
    op.vectors.copy("docs", "copy", transform=slow, batch_size=200)
'''
    projects = [make_project({"vectors": {"url": milvus_url, "lock_url": lock}}, sub=f"p{i}") for i in (1, 2)]
    for p in projects:
        p.add("s1", None, body)
    procs = [p.run("upgrade", "head", "-q") for p in projects]
    outs = [proc.communicate(timeout=300) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 3], outs
    loser = outs[[proc.returncode for proc in procs].index(3)][1]
    assert "store 'vectors' is locked by" in loser
    from ragrev.config import load_config
    from ragrev.stores import open_store

    store = open_store(load_config(projects[0].config).store("vectors"))
    store.connect()
    try:
        assert store.count("copy") == 3000 and store.read_heads() == ("s1",)
        assert [r["outcome"] for r in store.log_records() if r["type"] == "run"] == ["done"]
    finally:
        store.close()
