"""Issue 4, part 3: a wrong dimension, an unknown field or collection, an index
type or an operation Milvus Lite does not support -> exit 2 before any change,
with one line naming the file and line, the collection and the field."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers.milvus import BASE, MILVUS_SERVER, drop_server_database, state


# (case, body of the bad revision, what the message must say)
CASES = [
    ("wrong dimension in rows", '''
def upgrade(op):
    op.vectors.create_collection("more", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                 {"name": "vec", "type": "FLOAT_VECTOR", "dim": 8}])
    op.vectors.insert("more", rows=[{"id": 1, "vec": [0.5] * 7}])
''', "more.vec: vector of dimension 7, the field has dim 8"),
    ("unknown field", '''
def upgrade(op):
    op.vectors.create_index("docs", "embedding", index_type="HNSW", metric_type="COSINE")
''', "collection 'docs' has no field 'embedding'"),
    ("unknown collection", '''
def upgrade(op):
    op.vectors.drop_field("chunks", "lang")
''', "no collection 'chunks'"),
    ("index type Lite lacks", '''
def upgrade(op):
    op.vectors.drop_index("docs", "vec")
    op.vectors.create_index("docs", "vec", index_type="IVF_PQ", metric_type="L2", params={"m": 4})
''', "docs.vec: index type 'IVF_PQ' is not supported by Milvus Lite"),
    ("index type that does not exist", '''
def upgrade(op):
    op.vectors.drop_index("docs", "vec")
    op.vectors.create_index("docs", "vec", index_type="HNSWX", metric_type="L2")
''', "docs.vec: index type 'HNSWX' does not apply to FLOAT_VECTOR"),
    ("operation Lite lacks", '''
def upgrade(op):
    op.vectors.add_field("docs", "lang", "VARCHAR", max_length=8, rebuild=False)
''', "docs.lang: Milvus Lite cannot add a field in place"),
    ("embedding of another dimension", '''
def embed(texts):
    return [[1.0] * 16 for _ in texts]

def upgrade(op):
    op.vectors.reembed("docs", "text", embed=embed, dim=32)
''', "docs.vec: the embedding makes 16-dimensional vectors, dim=32"),
    ("copy into a target of another dimension", '''
def upgrade(op):
    op.vectors.create_collection("small", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                  {"name": "text", "type": "VARCHAR", "max_length": 64},
                                                  {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}])
    op.vectors.copy("docs", "small")
''', "small.vec is FLOAT_VECTOR(4), the source's docs.vec is FLOAT_VECTOR(8): wrong dimension"),
    ("query vectors of another dimension", '''
def upgrade(op):
    op.vectors.check_recall("docs", queries=[[0.0] * 5])
''', "docs.vec: a query vector has dimension 5, the field has dim 8"),
    ("filter Lite rejects", '''
def upgrade(op):
    op.vectors.delete("docs", "id % 3 == 0")
''', "delete on store 'vectors': filter 'id % 3 == 0' on 'docs': unexpected character '%'"),
    ("metric that does not apply", '''
def upgrade(op):
    op.vectors.drop_index("docs", "vec")
    op.vectors.create_index("docs", "vec", index_type="HNSW", metric_type="HAMMING")
''', "docs.vec: metric 'HAMMING' does not apply to FLOAT_VECTOR"),
]


LITE = "milvus-lite:///./var/vectors.db"


@pytest.fixture(scope="module")
def base_project(tmp_path_factory):
    """One store at revision b0; each case copies its data directory."""
    from tests.helpers.project import Project

    url = LITE  # Lite: each case copies the data file
    if MILVUS_SERVER:
        from pymilvus import MilvusClient

        db = "t_" + uuid.uuid4().hex[:12]
        client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
        client.create_database(db)
        client.close()
        url = f"{MILVUS_SERVER.rstrip('/')}/{db}"
    p = Project(tmp_path_factory.mktemp("base") / "proj", {"vectors": url if MILVUS_SERVER else LITE})
    p.add("b0", None, BASE)
    p.cli("upgrade", "head")
    yield p
    if MILVUS_SERVER:  # nothing a case does changes the store: they share the database
        drop_server_database(MILVUS_SERVER, url.rsplit("/", 1)[1])


@pytest.mark.parametrize("case,body,message", [pytest.param(*c, marks=pytest.mark.lite_only) if "Lite" in c[0] else c
                                               for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_before_any_change(base_project, tmp_path, case, body, message):
    import shutil

    from tests.helpers.project import Project

    p = Project(tmp_path / "proj", base_project.stores)
    if not MILVUS_SERVER:
        shutil.copytree(base_project.root / "var", p.root / "var")
    shutil.copy(base_project.revisions / "b0.py", p.revisions / "b0.py")
    path = p.add("b1", "b0", body)
    before = state(p)
    result = p.cli("upgrade", "head", expect=2)
    line = result.output.strip().splitlines()[-1]
    assert message in line, line
    assert f"{path}:" in line and "Traceback" not in result.output
    assert state(p) == before
