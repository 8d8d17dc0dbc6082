"""A failed step leaves nothing behind (issue 12, part 3), MongoDB: what a
data operation wrote before it failed is recorded as it is written, so the
revision's revert removes exactly it. Before the fix an ``insert_many`` whose
generator raised after 150 documents left them in the collection; the
``downgrade`` reported success and kept them (450 documents instead of 300)."""
from __future__ import annotations

import pytest

from tests.helpers.mongo import current

FAILING = {
    "insert_many": """
def docs():
    for i in range(150):
        yield {"_id": 1000 + i, "n": i}
    raise RuntimeError("source went away")


def upgrade(op):
    op.docs.insert("items", docs, batch_size=100)
""",
    "insert_many, SystemExit": """
def docs():
    for i in range(150):
        yield {"_id": 1000 + i, "n": i}
    raise SystemExit(0)


def upgrade(op):
    op.docs.insert("items", docs, batch_size=100)
""",
    "add_field": """
def value(doc):
    if doc["_id"] >= 150:
        raise RuntimeError("no value")
    return doc["_id"] * 2


def upgrade(op):
    op.docs.add_field("items", "double", fill=value, batch_size=100)
""",
    "transform": """
def bump(doc):
    if doc["_id"] >= 150:
        raise RuntimeError("bad document")
    return {**doc, "n": doc["n"] + 1}


def unbump(doc):
    return {**doc, "n": doc["n"] - 1}


def upgrade(op):
    op.docs.transform("items", bump, inverse=unbump, batch_size=100)
""",
}


def snapshot(db):
    return sorted((d["_id"], sorted(d.items())) for d in db.items.find())


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_the_revert_of_a_failed_revision_removes_what_its_failed_step_wrote(mongo_project, db, kind):
    p = mongo_project()
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('items')\n"
                      "    op.docs.insert('items', [{'_id': i, 'n': i} for i in range(300)])\n")
    p.add("r2", "r1", FAILING[kind])
    p.cli("upgrade", "r1", "-q")
    before = snapshot(db)
    result = p.cli("upgrade", "head", "-q", expect=1)
    assert "revision r2 failed" in result.output
    assert snapshot(db) != before  # the step wrote part of its work, then failed
    p.cli("downgrade", "r1", "-q")
    assert snapshot(db) == before
    assert current(db) == ("r1",)
    # the revision, fixed, applies whole and reverts whole
    p.add("r2", "r1", FAILING[kind].replace("raise RuntimeError", "pass  #").replace("raise SystemExit", "pass  #"))
    p.cli("upgrade", "head", "-q")
    p.cli("downgrade", "r1", "-q")
    assert snapshot(db) == before


def test_system_exit_in_upgrade_is_a_failed_revision(mongo_project, db):
    p = mongo_project()
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('items')\n    raise SystemExit(0)\n")
    result = p.cli("upgrade", "head", "-q", expect=1)
    assert "r1" in result.output and "SystemExit" in result.output
    assert current(db) == () and "items" not in db.list_collection_names()
