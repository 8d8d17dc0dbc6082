"""The pgvector driver end to end, through the CLI, on the embedded PostgreSQL."""
from __future__ import annotations

import pytest

from tests.helpers.pgvector import run, sql

CREATE = """
import random

def rows():
    rng = random.Random(7)
    for i in range(400):
        yield {"id": i, "text": f"passage {i} " + ("the and of" if i % 3 else "der die das"),
               "embedding": [rng.random() for _ in range(8)]}

def upgrade(op):
    op.vec.create_collection("chunks", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 200},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8},
    ], indexes={"embedding": {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 4}}})
    op.vec.insert("chunks", rows=rows, batch_size=100)
"""

LANG = """
def upgrade(op):
    op.vec.add_field("chunks", "lang", "VARCHAR", max_length=8, nullable=False,
                     fill=lambda row: "de" if "der" in row["text"] else "en")
    op.vec.expect_count("chunks", 0, filter='lang not in ["en", "de"]')
    op.vec.drop_index("chunks", "embedding")
    op.vec.create_index("chunks", "embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16})
    op.vec.check_recall("chunks", k=5, queries=30, min_recall=0.9, search_params={"ef": 64})
"""

BLUE_GREEN = """
def double(row):
    return {**row, "embedding": [2 * x for x in row["embedding"]] + [0.5] * 8}

def upgrade(op):
    op.vec.create_collection("chunks_16", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 200},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 16},
        {"name": "lang", "type": "VARCHAR", "max_length": 8},
    ], indexes={"embedding": {"index_type": "HNSW", "metric_type": "COSINE"}})
    op.vec.copy("chunks", "chunks_16", transform=double, batch_size=50)
    op.vec.expect_count("chunks_16", "chunks")
    op.vec.check_recall("chunks_16", k=5, queries=30, min_recall=0.9, search_params={"ef": 64})
    op.vec.alter_alias("chunks_16", "chunks")
"""


def tables(project):
    return sorted(r[0] for r in sql(project, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                             "AND tablename NOT LIKE 'ragrev_%'"))


@pytest.mark.slow
def test_round_trip(project):
    p = project({"r1": CREATE, "r2": LANG, "r3": BLUE_GREEN})
    up = run(p, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert sql(p, "SELECT count(*), vector_dims(min(embedding::text)::vector) FROM chunks") == [(400, 16)]
    assert sql(p, "SELECT count(*) FROM chunks WHERE lang = 'de'") == [(134,)]
    assert tables(p) == ["chunks_16", "chunks_v2"]
    down = run(p, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(p) == []  # everything soft-dropped into the trash
    assert sql(p, "SELECT count(*) FROM pg_views WHERE schemaname = 'public'") == [(0,)]
    again = run(p, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert sql(p, "SELECT count(*) FROM chunks") == [(400,)]
    assert run(p, "purge").returncode == 0
    assert not [t for t in tables(p) if t.startswith("ragrev_trash")]


COPY = """
def double(row):
    return {**row, "embedding": [2 * x for x in row["embedding"]] + [0.5] * 8}

def upgrade(op):
    op.vec.create_collection("chunks_16", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 200},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 16},
    ])
    op.vec.copy("chunks", "chunks_16", transform=double, batch_size=50)
    op.vec.expect_count("chunks_16", "chunks")
"""


@pytest.mark.slow
def test_resume_after_kill_mid_copy(project):
    p = project({"r1": CREATE, "r2": COPY})
    # killed inside a copy batch's transaction (after the journal update, before the commit)
    killed = run(p, "upgrade", "head", env={"RAGREV_FAULTS": "checkpoint=12"})
    assert killed.returncode == -9, killed.stderr
    n = sql(p, "SELECT count(*) FROM chunks_16")[0][0]
    assert 0 < n < 400 and n % 50 == 0  # whole batches: each commits with its checkpoint
    resumed = run(p, "upgrade", "head")
    assert resumed.returncode == 0, resumed.stderr
    got = sql(p, "SELECT id, text, embedding::real[] FROM chunks_16 ORDER BY id")
    src = sql(p, "SELECT id, text, embedding::real[] FROM chunks ORDER BY id")
    assert [r[0] for r in got] == list(range(400))
    for (gid, gtext, gvec), (sid, stext, svec) in zip(got, src):
        assert (gid, gtext) == (sid, stext)
        assert gvec == pytest.approx([2 * x for x in svec] + [0.5] * 8, rel=1e-6)
    steps = sql(p, "SELECT rows_done FROM ragrev_log WHERE type = 'step' AND description LIKE 'copy%%'")
    assert steps == [(400,)]


def test_wrong_dimension_is_bad_input_and_changes_nothing(project):
    p = project({"r1": CREATE.replace("for _ in range(8)", "for _ in range(9)")})
    res = run(p, "upgrade", "head")
    assert res.returncode == 2, res.stderr
    assert "dimension 9" in res.stderr and "Traceback" not in res.stderr
    assert tables(p) == []
    assert sql(p, "SELECT count(*) FROM pg_tables WHERE tablename = 'ragrev_version'") == [(0,)]


def test_unknown_filter_field_is_bad_input(project):
    p = project({"r1": CREATE + '    op.vec.delete("chunks", filter="colour == \'red\'")\n'})
    res = run(p, "upgrade", "head")
    assert res.returncode == 2, res.stderr
    assert "unknown field 'colour'" in res.stderr
    assert tables(p) == []


def test_lease_held_elsewhere_is_exit_3(project):
    p = project({"r1": CREATE})
    from ragrev.config import load_config
    from ragrev.drivers.pgvector.store import PgvectorStore

    store = PgvectorStore(load_config(p / "ragrev.toml").store("vec"))
    store.connect()
    try:
        store.ensure_meta()
        assert store.lock_try("otherhost:1:x", 60) is None
        res = run(p, "upgrade", "head")
        assert res.returncode == 3, res.stderr
        assert "otherhost:1:x" in res.stderr
        assert tables(p) == []
    finally:
        store.lock_release("otherhost:1:x")
        store.close()


REEMBED = """
from ragrev.embeddings import hashing

def upgrade(op):
    op.vec.reembed("chunks", "text", embed=hashing(dim=12), dim=12, batch_size=64)
    op.vec.drop_field("chunks", "text")
    op.vec.expect_count("chunks", 400)
"""


@pytest.mark.slow
def test_reembed_drop_field_and_back(project):
    p = project({"r1": CREATE, "r2": REEMBED})
    up = run(p, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert sql(p, "SELECT count(*), max(vector_dims(embedding)) FROM chunks") == [(400, 12)]
    assert [r[0] for r in sql(p, "SELECT column_name FROM information_schema.columns WHERE table_name = 'chunks' "
                                 "ORDER BY ordinal_position")] == ["id", "embedding"]
    down = run(p, "downgrade", "r1")
    assert down.returncode == 0, down.stderr
    assert sql(p, "SELECT count(*), max(vector_dims(embedding)), count(text) FROM chunks") == [(400, 8, 400)]
    assert sql(p, "SELECT count(*) FROM pg_views WHERE schemaname = 'public'") == [(0,)]


@pytest.mark.parametrize("extra", ['    op.vec.expect_fresh("chunks", "chunks")\n',
                                   '    op.vec.copy("chunks", "c2", catch_up="id")\n'], ids=["op", "param"])
def test_milvus_only_operations_and_parameters_are_refused_at_plan_time(project, extra):
    p = project({"r1": CREATE + extra})
    res = run(p, "upgrade", "head")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "not supported" in res.stderr
    assert tables(p) == []
