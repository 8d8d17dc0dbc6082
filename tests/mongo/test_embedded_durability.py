"""What an embedded SecantusDB acknowledged survives a SIGKILL of the ragrev
process that runs it (found by the reliability harness, issue 9: a runner
killed just after stamping its SQL store had lost the MongoDB store's step
record, stamp and run record written a moment before — WiredTiger's log was
not written out on commit — so the MongoDB store looked half-applied).
The embedded server syncs its log on every commit."""
from __future__ import annotations

import signal

from tests.reliability.hashes import mongo_database


def test_writes_acknowledged_before_a_sigkill_are_kept(make_project):
    p = make_project({"docs": {"url": "secantus:///./var/docs", "database": "rag"},
                      "meta": "sqlite:///./var/meta.db"})
    p.add("d1", None, '''
        def upgrade(op):
            op.docs.create_collection("notes")
            op.docs.create_index("notes", "title")
            op.meta.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
    ''')
    # docs runs first and is stamped (stamp 1); the kill comes at the SQL store's stamp (stamp 2)
    proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": "stamp=2"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    with mongo_database(p.root / "var" / "docs", "rag") as db:
        assert db.ragrev_version.find_one({"_id": "heads"})["heads"] == ["d1"]
        steps = list(db.ragrev_log.find({"type": "step"}))
        runs = list(db.ragrev_log.find({"type": "run"}))
        assert [s["outcome"] for s in steps] == ["done", "done"] and [r["outcome"] for r in runs] == ["done"]
        assert "title_1" in db.notes.index_information()
