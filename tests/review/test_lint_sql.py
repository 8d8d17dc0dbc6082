"""Lint reads raw SQL (``op.<sql store>.execute``) by parsing it with sqlglot
in the store's dialect (issue 16): destructive SQL written after a comment,
inside a CTE or as a later statement is seen; words inside literals,
comments and quoted identifiers are not."""
from __future__ import annotations

import json

import pytest

from ragrev.lint import classify_sql

# (sql, dialect, destroys, full_scan)
CASES = [
    ("-- tidy up\nDELETE FROM sources", "sqlite", True, True),
    ("WITH gone AS (DELETE FROM sources RETURNING id) SELECT count(*) FROM gone", "postgresql", True, True),
    ("SELECT 1; DROP TABLE sources", "sqlite", True, False),
    ("UPDATE sources SET note = 'where it was'", "sqlite", True, True),
    ("UPDATE sources SET note = 'x' WHERE id = 1", "postgresql", True, False),
    ("/* keep nothing */ TRUNCATE TABLE sources", "postgresql", True, False),
    ("ALTER TABLE sources DROP COLUMN note", "sqlite", True, False),
    ("DELETE FROM sources WHERE note = 'where'", "mysql", True, False),
    ("SELECT 1;\n-- then\nupdate sources set note = NULL", "sqlite", True, True),
    ("SELECT 'DELETE FROM sources'", "sqlite", False, False),
    ("INSERT INTO log (msg) VALUES ('drop table sources; update everything')", "postgresql", False, False),
    ("-- DELETE FROM sources\nSELECT 1", "sqlite", False, False),
    ('SELECT "delete", "update" FROM t', "postgresql", False, False),
    ("SELECT `drop` FROM t", "mysql", False, False),
    ("CREATE INDEX ix_note ON sources (note)", "sqlite", False, False),
    ("DROP INDEX ix_note", "sqlite", False, False),
    ("WITH recent AS (SELECT id FROM sources WHERE id > 3) SELECT * FROM recent", "postgresql", False, False),
    ("VACUUM", "postgresql", False, False),
]


@pytest.mark.parametrize("sql,dialect,destroys,full", CASES, ids=[c[0][:40] for c in CASES])
def test_classify(sql, dialect, destroys, full):
    got = classify_sql(sql, dialect)
    assert (got.destroys, got.full_scan) == (destroys, full), got


def test_several_statements_are_each_named():
    assert classify_sql("SELECT 1; DROP TABLE sources; -- bye", "sqlite").statements == ("select", "drop table")


def test_check_flags_sql_the_old_patterns_missed(make_project, tmp_path):
    p = make_project({"meta": f"sqlite:///{tmp_path}/m.db"})
    p.add("r1", None, '''
        def upgrade(op):
            op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
            op.meta.execute("-- tidy up\\nDELETE FROM sources")
            op.meta.execute("SELECT 1; DROP TABLE sources")
            op.meta.execute("UPDATE sources SET note = 'where it was'")
            op.meta.execute("SELECT 'DELETE FROM sources'")

        def downgrade(op):
            op.meta.drop_table("sources")
        ''')
    p.cli("hash")
    data = json.loads(p.cli("check", "--json", expect=4).stdout)
    by_line = sorted((f["line"], f["rule"]) for f in data["findings"])
    first = next(i for i, ln in enumerate((p.revisions / "r1.py").read_text().splitlines(), 1) if "tidy up" in ln)
    assert by_line == [
        (first, "destructive-no-way-back"), (first, "unbatched-full-scan"),
        (first + 1, "destructive-no-way-back"),
        (first + 2, "destructive-no-way-back"), (first + 2, "unbatched-full-scan"),
    ], data["findings"]
