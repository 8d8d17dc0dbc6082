"""Document operations applied one by one (as the runner applies a step),
checking the documents, validators and indexes in the store, and that each
inverse restores them exactly (BSON bytes, so field order and types count)."""
from __future__ import annotations

import datetime as dt

import pytest
from bson import Int64

from ragrev.errors import CheckFailed, Irreversible, OperationError, StepFailed
from ragrev.ops import document as m
from tests.helpers.mongo import indexes_of, raw_docs, run_inverse, run_op, validator_of
from tests.helpers.mongo import V1, V2, sample_docs, bump, unbump


@pytest.fixture
def docs(store, db):
    run_op(store, m.CreateCollection("docs", V1))
    db.docs.insert_many(sample_docs())
    return db.docs


def test_chain_and_inverses_restore_documents_and_validators_exactly(store, db, docs):
    chain = [
        m.AddField("docs", "lang", default="en"),
        m.SetSchema("docs", V2),
        m.RenameField("docs", "body", "content", keep_order=True),
        m.RenameField("docs", "content.text", "content.plain", keep_order=True),
        m.DropField("docs", "draft"),
        m.DropField("docs", "content.meta"),
    ]
    states, done = [], []
    for op in chain:
        states.append((raw_docs(docs), validator_of(db, "docs")))
        done.append((op, run_op(store, op)[1]))
    after = docs.find_one({"_id": 3})
    assert list(after) == ["_id", "title", "content", "n", "score", "when", "blob", "price", "lang"]
    assert list(after["content"]) == ["plain", "tags"]
    assert docs.find_one({"_id": 5})["lang"] == "fr" and docs.count_documents({"lang": "en"}) == 26
    assert validator_of(db, "docs")["validator"]["$jsonSchema"]["required"] == ["title", "lang"]
    for (op, captured), (raw, validator) in zip(reversed(done), reversed(states)):
        run_inverse(store, op, captured)
        assert raw_docs(docs) == raw
        assert validator_of(db, "docs") == validator


def test_add_field_keeps_existing_values_and_inverse_removes_only_what_it_added(store, db, docs):
    before = raw_docs(docs)
    rows, captured = run_op(store, m.AddField("docs", "lang", default="en"))
    assert rows == 25
    assert docs.find_one({"_id": 10})["lang"] == "fr"
    trash = captured["trash"]
    assert trash.startswith("ragrev_trash_") and db[trash].count_documents({}) == 25
    docs.update_one({"_id": 10}, {"$set": {"lang": "fr"}})  # untouched by the inverse
    run_inverse(store, m.AddField("docs", "lang", default="en"), captured)
    assert raw_docs(docs) == before


def test_add_field_with_a_function_is_batched_and_reversible(store, db, docs):
    before = raw_docs(docs)
    op = m.AddField("docs", "slug", fill=lambda d: d["title"].replace(" ", "-"), batch_size=4)
    rows, captured = run_op(store, op)
    assert rows == 32 and docs.find_one({"_id": 7})["slug"] == "doc-7"
    assert docs.find_one({"_id": "a-string-id"})["slug"] == "s"
    run_inverse(store, op, captured)
    assert raw_docs(docs) == before


def test_add_field_filter_and_nested_path(store, db, docs):
    op = m.AddField("docs", "body.meta.seen", default=False, filter={"n": {"$gte": 20}})
    rows, captured = run_op(store, op)
    assert rows == 10 and docs.find_one({"_id": 25})["body"]["meta"] == {"k": 25, "seen": False}
    assert "seen" not in docs.find_one({"_id": 3})["body"]["meta"]


def test_drop_field_keeps_values_in_a_trash_collection_of_the_same_database(store, db, docs):
    values = {d["_id"]: d["body"] for d in docs.find({"body": {"$exists": True}}, {"body": 1})}
    rows, captured = run_op(store, m.DropField("docs", "body"))
    assert rows == 31 and docs.count_documents({"body": {"$exists": True}}) == 0
    kept = {d["_id"]: d["v"] for d in db[captured["trash"]].find()}
    assert kept == values
    assert captured["trash"] not in store.user_collections() and "docs" in store.user_collections()


def test_rename_field_onto_an_existing_field_fails_and_changes_nothing(store, db, docs):
    before = raw_docs(docs)
    with pytest.raises(StepFailed, match=r"7 document\(s\) have both 'lang' and 'title'.*_id 0, 5, 10"):
        run_op(store, m.RenameField("docs", "lang", "title"))
    assert raw_docs(docs) == before


def test_rename_field_across_objects(store, db, docs):
    before = raw_docs(docs)
    op = m.RenameField("docs", "body.meta.k", "key")
    run_op(store, op)
    assert docs.find_one({"_id": 4})["key"] == 4
    run_op(store, m.RenameField("docs", "key", "body.meta.k"))
    assert {d["_id"]: d["body"]["meta"].get("k") for d in docs.find({"body": {"$exists": True}})} == \
        {d["_id"]: d["body"]["meta"].get("k") for d in sample_docs() if "body" in d}
    assert len(raw_docs(docs)) == len(before)


def test_set_schema_with_violators_fails_with_count_and_ids_and_changes_nothing(store, db, docs):
    validator = validator_of(db, "docs")
    before = raw_docs(docs)
    with pytest.raises(StepFailed) as e:
        run_op(store, m.SetSchema("docs", V2))
    assert "25 existing document(s) violate the new schema (e.g. _id 1, 2, 3, 4, 6)" in str(e.value)
    assert "nothing changed" in str(e.value) and e.value.exit_code == 1
    assert validator_of(db, "docs") == validator and raw_docs(docs) == before


def test_set_schema_warn_sets_it_anyway_and_reports(store, db, docs):
    rows, captured = run_op(store, m.SetSchema("docs", V2, on_violation="warn", validation_level="moderate"))
    assert rows == 25 and captured["violators"] == 25
    assert validator_of(db, "docs")["validationLevel"] == "moderate"
    run_inverse(store, m.SetSchema("docs", V2), captured)
    assert validator_of(db, "docs")["validationLevel"] == "strict"


def test_set_schema_is_enforced_by_the_server(store, db, docs):
    run_op(store, m.AddField("docs", "lang", default="en"))
    run_op(store, m.SetSchema("docs", V2))
    with pytest.raises(Exception, match="validation"):
        docs.insert_one({"_id": 999, "title": "t", "lang": "de"})
    with pytest.raises(Exception, match="validation"):
        docs.insert_one({"_id": 998, "title": "t", "lang": "en", "n": 1.5})
    docs.insert_one({"_id": 997, "title": "t", "lang": "en", "n": Int64(2)})


def test_indexes_and_their_inverses(store, db, docs):
    base = indexes_of(db, "docs")
    create = m.CreateIndex("docs", [("title", 1), ("n", -1)], name="title_n", unique=True,
                           partialFilterExpression={"when": {"$gte": dt.datetime(2024, 1, 5)}})
    run_op(store, create)
    with_index = indexes_of(db, "docs")
    assert with_index["title_n"]["unique"] is True
    drop = m.DropIndex("docs", "title_n")
    _, captured = run_op(store, drop)
    assert indexes_of(db, "docs") == base
    run_inverse(store, drop, captured)
    assert indexes_of(db, "docs") == with_index
    run_inverse(store, create, {})
    assert indexes_of(db, "docs") == base


def test_collections_soft_drop_rename_and_inverses_keep_validator_and_indexes(store, db, docs):
    run_op(store, m.CreateIndex("docs", "title"))
    state = (raw_docs(docs), validator_of(db, "docs"), indexes_of(db, "docs"))
    rename = m.RenameCollection("docs", "documents")
    run_op(store, rename)
    assert store.user_collections() == ["documents"]
    assert validator_of(db, "documents") == state[1]  # SecantusDB alone would lose it
    drop = m.DropCollection("documents")
    _, captured = run_op(store, drop)
    assert store.user_collections() == [] and captured["trash"] in db.list_collection_names()
    run_inverse(store, drop, captured)
    run_inverse(store, rename, {})
    assert (raw_docs(db.docs), validator_of(db, "docs"), indexes_of(db, "docs")) == state


def test_create_collection_over_a_non_empty_one_is_refused(store, docs):
    with pytest.raises(OperationError, match="already exists with 32 documents"):
        run_op(store, m.CreateCollection("docs"))


def test_update_many_with_and_without_inverse(store, db, docs):
    before = raw_docs(docs)
    op = m.UpdateMany("docs", {"draft": True}, {"$set": {"status": "draft"}},
                      inverse=({"status": "draft"}, {"$unset": {"status": ""}}))
    rows, captured = run_op(store, op)
    assert rows == docs.count_documents({"status": "draft"}) == 13
    run_inverse(store, op, captured)
    assert raw_docs(docs) == before
    with pytest.raises(Irreversible):
        m.UpdateMany("docs", {}, {"$inc": {"n": 1}}).reverse({})


def test_transform_with_filter_and_its_inverse_touch_exactly_the_changed_documents(store, db, docs):
    before = raw_docs(docs)
    op = m.Transform("docs", bump, inverse=unbump, batch_size=3, filter={"draft": {"$exists": True}})
    rows, captured = run_op(store, op)
    assert rows == 27
    assert "hits" not in docs.find_one({"_id": 7}) and docs.find_one({"_id": 8})["hits"] == 1
    assert docs.count_documents({"hits": 1}) == 27
    run_inverse(store, op, captured)
    assert raw_docs(docs) == before


def test_transform_returning_none_leaves_documents_alone(store, db, docs):
    op = m.Transform("docs", lambda d: bump(d) if d.get("draft") else None, inverse=unbump, batch_size=5)
    rows, captured = run_op(store, op)
    assert docs.find_one({"_id": 2})["hits"] == 1 and "hits" not in docs.find_one({"_id": 3})
    changed = sum(len(b["ids"]) for b in db[captured["trash"]].find())
    assert changed == docs.count_documents({"hits": 1}) == 13


def test_transform_refuses_to_change_an_id(store, docs):
    with pytest.raises(StepFailed, match="fn changed _id"):
        run_op(store, m.Transform("docs", lambda d: {**d, "_id": "x"}))


def test_checks(store, db, docs):
    assert run_op(store, m.ExpectCount("docs", 32))[0] == 32
    run_op(store, m.ExpectCount("docs", filter={"draft": True}, at_least=1, at_most=20))
    with pytest.raises(CheckFailed, match=r"'docs': 32 documents, expected 31") as e:
        run_op(store, m.ExpectCount("docs", 31))
    assert e.value.exit_code == 1
    schema = {"type": "object", "required": ["title"],
              "properties": {"n": {"bsonType": "long"}, "when": {"bsonType": "date"}, "_id": {"bsonType": ["int", "string", "objectId"]}}}
    assert run_op(store, m.ValidateAll("docs", schema))[0] == 32
    with pytest.raises(CheckFailed, match=r"25 of 32 document\(s\) do not match.*_id 1, 2, 3.*lang"):
        run_op(store, m.ValidateAll("docs", {"required": ["lang"]}, sample=3))
    with pytest.raises(CheckFailed, match=r"1 of 1 document.*first: n: 5 is not of bsonType \['int'\]"):
        run_op(store, m.ValidateAll("docs", {"properties": {"n": {"bsonType": "int"}}}, filter={"_id": 5}))


def test_purge_drops_trash_older_than_asked(store, db, docs):
    _, captured = run_op(store, m.DropField("docs", "draft"))
    assert store.purge(older_than=3600) == []
    assert store.purge() == [captured["trash"]]
    assert not [n for n in db.list_collection_names() if n.startswith("ragrev_trash_")]
