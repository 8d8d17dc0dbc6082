"""``insert`` (formerly ``insert_many``): documents from a list or a generator, batched and
checkpointed; a rerun after a crash anywhere never duplicates a document;
documents that were there before (same ``_id``, same content) are left alone
and survive the inverse, which deletes exactly what the step inserted."""
from __future__ import annotations

import datetime as dt

import pytest
from bson import Int64, ObjectId

from ragrev.errors import OperationError, StepFailed
from ragrev.ops import document as m
from tests.helpers.mongo import Crash, Journal, raw_docs, run_inverse, run_op
from tests.helpers.mongo import V1


def articles(n: int = 23, with_ids: bool = True):
    """A deterministic stream of documents (a generator: called again on resume)."""
    def gen():
        for i in range(n):
            doc = {"title": f"article {i}", "n": Int64(i), "when": dt.datetime(2025, 1, 1) + dt.timedelta(hours=i),
                   "tags": ["rag", "x" * (i % 4)], "meta": {"k": i, "even": i % 2 == 0}}
            yield {"_id": i, **doc} if with_ids else doc
    return gen


@pytest.fixture
def coll(store, db):
    run_op(store, m.CreateCollection("articles", V1))
    return db.articles


def test_list_in_batches_and_inverse_deletes_exactly_what_was_inserted(store, db, coll):
    coll.insert_many([{"_id": 3, "title": "article 3", "n": Int64(3), "when": dt.datetime(2025, 1, 1, 3),
                       "tags": ["rag", "xxx"], "meta": {"even": False, "k": 3}},      # same content, other key order
                      {"_id": "kept", "title": "someone else's"}])
    before = raw_docs(coll)
    op = m.Insert("articles", list(articles()()), batch_size=5)
    rows, captured = run_op(store, op)
    assert rows == 22 and coll.count_documents({}) == 24
    assert coll.find_one({"_id": 7})["meta"] == {"k": 7, "even": False}
    trash = db[captured["trash"]]
    assert trash.count_documents({}) == 5                       # one record per batch
    assert sorted(i for r in trash.find() for i in r["ids"]) == [i for i in range(23) if i != 3]
    run_inverse(store, op, captured)
    assert raw_docs(coll) == before                              # the document that was there stays, byte for byte


def test_generator_without_ids_gets_the_same_ids_on_every_rerun(store, db, coll):
    op = m.Insert("articles", articles(23, with_ids=False), batch_size=4)
    journal = Journal()
    for n in (3, 2, 2):                       # crash after a batch was written, before its checkpoint was saved
        with pytest.raises(Crash):
            run_op(store, op, journal, crash_at=n)
    rows, captured = run_op(store, op, journal)
    assert coll.count_documents({}) == 23 and rows == 23
    assert sorted(d["n"] for d in coll.find()) == list(range(23))
    assert all(isinstance(d["_id"], ObjectId) for d in coll.find())
    run_inverse(store, op, captured)
    assert coll.count_documents({}) == 0


def test_batch_recorded_but_not_written_is_written_on_the_rerun(store, db, coll):
    op = m.Insert("articles", articles(), batch_size=10)
    journal = Journal()
    with pytest.raises(Crash):
        run_op(store, op, journal, crash_at=3)         # batch 2 written, its checkpoint lost
    coll.delete_many({"_id": {"$gte": 14}})            # as if the crash had come between record and write
    rows, captured = run_op(store, op, journal)
    assert sorted(d["_id"] for d in coll.find()) == list(range(23))
    run_inverse(store, op, captured)
    assert coll.count_documents({}) == 0


def test_rerun_after_it_finished_inserts_nothing(store, db, coll):
    op = m.Insert("articles", articles(), batch_size=10)
    journal = Journal()
    run_op(store, op, journal)
    before = raw_docs(coll)
    rows, _ = run_op(store, op, journal, resuming=True)   # done, but the runner did not record it
    assert raw_docs(coll) == before and rows == 23


def test_an_id_taken_by_other_content_fails_the_batch_and_writes_none_of_it(store, db, coll):
    coll.insert_one({"_id": 12, "title": "not the same"})
    op = m.Insert("articles", articles(), batch_size=10)
    with pytest.raises(StepFailed, match=r"1 document\(s\) have the _id of another document.*_id 12"):
        run_op(store, op)
    assert sorted(d["_id"] for d in coll.find()) == list(range(10)) + [12]   # batch 1 done, batch 2 untouched


def test_repeated_id_in_the_stream_with_other_content_fails(store, coll):
    docs = [{"_id": 1, "title": "a"}, {"_id": 1, "title": "a"}, {"_id": 2, "title": "b"}, {"_id": 2, "title": "c"}]
    with pytest.raises(StepFailed, match="_id 2"):
        run_op(store, m.Insert("articles", docs))


def test_schema_violations_fail_with_the_document_named(store, coll):
    with pytest.raises(StepFailed, match=r"insert\(s\) failed, first: _id 'bad'"):
        run_op(store, m.Insert("articles", [{"_id": "ok", "title": "t"}, {"_id": "bad", "title": 5}]))


def test_arguments_are_checked_when_the_revision_is_read():
    with pytest.raises(OperationError, match="documents must be dicts"):
        m.Insert("articles", [{"a": 1}, 3]).validate()
    with pytest.raises(OperationError, match="a list of dicts or a function"):
        m.Insert("articles", "nope").validate()
    with pytest.raises(OperationError, match="batch_size"):
        m.Insert("articles", [], batch_size=0).validate()
    assert m.Insert("articles", articles(), batch_size=7).describe() == "insert('articles', gen(), batch_size=7)"


@pytest.mark.slow
def test_through_the_cli_with_a_derived_downgrade_and_a_plan(mongo_project, db):
    p = mongo_project()
    p.add("r1", None, f"""
        def upgrade(op):
            op.docs.create_collection("articles", schema={V1!r})
        """)
    p.add("r2", "r1", """
        def rows():
            for i in range(2500):
                yield {"_id": i, "title": f"article {i}"}

        def upgrade(op):
            op.docs.insert("articles", [{"_id": "first", "title": "hello"}])
            op.docs.insert("articles", rows, batch_size=1000)
            op.docs.expect_count("articles", 2501)
        """)
    p.cli("upgrade", "r1", "-q")
    plan = p.cli("upgrade", "head", "--plan").output
    assert "insert('articles', 1 document, batch_size=1000)" in plan and "insert('articles', rows(), batch_size=1000)" in plan
    p.cli("upgrade", "head", "-q")
    assert db.articles.count_documents({}) == 2501
    p.cli("downgrade", "r1", "-q")
    assert db.articles.count_documents({}) == 0
    p.cli("upgrade", "head", "-q")
    assert db.articles.count_documents({}) == 2501


def test_generated_ids_are_recorded_as_stream_positions_and_deleted_exactly(store, db, coll):
    coll.insert_one({"_id": "kept", "title": "someone else's"})
    before = raw_docs(coll)
    stream = list(articles(23, with_ids=False)())
    stream[5] = {"_id": "given", **stream[5]}                   # batch 2 mixes a given _id with generated ones
    op = m.Insert("articles", stream, batch_size=4)
    journal = Journal()
    with pytest.raises(Crash):
        run_op(store, op, journal, crash_at=4)                 # batch 3 written, its checkpoint lost
    rows, captured = run_op(store, op, journal)
    assert rows == 23 and coll.count_documents({}) == 24
    records = {r["_id"]: r for r in db[captured["trash"]].find()}
    assert records[1]["ids"] == [] and records[1]["gen"][1:] == [0, 4]     # no id list
    assert "gen" not in records[2] and "given" in records[2]["ids"] and len(records[2]["ids"]) == 4
    (inverse,) = op.reverse(captured)
    inverse.store = store.name
    assert store.estimate_rows(inverse) == 23
    run_inverse(store, op, captured)
    assert raw_docs(coll) == before


def test_a_generated_id_someone_else_took_is_not_ours_to_delete(store, db, coll):
    from ragrev.drivers.mongo.data import _id_maker
    op = m.Insert("articles", articles(8, with_ids=False), batch_size=4)
    journal = Journal()
    with pytest.raises(Crash):
        run_op(store, op, journal, crash_at=2)                 # the trash name and start time saved, nothing written
    taken = _id_maker(op, journal.token)(6)
    coll.insert_one({"_id": taken, "title": "a concurrent writer's"})
    with pytest.raises(StepFailed, match=r"1 insert\(s\) failed, first: _id ObjectId"):
        run_op(store, op, journal)
    (inverse,) = op.reverse_failed(journal.captured)
    run_op(store, inverse)
    assert list(coll.find({}, {"title": 1})) == [{"_id": taken, "title": "a concurrent writer's"}]
