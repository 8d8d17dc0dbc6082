"""Fencing on MongoDB (issue 12, part 1): a runner paused (SIGSTOP) past its
lease while it transforms documents must not write again once continued
(SIGCONT) after another runner took the lease over. Before the fix, the
paused runner went on with its batches: documents ended transformed twice
(n+2) and both runners exited 0."""
from __future__ import annotations

import pytest

from tests.helpers.mongo import current
from tests.reliability.fencing import check_outcome, pause_past_lease

BUMP = """\
import time


def bump(doc):
    time.sleep({delay})
    doc["n"] = doc["n"] + 1
    return doc


def upgrade(op):
    op.docs.transform("documents", bump, batch_size={batch})
"""


def project(mongo_project, docs=600, delay=0.004, batch=20, lease="2s"):
    p = mongo_project()
    p.set_options(lock_lease=lease, lock_timeout="60s")
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('documents')\n")
    p.add("r2", "r1", BUMP.format(delay=delay, batch=batch))
    return p


def owner_pid(db):
    try:
        doc = db.ragrev_lock.find_one({"_id": "lock"}) or {}
    except Exception:
        return None
    owner = doc.get("owner") or ""
    pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
    return int(pid) if pid.isdigit() else None


@pytest.mark.slow
@pytest.mark.parametrize("cont_while_b_runs", [True, False], ids=["cont-during-b", "cont-after-b"])
def test_a_runner_paused_past_its_lease_stops_and_each_document_is_transformed_once(mongo_project, db, cont_while_b_runs):
    p = project(mongo_project)
    p.cli("upgrade", "r1", "-q")
    db.documents.insert_many([{"_id": i, "n": i} for i in range(600)])

    def changed():
        return db.documents.count_documents({"$expr": {"$ne": ["$n", "$_id"]}})

    result = pause_past_lease(p.config, lambda: changed() >= 100, lambda: owner_pid(db), lease=2.0,
                              cont_while_b_runs=cont_while_b_runs, b_progressed=lambda: changed() >= 200)
    wrong = db.documents.count_documents({"$expr": {"$ne": ["$n", {"$add": ["$_id", 1]}]}})
    assert wrong == 0, f"{wrong} documents not at n+1; runners: {result}"
    check_outcome(result)
    assert current(db) == ("r2",)
