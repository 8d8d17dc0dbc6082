"""``downgrade`` straight after a killed ``upgrade`` (found by the reliability
harness, issue 9, ``--abandon``): the half-applied revision's completed steps
were reverted, but not the step the killed run was in the middle of — the
documents a half-done ``add_field(fn=)`` had changed, or all of those a
``drop_field`` killed before it was journaled had lost, stayed so. The
downgrade now first finishes that step (it resumes as any interrupted step
does), then reverts it with the others."""
from __future__ import annotations

import signal

import pytest

from tests.helpers.mongo import indexes_of, raw_docs, validator_of

REVISION = '''
def words(doc):
    return len(doc["body"].split())


def upgrade(op):
    op.docs.create_index("items", "body")
    op.docs.add_field("items", "words", fill=words, batch_size=50)
    op.docs.drop_field("items", "n")
'''


def state(db):
    return raw_docs(db.items), validator_of(db, "items"), indexes_of(db, "items")


@pytest.mark.parametrize("fault", ["checkpoint=3", "applied=2", "applied=3", "step=2"])
def test_downgrade_after_a_killed_upgrade_restores_everything(mongo_project, db, fault):
    p = mongo_project()
    p.set_options(lock_lease="1s", lock_timeout="20s")
    # six batches of add_field (batch_size=50): room for every kill point
    db.items.insert_many([{"_id": i, "body": "a b c"[: 1 + 2 * (i % 3)], "n": i} for i in range(300)])
    before = state(db)
    p.add("h1", None, REVISION)
    proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": fault})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert state(db) != before
    p.cli("downgrade", "base", "-q")
    assert state(db) == before
    assert "half" not in p.cli("current", "-v").output
    p.cli("upgrade", "head", "-q")
    assert db.items.count_documents({"words": {"$exists": True}, "n": {"$exists": False}}) == 300
