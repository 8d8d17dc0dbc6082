"""Drift and autogenerate on PostgreSQL: the implied tables are replayed on
SQLite, so types are not compared across dialects; columns, nullability and
indexes are."""
from __future__ import annotations

import json

import sqlalchemy as sa

REV = '''
def upgrade(op):
    op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("name", sa.String(50), nullable=False), sa.Column("added_at", sa.DateTime),
                         sa.Column("tags", sa.JSON))
    op.meta.create_index("ix_sources_name", "sources", ["name"], unique=True)
'''


def test_postgres_drift(make_project, pg_url):
    p = make_project({"meta": pg_url})
    p.add("a1", None, REV)
    p.cli("upgrade", "head", "-q")
    rep = json.loads(p.cli("drift", "--json").output)
    assert not rep["drift"], rep
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE sources ALTER COLUMN name DROP NOT NULL")
        c.exec_driver_sql("CREATE TABLE scratch (x int)")
    eng.dispose()
    rep = json.loads(p.cli("drift", "--json", expect=4).output)["stores"][0]
    assert [(d["object"], d["what"]) for d in rep["drift"]] == [("table sources.name", "column nullability changed")]
    assert rep["unmanaged"] == ["table scratch"]
