"""``ragrev repair`` (issue 12 part 4), on real stores: a SQLite store and
an embedded SecantusDB.

1. A revision applies in its first store and fails in its second; the
   author fixes the file. Every plain ``upgrade`` then refuses ("edited
   after it was applied") until ``repair`` accepts the edit where it was
   applied (new checksum recorded, the old one kept in a ``repair`` record)
   and forgets the failed run; then plain ``upgrade head`` and ``downgrade
   base`` work.
2. A failed revision that never applied anywhere is deleted: ``current``
   shows it (no KeyError), ``downgrade`` works, ``repair`` forgets its run.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("secantus")

@pytest.fixture
def project(make_project, tmp_path):
    return make_project({"meta": f"sqlite:///{tmp_path}/meta.db",
                         "docs": {"url": f"secantus:///{tmp_path}/docs", "database": "rag"}})


def _log(p, store="meta"):
    con = sqlite3.connect(p.stores["meta"].split("///", 1)[1])
    try:
        cols = [c[1] for c in con.execute("PRAGMA table_info(ragrev_log)")]
        return [dict(zip(cols, row)) for row in con.execute("SELECT * FROM ragrev_log ORDER BY seq")]
    finally:
        con.close()


def test_repair_accepts_an_edited_revision_where_it_applied_and_forgets_failed_runs(project):
    p = project
    p.add("r0", None, '''
        def upgrade(op):
            op.meta.create_table("base_t", sa.Column("id", sa.Integer, primary_key=True))
            op.docs.create_collection("notes")
    ''')
    p.add("r1", "r0", '''
        def upgrade(op):
            op.meta.add_column("base_t", sa.Column("x", sa.Integer))
            op.docs.expect_count("notes", count=5)
    ''')
    p.cli("upgrade", "head", "-q", expect=1)
    # the author fixes the file: r1 applied in meta, failed in docs
    p.add("r1", "r0", '''
        def upgrade(op):
            op.meta.add_column("base_t", sa.Column("x", sa.Integer))
            op.docs.expect_count("notes", count=0)
    ''')
    for _ in range(2):
        r = p.cli("upgrade", "head", "-q", expect=1)
        assert "edited after it was applied" in r.output and "ragrev repair" in r.output
    r = p.cli("repair")
    assert "meta: accepted the edited revision r1" in r.output, r.output
    assert "docs: forgot the failed up run of the edited revision r1" in r.output, r.output
    repairs = [rec for rec in _log(p) if rec["type"] == "repair"]
    assert len(repairs) == 1 and repairs[0]["error"] and repairs[0]["checksum"] != repairs[0]["error"]
    assert "Nothing to repair" in p.cli("repair").output
    p.cli("upgrade", "head", "-q")
    rows = {r["store"]: r for r in json.loads(p.cli("current", "--json").output)["stores"]}
    assert rows["meta"]["heads"] == ["r1"] and rows["docs"]["heads"] == ["r1"]
    assert all(not r["notes"] for r in rows.values()), rows
    p.cli("downgrade", "base", "-q")
    con = sqlite3.connect(p.stores["meta"].split("///", 1)[1])
    assert [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not t.startswith("ragrev_")] == []


def test_a_deleted_failed_revision_does_not_break_current_or_downgrade(project):
    p = project
    p.add("r0", None, '''
        def upgrade(op):
            op.meta.create_table("base_t", sa.Column("id", sa.Integer, primary_key=True))
            op.docs.create_collection("notes")
    ''')
    path = p.add("r1", "r0", '''
        def upgrade(op):
            op.docs.expect_count("notes", count=5)
    ''')
    p.cli("upgrade", "head", "-q", expect=1)
    path.unlink()
    r = p.cli("current")  # KeyError before the fix
    assert "r1" in r.output and "ragrev repair" in r.output, r.output
    p.cli("upgrade", "head", "-q")
    p.cli("downgrade", "base", "-q")  # exit 2 "no such revision" before the fix
    p.cli("upgrade", "head", "-q")
    r = p.cli("repair")
    assert "docs: forgot the failed up run of r1, whose file no longer exists" in r.output, r.output
    assert "r1" not in p.cli("current").output
