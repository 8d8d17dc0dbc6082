"""Preflight on MongoDB as a simulation: each document operation's
``simulate`` over the store's collections (their validators and indexes),
before anything changes. Beyond missing collections and indexes
(tests/mongo/test_store.py): writes the validator would refuse, filters the
server refuses, trash collections that are gone, and the rule for a step
that was interrupted (it may have done its work: the state is read again)."""
from __future__ import annotations

import pytest

from ragrev.errors import OperationError
from ragrev.ops import document as m

SCHEMA = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
          "additionalProperties": False}


def ops(*items):
    for i, op in enumerate(items, 1):
        op.store, op.location = "docs", ("revisions/a1.py", 10 + i)
        op.validate()
    return list(items)


def test_writes_the_validator_refuses_fail_before_anything_changes(store, db):
    db.create_collection("docs", validator={"$jsonSchema": {"bsonType": "object", "required": ["title"],
                                                            "properties": {"_id": {}, "title": {}, "n": {}},
                                                            "additionalProperties": False}})
    db.docs.insert_one({"_id": 1, "title": "t", "n": 1})
    before = list(db.docs.find())
    with pytest.raises(OperationError, match=r"a1.py:11: drop_field: the validator of 'docs' requires 'title'"):
        store.preflight(ops(m.DropField("docs", "title")))
    with pytest.raises(OperationError, match=r"a1.py:11: rename_field: the validator of 'docs' requires 'title'"):
        store.preflight(ops(m.RenameField("docs", "title", "name")))
    with pytest.raises(OperationError, match=r"a1.py:11: add_field: the validator of 'docs' allows no field 'lang'"):
        store.preflight(ops(m.AddField("docs", "lang", default="en")))
    # a schema set earlier in the run counts; so does a validator removed, or one that only warns
    store.preflight(ops(m.SetValidator("docs", None), m.DropField("docs", "title"), m.AddField("docs", "x", default=1)))
    store.preflight(ops(m.SetSchema("docs", SCHEMA, validation_action="warn"), m.DropField("docs", "title")))
    with pytest.raises(OperationError, match=r"a1.py:12: drop_field: the validator of 'new' requires 'title'"):
        store.preflight(ops(m.CreateCollection("new", SCHEMA), m.DropField("new", "title")))
    store.preflight(ops(m.DropField("docs", "n"), m.RenameField("docs", "n", "title")))  # n is allowed, not required
    assert list(db.docs.find()) == before


def test_a_filter_the_server_refuses_is_exit_2_before_the_run(store, db):
    db.docs.insert_many([{"_id": i} for i in range(3)])
    store.preflight(ops(m.UpdateMany("docs", {"n": {"$gt": 1}}, {"$set": {"x": 1}})))
    with pytest.raises(OperationError) as e:
        store.preflight(ops(m.UpdateMany("docs", {"n": {"$bogus": 1}}, {"$set": {"x": 1}})))
    assert str(e.value).startswith("revisions/a1.py:11: update_many: filter {'n': {'$bogus': 1}} on 'docs': ")
    assert e.value.exit_code == 2 and list(db.docs.find({"x": 1})) == []


def test_trash_collections_that_are_gone(store, db):
    db.docs.insert_one({"_id": 1})
    with pytest.raises(OperationError, match=r"a1.py:11: restore_field: trash collection 'ragrev_trash_1_x' is gone"):
        store.preflight(ops(m.RestoreField("docs", "f", "ragrev_trash_1_x")))
    with pytest.raises(OperationError, match=r"a1.py:11: restore_collection: trash collection 'ragrev_trash_1_y'"):
        store.preflight(ops(m.RestoreCollection("ragrev_trash_1_y", "docs2")))
    db.create_collection("ragrev_trash_1_y")
    store.preflight(ops(m.RestoreCollection("ragrev_trash_1_y", "docs2"), m.DropCollection("docs2")))
    with pytest.raises(OperationError, match=r"a1.py:11: restore_collection: collection 'docs' exists again"):
        store.preflight(ops(m.RestoreCollection("ragrev_trash_1_y", "docs")))


def test_an_interrupted_step_that_did_its_work_is_simulated_on_the_store_as_it_is(store, db):
    store.ensure_meta()
    db.docs.insert_one({"_id": 1})
    rename, after = ops(m.RenameCollection("docs", "d2"), m.AddField("d2", "x", default=1))
    db.docs.rename("d2")  # the rename ran, then the process was killed before it was journaled
    with pytest.raises(OperationError, match="has no collection 'docs'"):
        store.preflight([rename, after])
    db.ragrev_log.insert_one({"_id": "s1", "type": "step", "digest": rename.digest(), "outcome": None})
    store.preflight([rename, after])
    missing = ops(m.AddField("docs", "x", default=1))[0]
    with pytest.raises(OperationError, match="has no collection 'docs'"):
        store.preflight([rename, missing])


def test_aggregate_into_makes_its_collection(store, db):
    db.docs.insert_one({"_id": 1})
    store.preflight(ops(m.AggregateInto("docs", [{"$set": {"y": 1}}], "out"), m.CreateIndex("out", "y")))
    db.create_collection("other")
    with pytest.raises(OperationError, match=r"a1.py:11: aggregate_into: collection 'other' already exists"):
        store.preflight(ops(m.AggregateInto("docs", [{"$set": {"y": 1}}], "other")))


def test_filters_only_a_query_takes_are_left_to_the_step(store, db):
    db.docs.insert_one({"_id": 1, "t": "a"})
    store.preflight(ops(m.UpdateMany("docs", {"$where": "true"}, {"$set": {"x": 1}})))
