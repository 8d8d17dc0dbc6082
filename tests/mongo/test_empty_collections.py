"""Data steps on a collection with nothing to change, then their derived
downgrade (found by the reliability harness, issue 9: ``add_field`` with a
default on an empty collection left no trash collection — SecantusDB's
``$out`` of no documents drops its target — so the downgrade refused:
"trash collection ... is gone (purged?)")."""
from __future__ import annotations

import pytest

from tests.helpers.mongo import indexes_of, raw_docs, validator_of

STEPS = {
    "add_field default": "op.docs.add_field('items', 'lang', default='en')",
    "add_field fn": "op.docs.add_field('items', 'lang', fill=lambda d: 'en')",
    "drop_field": "op.docs.drop_field('items', 'nope')",
    "rename_field": "op.docs.rename_field('items', 'nope', 'other')",
    "transform": "op.docs.transform('items', lambda d: d, inverse=lambda d: d)",
}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("docs", [0, 3], ids=["empty", "none-to-change"])
def test_a_step_that_changes_nothing_has_a_downgrade(mongo_project, db, step, docs):
    p = mongo_project()
    db.create_collection("items")
    if docs:
        db.items.insert_many([{"_id": i, "lang": "de"} if "lang" in STEPS[step] else {"_id": i} for i in range(docs)])
    before = (raw_docs(db.items), validator_of(db, "items"), indexes_of(db, "items"))
    p.add("e1", None, f"def upgrade(op):\n    {STEPS[step]}\n")
    p.cli("upgrade", "head", "-q")
    p.cli("downgrade", "base", "-q")
    assert (raw_docs(db.items), validator_of(db, "items"), indexes_of(db, "items")) == before
