"""Steps interrupted and run again, as the runner reruns them after a crash:
``Crash`` is raised by the n-th checkpoint, i.e. after the step's writes and
before the runner could save its progress (the window a SIGKILL can hit);
the rerun gets the last checkpoint that was saved. No document may be
rewritten twice (a per-document counter), and the inverse must still restore
the collection exactly."""
from __future__ import annotations

import pytest

from ragrev.ops import document as m
from tests.helpers.mongo import Crash, Journal, raw_docs, run_inverse, run_op, validator_of
from tests.helpers.mongo import V1, V2, bump, sample_docs, unbump


@pytest.fixture
def docs(store, db):
    run_op(store, m.CreateCollection("docs", V1))
    db.docs.insert_many(sample_docs())
    return db.docs


def interrupted(store, op, crash_points):
    """Run ``op`` crashing at each of ``crash_points`` in turn, then to the end."""
    journal = Journal()
    for n in crash_points:
        with pytest.raises(Crash):
            run_op(store, op, journal, crash_at=n)
    rows, captured = run_op(store, op, journal)
    return rows, captured, journal


@pytest.mark.parametrize("crash_points", [[1], [2], [3, 2], [5, 1, 4], [2, 2, 2, 2]])
def test_transform_interrupted_anywhere_touches_every_document_once(store, db, docs, crash_points):
    before = raw_docs(docs)
    op = m.Transform("docs", bump, inverse=unbump, batch_size=4)
    rows, captured, journal = interrupted(store, op, crash_points)
    assert rows == 32
    assert docs.count_documents({"hits": 1}) == 32
    assert db[captured["trash"]].count_documents({"pending": {"$exists": True}}) == 0
    run_inverse(store, op, captured)
    assert raw_docs(docs) == before


def test_transform_inverse_interrupted_too(store, db, docs):
    before = raw_docs(docs)
    op = m.Transform("docs", bump, inverse=unbump, batch_size=5, filter={"draft": True})
    _, captured, _ = interrupted(store, op, [3])
    assert docs.count_documents({"hits": 1}) == 13
    (inverse,) = op.reverse(captured)
    interrupted(store, inverse, [2, 3])
    assert raw_docs(docs) == before


def test_transform_rerun_after_it_finished_changes_nothing(store, db, docs):
    op = m.Transform("docs", bump, batch_size=6)
    journal = Journal()
    run_op(store, op, journal)
    run_op(store, op, journal, resuming=True)  # done, but the runner did not record it
    assert docs.count_documents({"hits": 1}) == 32


def test_add_field_fn_interrupted(store, db, docs):
    before = raw_docs(docs)
    calls = []
    op = m.AddField("docs", "slug", fill=lambda d: calls.append(d["_id"]) or str(d["_id"]), batch_size=5)
    _, captured, _ = interrupted(store, op, [2, 4])
    assert docs.count_documents({"slug": {"$exists": True}}) == 32
    run_inverse(store, op, captured)
    assert raw_docs(docs) == before


@pytest.mark.parametrize("op, crash_points", [
    (m.AddField("docs", "lang", default="en"), [1, 2]),
    (m.DropField("docs", "body"), [1, 2]),
    (m.SetSchema("docs", {"required": ["title"], "properties": {"n": {"bsonType": "long"}}}), [1]),
    (m.DropCollection("docs"), [1]),
])
def test_phased_steps_interrupted_and_rerun(store, db, docs, op, crash_points):
    before, validator = raw_docs(docs), validator_of(db, "docs")
    _, captured, journal = interrupted(store, op, crash_points)
    run_op(store, op, journal, resuming=True)  # finished but unrecorded: harmless
    run_inverse(store, op, captured)
    assert raw_docs(db.docs) == before and validator_of(db, "docs") == validator


@pytest.mark.parametrize("op", [
    m.RenameField("docs", "body", "content"),
    m.RenameCollection("docs", "documents"),
    m.CreateIndex("docs", "title"),
    m.UpdateMany("docs", {}, {"$set": {"x": 1}}, inverse=({}, {"$unset": {"x": ""}})),
    m.CreateCollection("other", V2),
])
def test_steps_rerun_after_they_finished_are_harmless(store, db, docs, op):
    journal = Journal()
    _, captured = run_op(store, op, journal)
    state = {n: raw_docs(db[n]) for n in store.user_collections()}
    run_op(store, op, journal, resuming=True)
    assert {n: raw_docs(db[n]) for n in store.user_collections()} == state


@pytest.mark.parametrize("crash_points", [[1], [3], [4, 2]])
def test_transform_over_mixed_id_types_resumes_across_type_brackets(store, db, crash_points):
    """One streaming cursor per run, reopened after the checkpointed key on a
    rerun: a key's ``$gt`` ends with its BSON type (numbers, strings,
    ObjectIds...), so the later types must still follow, each document once."""
    from bson import ObjectId

    run_op(store, m.CreateCollection("mixed"))
    ids = [1, 2, 3.5, "a", "b", ObjectId(), ObjectId(), 7, "c"]
    db.mixed.insert_many([{"_id": i, "v": k} for k, i in enumerate(ids)])
    before = raw_docs(db.mixed)
    op = m.Transform("mixed", bump, inverse=unbump, batch_size=2)
    rows, captured, journal = interrupted(store, op, crash_points)
    assert rows == len(ids) and db.mixed.count_documents({"hits": 1}) == len(ids)
    run_inverse(store, op, captured)
    assert raw_docs(db.mixed) == before
