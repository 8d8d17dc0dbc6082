"""The one-pass forms of ``rename_field`` and ``add_field(default=)`` (issue
19), and runs journaled by the previous release, which used the two-pass
forms: ``rename_field`` by ``$rename`` unless ``keep_order=True``, after a
read that stops at the first clash; ``add_field(default=)`` records "no
document had the field" instead of the ids, and its inverse then unsets the
field where the filter matches, keeping other values in the trash."""
from __future__ import annotations

import pytest

from ragrev.errors import StepFailed
from ragrev.ops import document as m
from ragrev.ops import sha256_json
from tests.helpers.mongo import Crash, Journal, raw_docs, run_inverse, run_op, sample_docs


@pytest.fixture
def docs(store, db):
    db.create_collection("docs")
    db.docs.insert_many(sample_docs())
    return db.docs


def by_id(coll) -> dict:
    """Documents by _id, field order ignored (values and BSON types exact)."""
    return {repr(d["_id"]): sorted((k, repr(v), type(v).__name__) for k, v in d.items()) for d in coll.find()}


# --- rename_field -------------------------------------------------------------------------------

def test_rename_moves_the_field_last_like_rename_and_the_round_trip_keeps_every_value(store, db, docs):
    before, raw = by_id(docs), raw_docs(docs)
    op = m.RenameField("docs", "title", "heading")
    rows, captured = run_op(store, op)
    assert rows == 32 and captured["keep_order"] is False
    assert list(docs.find_one({"_id": 3}))[-1] == "heading" and docs.count_documents({"title": {"$exists": True}}) == 0
    (inverse,) = op.reverse(captured)
    assert inverse.keep_order is False
    run_inverse(store, op, captured)
    assert by_id(docs) == before and raw_docs(docs) != raw  # the title now last


def test_rename_keep_order_round_trip_is_byte_exact(store, db, docs):
    raw = raw_docs(docs)
    op = m.RenameField("docs", "title", "heading", keep_order=True)
    rows, captured = run_op(store, op)
    assert list(docs.find_one({"_id": 3}))[:2] == ["_id", "heading"] and captured["keep_order"] is True
    run_inverse(store, op, captured)
    assert raw_docs(docs) == raw


@pytest.mark.parametrize("keep_order", [False, True])
def test_rename_clash_is_one_error_and_nothing_is_lost(store, db, docs, keep_order):
    docs.update_one({"_id": 29}, {"$set": {"heading": "mine"}})
    raw = raw_docs(docs)
    journal = Journal()
    with pytest.raises(StepFailed, match=r"1 document\(s\) have both 'title' and 'heading' \(e.g. _id 29\); "
                                         r"nothing changed"):
        run_op(store, m.RenameField("docs", "title", "heading", keep_order=keep_order), journal)
    assert raw_docs(docs) == raw
    assert journal.captured == {}  # nothing recorded: a failed step with nothing written gets no inverse


def test_a_rename_journaled_by_the_previous_release_is_undone_in_its_order_keeping_form(store, db, docs):
    raw = raw_docs(docs)
    op = m.RenameField("docs", "title", "heading", keep_order=True)  # what the previous release ran
    run_op(store, op)
    (inverse,) = op.reverse({})  # it captured nothing
    assert inverse.keep_order is True
    run_op(store, inverse)
    assert raw_docs(docs) == raw
    # and the revision it applied keeps its checksum: the former normalized form has no keep_order
    before = {"store": "docs", "op": "rename_field", "params": {"collection": "docs", "field": "title",
                                                               "new_name": "heading"}}
    for keep in (False, True):
        new = m.RenameField("docs", "title", "heading", keep_order=keep)
        new.store = "docs"
        assert new.former_normalized() == before
        assert sha256_json(before)[:16] in new.digests()


def test_a_rename_resumed_after_a_kill_keeps_the_journaled_form(store, db, docs):
    op = m.RenameField("docs", "title", "heading")
    journal = Journal()
    journal.token, journal.captured = {"keep_order": True}, {"keep_order": True}  # killed during its update
    docs.update_many({"_id": {"$lt": 10}}, [{"$replaceWith": {"$arrayToObject": {"$map": {
        "input": {"$objectToArray": "$$ROOT"},
        "in": {"k": {"$cond": [{"$eq": ["$$this.k", "title"]}, "heading", "$$this.k"]}, "v": "$$this.v"}}}}}])
    rows, captured = run_op(store, op, journal)
    assert captured["keep_order"] is True and list(docs.find_one({"_id": 20}))[:2] == ["_id", "heading"]
    assert docs.count_documents({"title": {"$exists": True}}) == 0 and rows == 22
    # a rerun without a token (started by the previous release): the order-keeping form too
    journal = Journal()
    journal.captured = {}
    rows, captured = run_op(store, m.RenameField("docs", "heading", "title"), journal, resuming=True)
    assert captured["keep_order"] is True and list(docs.find_one({"_id": 20}))[:2] == ["_id", "title"]


# --- add_field(default=) ------------------------------------------------------------------------

def test_add_default_when_no_document_has_the_field_records_no_ids(store, db, docs):
    raw = raw_docs(docs)
    op = m.AddField("docs", "seen", default=False, filter={"n": {"$gte": 20}})
    rows, captured = run_op(store, op)
    assert rows == 10 and captured["shape"] == "all"
    assert db[captured["trash"]].count_documents({}) == 0  # no ids recorded
    run_inverse(store, op, captured)
    assert raw_docs(docs) == raw


def test_add_default_inverse_keeps_values_written_since_and_leaves_documents_outside_the_filter(store, db, docs):
    op = m.AddField("docs", "seen", default=False, filter={"n": {"$gte": 20}})
    rows, captured = run_op(store, op)
    # the application writes after the upgrade
    docs.update_one({"_id": 21}, {"$set": {"seen": True}})
    docs.update_one({"_id": 22}, {"$set": {"seen": 0}})  # equal to False in comparisons, another type
    docs.update_one({"_id": 3}, {"$set": {"seen": "outside the filter"}})
    docs.insert_one({"_id": 100, "n": 100, "seen": False})
    (inverse,) = op.reverse(captured)
    assert inverse.default is False and inverse.filter == {"n": {"$gte": 20}}
    run_op(store, inverse)
    assert docs.count_documents({"seen": {"$exists": True}}) == 1 and docs.find_one({"_id": 3})["seen"]
    kept = {d["_id"]: d["v"] for d in db[captured["trash"]].find()}
    assert kept == {21: True, 22: 0} and type(kept[22]) is int
    run_op(store, inverse)  # rerun (killed, or run twice): nothing more, nothing lost
    assert {d["_id"]: d["v"] for d in db[captured["trash"]].find()} == kept


def test_add_default_with_some_documents_having_the_field_records_the_ids(store, db, docs):
    raw = raw_docs(docs)
    op = m.AddField("docs", "lang", default="en")
    rows, captured = run_op(store, op)
    assert rows == 25 and captured["shape"] == "ids" and db[captured["trash"]].count_documents({}) == 25
    (inverse,) = op.reverse(captured)
    assert inverse.default is m.MISSING
    run_op(store, inverse)
    assert raw_docs(docs) == raw


@pytest.mark.parametrize("field, shape", [("seen", "all"), ("lang", "ids")])
@pytest.mark.parametrize("crash_points", [[1], [2], [2, 1]])
def test_add_default_resumed_after_a_kill_is_undone_exactly(store, db, docs, field, shape, crash_points):
    raw = raw_docs(docs)
    op = m.AddField("docs", field, default="en")
    journal = Journal()
    for n in crash_points:
        with pytest.raises(Crash):
            run_op(store, op, journal, crash_at=n)
    rows, captured = run_op(store, op, journal)
    assert captured["shape"] == shape and docs.count_documents({field: {"$exists": False}}) == 0
    run_inverse(store, op, captured)
    assert raw_docs(docs) == raw


def test_add_default_journaled_by_the_previous_release_resumes_and_undoes_by_ids(store, db, docs):
    raw = raw_docs(docs)
    op = m.AddField("docs", "seen", default=False)
    journal = Journal()
    with pytest.raises(Crash):
        run_op(store, op, journal, crash_at=2)
    trash = journal.token["trash"]
    # as the previous release left it: ids recorded ($out), phase 1, token and captured without the new shape
    docs.aggregate([{"$project": {"_id": 1}}, {"$out": trash}])
    journal.token, journal.captured = {"trash": trash, "phase": 1}, {"trash": trash, "shape": "ids"}
    rows, captured = run_op(store, op, journal)
    assert captured["shape"] == "ids" and rows == 32
    (inverse,) = op.reverse(captured)
    assert inverse.default is m.MISSING
    run_op(store, inverse)
    assert raw_docs(docs) == raw


@pytest.mark.parametrize("keep_order", [False, True])
def test_rename_inside_objects_leaves_documents_with_an_array_on_the_way_alone(store, db, docs, keep_order):
    docs.insert_one({"_id": 200, "body": [{"text": "in an array"}, {"text": "too"}]})
    rows, _ = run_op(store, m.RenameField("docs", "body.text", "body.plain", keep_order=keep_order))
    assert docs.find_one({"_id": 200})["body"] == [{"text": "in an array"}, {"text": "too"}]
    assert docs.find_one({"_id": 4})["body"]["plain"] == "xxxx" and "text" not in docs.find_one({"_id": 4})["body"]
