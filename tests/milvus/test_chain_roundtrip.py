"""Issue 4, "done when" 1: a chain of revisions on Milvus Lite through the CLI —
create a collection, load rows (a data step), an HNSW/COSINE index, a new
``lang`` field (rebuild + alias switch), a re-embedding to a new dimension
(alias switch) and a ``check_recall`` that passes — then ``downgrade`` one
revision at a time to base: at every level the content hashes (primary key ->
vector bytes + scalars), the schema and the indexes equal those taken on the
way up."""
from __future__ import annotations

import pytest

from ragrev.config import load_config
from ragrev.stores import open_store
from tests.helpers.milvus import content_hash

ROWS = '''
import random

def rows():
    rng = random.Random(7)
    for i in range(2000):
        yield {"id": i, "text": f"doc {i} about {'cats' if i % 2 else 'dogs'} and topic {i % 17}",
               "vec": [rng.uniform(-1, 1) for _ in range(8)]}
'''

REVISIONS = [
    ("r1", None, ROWS + '''
def upgrade(op):
    op.vectors.create_collection("docs", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 256},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 8}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("docs", rows=rows, batch_size=500)
    op.vectors.expect_count("docs", 2000)
'''),
    ("r2", "r1", '''
def upgrade(op):
    op.vectors.drop_index("docs", "vec")
    op.vectors.create_index("docs", "vec", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
'''),
    ("r3", "r2", '''
def upgrade(op):
    op.vectors.add_field("docs", "lang", "VARCHAR", max_length=8, fill=lambda row: "de" if row["id"] % 3 == 0 else "en")
'''),
    ("r4", "r3", '''
from ragrev.embeddings import hashing

def upgrade(op):
    op.vectors.reembed("docs", "text", embed=hashing(dim=32), dim=32, batch_size=400)
    op.vectors.check_recall("docs", k=10, queries=40, min_recall=0.95, search_params={"ef": 64})
'''),
]


def snapshot(project) -> dict:
    """The user's view of the store: each collection name (alias or not) ->
    schema, indexes and content hash; plus the heads."""
    store = open_store(load_config(project.config).store("vectors"))
    store.connect()
    try:
        names = set(store.user_collections()) | set(store.aliases())
        out = {"heads": store.read_heads()}
        for name in sorted(names):
            cs = store.collection_state(store.resolve(name))
            out[name] = {"fields": {n: (f["type"], f["dim"], f["max_length"]) for n, f in cs.fields.items()},
                         "indexes": {f: (i["index_type"], i["metric_type"]) for f, i in cs.indexes.items()},
                         "rows": content_hash(store, name)}
        return out
    finally:
        store.close()


@pytest.mark.slow
def test_chain_up_then_down_level_by_level_restores_content_hashes(make_project, milvus_url):
    p = make_project({"vectors": milvus_url})
    for rev, down, body in REVISIONS:
        p.add(rev, down, body)

    up = [snapshot(p)]
    for _ in REVISIONS:
        p.cli("upgrade", "+1")
        up.append(snapshot(p))

    top = up[-1]
    assert top["heads"] == ("r4",)
    assert top["docs"]["fields"]["vec"] == ("FLOAT_VECTOR", 32, None)     # re-embedded to a new dim
    assert top["docs"]["fields"]["lang"][0] == "VARCHAR"
    assert top["docs"]["indexes"]["vec"] == ("HNSW", "COSINE")
    assert len(top["docs"]["rows"]) == 2000
    assert up[2]["docs"]["indexes"] == {"vec": ("HNSW", "COSINE")}
    assert up[1]["docs"]["indexes"] == {"vec": ("FLAT", "L2")}
    assert up[3]["docs"]["rows"] != up[2]["docs"]["rows"]                 # lang values were written
    assert up[4]["docs"]["rows"] != up[3]["docs"]["rows"]                 # new vectors
    assert up[0] == {"heads": ()}

    for level in range(len(REVISIONS) - 1, -1, -1):
        p.cli("downgrade", "-1" if level else "base")
        assert snapshot(p) == up[level], f"state after downgrading to level {level} differs"

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        trash = [n for n in store.c.list_collections() if n.startswith("ragrev_trash_")]
        assert trash and store.user_collections() == []
        assert sorted(store.purge()) == sorted(trash)
        assert [n for n in store.c.list_collections() if n.startswith("ragrev_trash_")] == []
    finally:
        store.close()
