"""The same column (or table) dropped twice within one second — an upgrade,
its downgrade and the upgrade again, run back to back — must not collide in
the trash (found by the reliability harness, issue 9: the second
``drop_column`` failed with "relation ragrev_trash_<time>_notes_n already
exists": the downgrade of an ``add_column`` drops the column into the trash
too, and the trash name had only a one-second timestamp)."""
from __future__ import annotations

import pytest

from tests.helpers.sql import snapshot


@pytest.mark.slow
def test_dropping_the_same_column_and_table_twice_in_a_second(make_project, sql_url):
    p = make_project({"meta": sql_url})
    p.add("t1", None, '''
        def upgrade(op):
            op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))
            op.meta.create_table("gone", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade(op):
            op.meta.drop_table("gone")
            op.meta.drop_table("notes")
    ''')
    p.add("t2", "t1", '''
        def upgrade(op):
            op.meta.add_column("notes", sa.Column("m", sa.Integer))
            op.meta.drop_column("notes", "m")   # its downgrade drops m again: into the trash
            op.meta.drop_column("notes", "n")
            op.meta.drop_table("gone")
    ''')
    p.cli("upgrade", "t1", "-q")
    before = snapshot(sql_url)
    for _ in range(3):
        p.cli("upgrade", "head", "-q")
        p.cli("downgrade", "t1", "-q")
        assert snapshot(sql_url) == before
