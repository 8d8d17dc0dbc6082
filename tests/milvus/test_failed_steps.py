"""A failed step leaves nothing behind (issue 12, part 3), Milvus Lite: the
revert of a revision whose data step failed part-way removes exactly what
that step wrote. Before the fix a failed ``add_field`` left an orphan
``items_v2`` collection (the rebuild's copy) that neither the downgrade nor
``purge`` removed, and the rows a failed ``insert`` / ``copy`` / ``upsert``
wrote stayed after the downgrade. An insert into an empty collection keeps
the keys of the batch it writes next in its journal record (not in a ledger
collection): its revert is exact too."""
from __future__ import annotations

import pytest

from ragrev.config import StoreConfig
from ragrev.stores import open_store

SEED = '''
def upgrade(op):
    op.vectors.create_collection("items", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "n", "type": "INT64"},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("items", rows=[{"id": i, "n": i, "vec": [float(i), 1.0]} for i in range(300)])
    op.vectors.create_collection("empty", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "n", "type": "INT64"},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
'''

FAILING = {
    "insert": '''
def rows():
    for i in range(150):
        yield {"id": 1000 + i, "n": i, "vec": [1.0, 2.0]}
    raise RuntimeError("source went away")


def upgrade(op):
    op.vectors.insert("items", rows=rows, batch_size=100)
''',
    "insert_into_empty": '''
def rows():
    for i in range(150):
        yield {"id": 1000 + i, "n": i, "vec": [1.0, 2.0]}
    raise RuntimeError("source went away")


def upgrade(op):
    op.vectors.insert("empty", rows=rows, batch_size=50)
''',
    "upsert": '''
def bump(row):
    if row["id"] >= 150:
        raise RuntimeError("bad row")
    return {**row, "n": row["n"] + 1}


def upgrade(op):
    op.vectors.upsert("items", filter="id >= 0", transform=bump, batch_size=100)
''',
    "copy": '''
def keep(row):
    if row["id"] >= 150:
        raise RuntimeError("bad row")
    return row


def upgrade(op):
    op.vectors.copy("items", "items_copy", transform=keep, batch_size=100)
''',
    "add_field": '''
def fill(row):
    if row["id"] >= 150:
        raise RuntimeError("no value")
    return row["id"] * 2


def upgrade(op):
    op.vectors.add_field("items", "double", "INT64", fill=fill, batch_size=100)
''',
}


def state(path) -> dict:
    s = open_store(StoreConfig("vectors", f"milvus-lite:///{path}", "milvus", {}))
    s.connect()
    try:
        out = {}
        for name in s.c.list_collections():
            if name.startswith("ragrev_"):
                continue
            rows = s.c.query(name, filter="id >= 0", output_fields=["*"], limit=5000)
            out[name] = sorted((r["id"], sorted((k, str(v)) for k, v in r.items())) for r in rows)
        return {"collections": out, "aliases": sorted(s.c.list_aliases().get("aliases", []))}
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(FAILING))
def test_the_revert_of_a_failed_revision_removes_what_its_failed_step_wrote(make_project, kind):
    p = make_project({"vectors": "milvus-lite:///./var/v.db"})
    path = p.root / "var" / "v.db"
    p.add("m1", None, SEED)
    p.add("m2", "m1", FAILING[kind])
    p.cli("upgrade", "m1", "-q")
    before = state(path)
    result = p.cli("upgrade", "head", "-q", expect=1)
    assert "revision m2 failed" in result.output
    assert state(path) != before  # the step wrote part of its work, then failed
    p.cli("downgrade", "m1", "-q")
    p.cli("purge")
    assert state(path) == before
