"""A failed step leaves nothing behind (issue 12, part 3), SQL: a step that
fails after its statement ran (``RAGREV_FAULTS=applied=N:fail``, as when the
revision's own code raises) is rolled back with its transaction — the
revision's in ``transaction = "revision"``, the step's in ``"step"`` (where
the revert then undoes the steps done before it) — and the ``downgrade``
gives back the rows as they were, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.helpers.sql import heads, scalar


@pytest.mark.parametrize("mode", ["revision", "step"])
def test_a_failed_sql_step_is_rolled_back_and_the_revert_restores_the_rest(make_project, sql_url, mode):
    p = make_project({"meta": {"url": sql_url, "transaction": mode}})
    p.add("r1", None, """
        def upgrade(op):
            op.meta.create_table('items', sa.Column('id', sa.Integer, primary_key=True), sa.Column('n', sa.Integer))
            op.meta.execute("INSERT INTO items (id, n) VALUES (1, 1), (2, 2), (3, 3)")
        """)
    p.add("r2", "r1", """
        def upgrade(op):
            op.meta.add_column('items', sa.Column('extra', sa.Integer))
            op.meta.create_table('other', sa.Column('id', sa.Integer, primary_key=True))
            op.meta.execute("INSERT INTO items (id, n) VALUES (4, 4)")
        """)
    p.cli("upgrade", "r1", "-q")
    proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": "applied=3:fail"})  # r2's INSERT ran, then fails
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "fault injected at applied #3" in err, err
    # the failed step rolled back; in "step" mode the steps before it stay committed, and so
    # they do on MySQL/MariaDB in either mode (DDL commits there: each step commits with its record)
    assert scalar(sql_url, "SELECT SUM(n) FROM items") == 6 and scalar(sql_url, "SELECT COUNT(*) FROM items") == 3
    assert (set(columns(sql_url)) == {"id", "n"}) == (mode == "revision" and not sql_url.startswith("mysql"))
    p.cli("downgrade", "r1", "-q")
    assert heads(sql_url) == {"r1"} and set(columns(sql_url)) == {"id", "n"}
    assert scalar(sql_url, "SELECT SUM(n) FROM items") == 6 and scalar(sql_url, "SELECT COUNT(*) FROM items") == 3
    assert "other" not in sa.inspect(sa.create_engine(sql_url)).get_table_names()
    p.cli("upgrade", "head", "-q")
    assert scalar(sql_url, "SELECT SUM(n) FROM items") == 10


def columns(url):
    engine = sa.create_engine(url)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns("items")]
    finally:
        engine.dispose()
