"""Issue 17 part 4: a MongoDB transform written as an aggregation pipeline
runs on the server (``$merge`` into a new collection); a rerun after a kill
is idempotent; the inverse soft-drops the new collection; the source is never
touched."""
from __future__ import annotations

import pytest

from ragrev.errors import OperationError
from ragrev.ops import document as m
from tests.helpers.mongo import Crash, Journal, raw_docs, run_inverse, run_op

PIPELINE = [{"$set": {"title_upper": {"$toUpper": "$title"}, "n2": {"$multiply": ["$n", 2]}}},
            {"$unset": "draft"}]


@pytest.fixture
def chunks(store, db):
    run_op(store, m.CreateCollection("chunks"))
    db.chunks.insert_many([{"_id": i, "title": f"chunk {i}", "n": i, "lang": "en" if i % 3 else "fr", "draft": True}
                           for i in range(500)])
    return raw_docs(db.chunks)


def test_pipeline_runs_into_a_new_collection_and_reverts(store, db, chunks):
    op = m.AggregateInto("chunks", PIPELINE, "chunks_v2", filter={"lang": "en"})
    rows, captured = run_op(store, op)
    assert rows == db.chunks.count_documents({"lang": "en"})
    docs = {d["_id"]: d for d in db.chunks_v2.find()}
    assert docs[1] == {"_id": 1, "title": "chunk 1", "n": 1, "lang": "en", "title_upper": "CHUNK 1", "n2": 2}
    assert 0 not in docs and 3 not in docs
    assert raw_docs(db.chunks) == chunks  # the source is untouched
    run_inverse(store, op, captured)
    assert "chunks_v2" not in db.list_collection_names()
    assert raw_docs(db.chunks) == chunks


def test_rerun_after_a_kill_is_idempotent(store, db, chunks):
    op = m.AggregateInto("chunks", PIPELINE, "chunks_v2")
    journal = Journal()
    with pytest.raises(Crash):  # the step dies at its last checkpoint, after the pipeline ran
        run_op(store, op, journal, crash_at=2)
    run_op(store, op, journal)
    assert db.chunks_v2.count_documents({}) == 500
    assert db.chunks_v2.find_one({"_id": 7}) == {"_id": 7, "title": "chunk 7", "n": 7, "lang": "en",
                                                 "title_upper": "CHUNK 7", "n2": 14}


def test_bad_pipelines_and_an_existing_target_fail_clearly(store, db, chunks):
    with pytest.raises(OperationError, match=r"leave \$merge out"):
        run_op(store, m.AggregateInto("chunks", [{"$merge": {"into": "x"}}], "chunks_v2"))
    with pytest.raises(OperationError, match="list of stages"):
        run_op(store, m.AggregateInto("chunks", {"$set": {}}, "chunks_v2"))
    db.chunks_v3.insert_one({"_id": 1})
    with pytest.raises(OperationError, match="already exists"):
        run_op(store, m.AggregateInto("chunks", PIPELINE, "chunks_v3"))
    assert db.chunks_v3.count_documents({}) == 1
