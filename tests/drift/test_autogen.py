"""``ragrev revision --autogenerate`` against a declared state whose
difference with head covers every operation family (Milvus, MongoDB, SQL);
after ``upgrade head``, ``drift`` and ``check`` find nothing."""
from __future__ import annotations

import json

import pytest

from tests.helpers.drift import REV

MODELS = '''
import sqlalchemy as sa

FIELDS = [
    {"name": "id", "type": "INT64", "primary": True},
    {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
    {"name": "text", "type": "VARCHAR", "max_length": 200},
    {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 16},
    {"name": "lang", "type": "VARCHAR", "max_length": 8, "nullable": True},
]

meta = sa.MetaData()
sa.Table("sources", meta, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(50), nullable=False), sa.Column("license", sa.String(40), nullable=True),
         sa.Index("ix_sources_name", "name"))
sa.Table("tags", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.String(30)))

stores = {
    "vec": {
        "collections": {
            "chunks": {"fields": FIELDS,
                       "indexes": {"embedding": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8}}},
                       "embedding": {"model": "hashing"}},
            "notes": {"fields": FIELDS[:2] + [{"name": "v", "type": "FLOAT_VECTOR", "dim": 4}],
                      "indexes": {"v": {"index_type": "FLAT", "metric_type": "L2"}}},
        },
        "aliases": {"live": "chunks", "notes_live": "notes"},
    },
    "docs": {
        "collections": {
            "documents": {"schema": {"type": "object", "required": ["title", "source_id"],
                                     "properties": {"title": {"type": "string"}, "source_id": {"type": "integer"}}},
                          "indexes": [{"keys": [("title", 1)], "unique": True}]},
            "feedback": {"schema": {"type": "object", "required": ["rating"],
                                    "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5}}},
                         "validation_action": "warn",
                         "indexes": [{"keys": [("rating", -1)], "name": "by_rating"}]},
        },
    },
    "meta": meta,
}
'''


@pytest.fixture
def project(make_project, tmp_path, mongo_url, mongo_client):  # noqa: F811
    import uuid

    dbname = "ragrev_t_" + uuid.uuid4().hex[:10]
    p = make_project({"vec": f"milvus-lite:///{tmp_path}/vec.db", "docs": {"url": mongo_url, "database": dbname},
                      "meta": f"sqlite:///{tmp_path}/meta.db"}, options='models = "ragrev_models.py"')
    p.add("a1", None, REV)
    (p.root / "ragrev_models.py").write_text(MODELS)
    p.cli("upgrade", "head", "-q")
    p.dbname = dbname
    yield p
    mongo_client.drop_database(dbname)


def test_autogenerate_then_upgrade_leaves_no_drift(project):
    r = project.cli("check", expect=4)
    assert "declared state differs from head: re-embed chunks.embedding: 8 -> 16 dimensions" in r.output

    r = project.cli("revision", "--autogenerate", "-m", "declared state", "--rev-id", "b2")
    for phrase in ("vec: add field chunks.lang", "vec: re-embed chunks.embedding", "vec: add collection notes",
                   "vec: remove collection other", "vec: add alias notes_live", "docs: set the schema of documents",
                   "docs: create index documents.title_1", "docs: drop index documents.source_id_1",
                   "docs: add collection feedback", "meta: add_column sources.license", "meta: add_table tags"):
        assert f"Detected {phrase}" in r.output, phrase
    path = next(project.revisions.glob("b2_*.py"))
    text = path.read_text()
    assert "EMBED_CHUNKS = None" in text and "# TODO: the embedding function of chunks.embedding" in text
    assert "op.vec.reembed('chunks', text_field='text', embed=EMBED_CHUNKS, dim=16" in text
    assert "op.vec.check_recall('chunks'" in text
    assert "op.meta.create_table('tags'" in text and "op.meta.add_column('sources'" in text

    # the file does not run until the TODO is done
    project.cli("upgrade", "head", expect=2)
    path.write_text(text.replace("EMBED_CHUNKS = None", "from ragrev.embeddings import hashing\nEMBED_CHUNKS = hashing(dim=16)")
                    .replace("min_recall=0.95", "min_recall=0.5"))
    project.cli("hash")
    project.cli("upgrade", "head", "-q")

    rep = json.loads(project.cli("drift", "--json").output)
    assert not rep["drift"], rep
    assert all(not s["unmanaged"] for s in rep["stores"]), rep
    assert "No problems found" in project.cli("check").output
    with pytest.raises(AssertionError, match="declared state and head agree"):
        project.cli("revision", "--autogenerate", "-m", "nothing", expect=0)


def test_what_ragrev_cannot_express_is_a_todo(project):
    models = project.root / "ragrev_models.py"
    models.write_text(MODELS.replace('"fields": FIELDS,', '"fields": FIELDS, "dynamic": True,'))
    project.cli("revision", "--autogenerate", "-m", "dynamic", "--rev-id", "c3")
    text = next(project.revisions.glob("c3_*.py")).read_text()
    assert "# TODO: dynamic field of chunks: False -> True" in text


MODELS_2 = '''
import sqlalchemy as sa

meta = sa.MetaData()
sa.Table("sources", meta, sa.Column("id", sa.Integer, primary_key=True))

stores = {
    "vec": {
        "collections": {
            "chunks": {"fields": [{"name": "id", "type": "INT64", "primary": True},
                                  {"name": "text", "type": "VARCHAR", "max_length": 300},
                                  {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8}],
                       "indexes": {"embedding": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8}}},
                       "embedding": {"model": "mini-embed"}},
            "other": {"fields": [{"name": "id", "type": "INT64", "primary": True},
                                 {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
                                 {"name": "text", "type": "VARCHAR", "max_length": 200},
                                 {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8}],
                      "indexes": {"embedding": {"index_type": "FLAT", "metric_type": "L2"}}},
        },
        "aliases": {"live": "other"},
    },
    "docs": {"collections": {}},
    "meta": meta,
}
'''


def test_autogenerate_alters_drops_and_switches(project):
    project.add("a1b", "a1", """
    def upgrade(op):
        op.vec.insert("other", rows=[{"id": i, "doc_id": "d", "text": "t", "embedding": [float(i % 5 + k) for k in range(8)]}
                                     for i in range(30)])
    """)
    project.cli("upgrade", "head", "-q")
    (project.root / "ragrev_models.py").write_text(MODELS_2)
    r = project.cli("revision", "--autogenerate", "-m", "second", "--rev-id", "d4")
    for phrase in ("vec: alter field chunks.text (max_length)", "vec: drop field chunks.doc_id",
                   "vec: drop index other.embedding", "vec: create index other.embedding (FLAT/L2)",
                   "vec: point alias live at other", "docs: remove collection documents",
                   "meta: remove_index ix_sources_name", "meta: remove_column sources.name"):
        assert f"Detected {phrase}" in r.output, (phrase, r.output)
    text = next(project.revisions.glob("d4_*.py")).read_text()
    assert "op.vec.check_recall('other', field='embedding'" in text
    assert "# TODO: gate the switch of 'live'" in text
    project.cli("upgrade", "head", "-q")
    rep = json.loads(project.cli("drift", "--json").output)
    assert not rep["drift"], rep
    assert "No problems found" in project.cli("check").output   # lint included: the index change is gated


MODELS_HEAD = '''
import sqlalchemy as sa

FIELDS = [{"name": "id", "type": "INT64", "primary": True},
          {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
          {"name": "text", "type": "VARCHAR", "max_length": 200},
          {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8}]
meta = sa.MetaData()
sa.Table("sources", meta, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(50), nullable=False), sa.Index("ix_sources_name", "name"))
stores = {
    "vec": {"collections": {
        "chunks": {"fields": FIELDS, "indexes": {"embedding": {"index_type": "HNSW", "metric_type": "COSINE",
                                                               "params": {"M": 8}}},
                   "embedding": {"model": "mini-embed", "version": "1", "chunker": "para-v1"}},
        "other": {"fields": FIELDS}},
        "aliases": {"live": "chunks"}},
    "docs": {"collections": {"documents": {
        "schema": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}},
        "indexes": [{"keys": [("source_id", 1)]}]}}},
    "meta": meta,
}
'''


def test_against_live_reverts_hand_changes(project, mongo_client):  # noqa: F811
    (project.root / "ragrev_models.py").write_text(MODELS_HEAD)
    project.cli("hash")
    assert "No problems found" in project.cli("check").output        # declared == head
    r = project.cli("revision", "--autogenerate", "--against-live", "-m", "x", expect=2)
    assert "the declared state and the live stores agree" in r.output

    mongo_client[project.dbname]["documents"].create_index([("title", 1)])
    import sqlalchemy as sa

    eng = sa.create_engine(f"sqlite:///{project.root.parent}/meta.db")
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE sources ADD COLUMN notes VARCHAR(20)")
    eng.dispose()
    r = project.cli("revision", "--autogenerate", "--against-live", "-m", "undo hand changes", "--rev-id", "e5")
    assert "Detected docs: drop index documents.title_1" in r.output
    assert "Detected meta: remove_column sources.notes" in r.output
    assert "Detected vec" not in r.output
    project.cli("revision", "--against-live", "-m", "x", expect=2)
