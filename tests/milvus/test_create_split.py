"""Milvus creates a collection and its indexes in two calls, so a run killed
between them leaves a collection without indexes. Found by the reliability
harness (CI, ``time-then-time-in-downgrade``): a time kill inside r3's
``copy("chunks", "chunks_backup")`` left ``chunks_backup`` unindexed, and the
resumed step copied its rows but never indexed it. Each step that creates a
collection must finish creating it when it resumes: here the state a kill
leaves is made with the driver's own ``create_collection`` on Milvus Lite,
then the step runs (resumed where it is) and the collection in the store has
its index and its rows."""
from __future__ import annotations

from pymilvus import DataType, MilvusClient

from ragrev.context import StepContext
from tests.helpers.milvus import DOCS_FIELDS, apply, content_hash, doc_rows, record

INDEXES = {"vec": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8, "efConstruction": 64}}}


def bare(store, name: str) -> None:
    """``name`` created as DOCS_FIELDS with no index: what a kill after Milvus's first call leaves."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=512)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    store.c.create_collection(name, schema=schema, consistency_level="Strong")


def test_a_resumed_create_collection_adds_the_indexes_a_kill_left_out(lite):
    bare(lite, "docs")
    assert lite.collection_state("docs").indexes == {}
    apply(lite, record(lite, lambda op: op.vectors.create_collection("docs", fields=DOCS_FIELDS, indexes=INDEXES)))
    index = lite.collection_state("docs").indexes["vec"]
    assert (index["index_type"], index["metric_type"]) == ("HNSW", "COSINE")
    apply(lite, record(lite, lambda op: op.vectors.insert("docs", rows=doc_rows(20))))
    assert lite.count("docs") == 20


def test_a_resumed_copy_indexes_the_target_it_created(lite):
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("chunks", fields=DOCS_FIELDS, indexes=INDEXES),
                                         op.vectors.insert("chunks", rows=doc_rows(300)))))
    [op] = record(lite, lambda op: op.vectors.copy("chunks", "chunks_backup", batch_size=100))
    bare(lite, "chunks_backup")
    ctx = StepContext(store=lite, op=op, captured={"undo": "drop"})  # the journal's record of the killed step
    lite.apply(op, ctx)
    assert lite.collection_state("chunks_backup").indexes == lite.collection_state("chunks").indexes
    assert content_hash(lite, "chunks_backup") == content_hash(lite, "chunks")
    hits = lite.c.search("chunks_backup", data=[doc_rows(1, seed=5)[0]["vec"]], limit=3, anns_field="vec")
    assert len(hits[0]) == 3


def test_an_existing_collection_of_another_schema_is_refused(lite):
    bare(lite, "docs")
    other = [dict(f, dim=4) if f["name"] == "vec" else f for f in DOCS_FIELDS]
    [op] = record(lite, lambda op: op.vectors.create_collection("docs", fields=other))
    ctx = StepContext(store=lite, op=op)
    try:
        lite.apply(op, ctx)
    except Exception as e:  # noqa: BLE001 - the message is what is checked
        assert "already exists with another schema" in str(e)
    else:
        raise AssertionError("created over a collection of another schema")
    assert lite.collection_state("docs").fields["vec"]["dim"] == 8
