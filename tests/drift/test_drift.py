"""``ragrev state`` and ``ragrev drift`` on the embedded engines (Milvus Lite,
SecantusDB or $RAGREV_TEST_MONGO_URI, SQLite): each hand-made change is
reported, unmanaged objects are listed apart and are not drift."""
from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from ragrev.config import load_config
from ragrev.stores import open_store
from tests.helpers.drift import REV


@pytest.fixture
def project(make_project, tmp_path, mongo_url, mongo_client):
    dbname = "ragrev_t_" + uuid.uuid4().hex[:10]
    p = make_project({"vec": f"milvus-lite:///{tmp_path}/vec.db", "docs": {"url": mongo_url, "database": dbname},
                      "meta": f"sqlite:///{tmp_path}/meta.db"})
    p.add("a1", None, REV)
    p.cli("upgrade", "head", "-q")
    p.dbname = dbname
    yield p
    mongo_client.drop_database(dbname)


def milvus(p):
    store = open_store(load_config(str(p.config)).store("vec"))
    store.connect()
    return store


def drift_json(p, expect):
    out = p.cli("drift", "--json", expect=expect).output
    return {s["store"]: s for s in json.loads(out)["stores"]}


def whats(report, store):
    return {(d["object"], d["what"]) for d in report[store]["drift"]}


def test_state_touches_no_store_and_drift_is_silent_after_upgrade(project):
    out = json.loads(project.cli("state", "--json").output)
    by = {s["store"]: s["state"] for s in out["stores"]}
    chunks = by["vec"]["collections"]["chunks"]
    assert chunks["fields"]["embedding"]["dim"] == 8
    assert chunks["indexes"]["embedding"]["metric_type"] == "COSINE"
    assert chunks["embedding"] == {"field": "embedding", "model": "mini-embed", "version": "1", "chunker": "para-v1"}
    assert by["vec"]["aliases"] == {"live": "chunks"}
    assert by["docs"]["collections"]["documents"]["indexes"]["source_id_1"]["key"] == [["source_id", 1]]
    assert set(by["meta"]["tables"]["sources"]["columns"]) == {"id", "name"}
    assert "base" in project.cli("state", "base").output or project.cli("state", "base").output == ""

    rep = drift_json(project, 0)
    assert all(not r["drift"] and not r["unmanaged"] for r in rep.values())
    md = project.cli("drift", "--markdown").output
    assert "no drift" in md


def test_unmanaged_objects_are_listed_apart_not_drift(project, mongo_client):
    s = milvus(project)
    try:
        s.c.create_collection("scratch", dimension=4)
    finally:
        s.close()
    mongo_client[project.dbname]["notes"].insert_one({"x": 1})
    eng = sa.create_engine(f"sqlite:///{project.root.parent}/meta.db")
    with eng.begin() as c:
        c.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
    eng.dispose()
    rep = drift_json(project, 0)
    assert rep["vec"]["unmanaged"] == ["collection scratch"] and not rep["vec"]["drift"]
    assert rep["docs"]["unmanaged"] == ["collection notes"] and not rep["docs"]["drift"]
    assert rep["meta"]["unmanaged"] == ["table scratch"] and not rep["meta"]["drift"]


def test_milvus_hand_changes_are_drift(project):
    project.cli("drift", "--record-counts")
    s = milvus(project)
    try:
        c = s.c
        c.release_collection("chunks")
        c.drop_index("chunks", "embedding")                              # index changed by hand
        ip = c.prepare_index_params()
        ip.add_index("embedding", index_type="FLAT", metric_type="L2")
        c.create_index("chunks", ip)
        c.alter_collection_properties("chunks", properties={"ragrev.embedding": json.dumps(
            {"field": "embedding", "model": "other-embed", "version": "1", "chunker": "para-v1"})})
        c.delete("chunks", filter="id >= 5")                             # count far from the last one
        c.drop_collection("other")                                       # recreated with one field more
        schema = c.create_schema(auto_id=False)
        from pymilvus import DataType

        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=32)
        schema.add_field("text", DataType.VARCHAR, max_length=200)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=8)
        schema.add_field("extra", DataType.INT64)
        ip = c.prepare_index_params()
        ip.add_index("embedding", index_type="AUTOINDEX", metric_type="COSINE")
        c.create_collection("other", schema=schema, index_params=ip)
        c.alter_alias("other", "live")                                   # alias pointing elsewhere
    finally:
        s.close()
    rep = drift_json(project, 4)
    got = whats(rep, "vec")
    assert ("alias live", "alias points elsewhere") in got
    assert ("collection chunks.embedding", "index changed") in got
    assert ("collection chunks", "embedding contract changed: model") in got
    assert ("chunks", "count far from the last recorded one") in got
    assert ("collection other.extra", "field added outside ragrev") in got
    assert not rep["vec"]["unmanaged"]
    text = project.cli("drift", expect=4).output
    assert "DRIFT collection chunks.embedding: index changed (expected HNSW/COSINE" in text
    md = project.cli("drift", "--format", "markdown", expect=4).output
    assert "| `alias live` | alias points elsewhere | chunks | other |" in md


def test_mongo_and_sql_hand_changes_are_drift(project, mongo_client):
    db = mongo_client[project.dbname]
    db.command("collMod", "documents", validator={}, validationLevel="off")   # validator loosened / removed
    db["documents"].create_index([("title", 1)])                             # index added by hand
    db["documents"].drop_index("source_id_1")                                 # index dropped by hand
    eng = sa.create_engine(f"sqlite:///{project.root.parent}/meta.db")
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE sources ADD COLUMN notes VARCHAR(20)")  # field added outside ragrev
        c.exec_driver_sql("DROP INDEX ix_sources_name")
    eng.dispose()
    rep = drift_json(project, 4)
    docs = whats(rep, "docs")
    assert ("collection documents", "validator removed") in docs
    assert ("collection documents index title_1", "index added outside ragrev") in docs
    assert ("collection documents index source_id_1", "index missing") in docs
    meta = whats(rep, "meta")
    assert ("table sources.notes", "column added outside ragrev") in meta
    assert ("table sources index ix_sources_name", "index missing") in meta
    assert not whats(rep, "vec")


def test_validation_level_loosened(project, mongo_client):
    db = mongo_client[project.dbname]
    db.command("collMod", "documents", validationLevel="moderate", validationAction="warn")
    rep = drift_json(project, 4)
    docs = whats(rep, "docs")
    assert ("collection documents", "validation level loosened") in docs
    assert ("collection documents", "validation action loosened") in docs


def test_check_references_gates_a_revision_and_is_rechecked_by_drift(project, mongo_client):
    project.add("a2", "a1", """
    def upgrade(op):
        op.meta.execute("INSERT INTO sources (id, name) VALUES (3, 'ok'), (999, 'orphan')")
        op.check_references("meta.sources.id", "vec.chunks.id", sample=5)
    """)
    r = project.cli("upgrade", "head", expect=1)
    assert "1 of 2 meta.sources.id value(s) have no match in vec.chunks.id; e.g. 999" in r.output
    eng = sa.create_engine(f"sqlite:///{project.root.parent}/meta.db")
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM sources").scalar() == 0   # the revision rolled back
    eng.dispose()
    (project.revisions / "a2.py").unlink()

    assert not whats(drift_json(project, 0), "vec")
    mongo_client[project.dbname]["documents"].delete_one({"_id": "d3"})
    rep = drift_json(project, 4)
    [d] = rep["vec"]["drift"]
    assert d["object"] == "references vec.chunks.doc_id -> docs.documents._id"
    assert d["what"] == "8 of 40 dangling" and d["actual"] == ["d3"]
