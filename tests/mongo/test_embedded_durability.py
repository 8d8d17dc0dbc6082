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


def test_a_soft_drop_moves_the_whole_collection_and_back(make_project):
    """On an embedded store run by this process, a collection's rename into
    the trash and back is one storage transaction (SecantusDB moves each
    document; see ragrev.drivers.mongo.secantus.rename_here): every
    document, the index and the validator arrive."""
    p = make_project({"docs": {"url": "secantus:///./var/docs", "database": "rag"}})
    p.add("d1", None, '''
        def upgrade(op):
            op.docs.create_collection("notes", schema={"required": ["title"]})
            op.docs.create_index("notes", "title")
            op.docs.insert("notes", rows=[{"_id": i, "title": f"note {i}"} for i in range(2500)], batch_size=1000)
    ''')
    p.add("d2", "d1", '''
        def upgrade(op):
            op.docs.drop_collection("notes")
    ''')
    p.cli("upgrade", "head", "-q")
    with mongo_database(p.root / "var" / "docs", "rag") as db:
        names = db.list_collection_names()
        trash = [n for n in names if n.startswith("ragrev_trash_") and n.endswith("notes")]
        assert "notes" not in names and len(trash) == 1
        assert db[trash[0]].count_documents({}) == 2500 and "title_1" in db[trash[0]].index_information()
    p.cli("downgrade", "d1", "-q")
    with mongo_database(p.root / "var" / "docs", "rag") as db:
        assert trash[0] not in db.list_collection_names()
        assert sorted(d["_id"] for d in db.notes.find()) == list(range(2500))
        assert "title_1" in db.notes.index_information()
        assert db.command("listCollections", filter={"name": "notes"})["cursor"]["firstBatch"][0]["options"]["validator"]
