"""``downgrade`` straight after a killed ``upgrade`` whose half-applied
revision ran a step without an inverse (``bulk_insert``) but has a
``downgrade()`` (found by the reliability harness, issue 9, ``--abandon``:
the downgrade refused with "bulk_insert has no inverse; write downgrade(op)"
although the revision has one). The downgrade now finishes that revision in
the store first, then reverts it with its own ``downgrade()``."""
from __future__ import annotations

import signal

from tests.helpers.sql import heads, snapshot

REVISION = '''
def upgrade(op):
    op.meta.create_table("src", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))
    op.meta.bulk_insert(sa.table("src", sa.column("id"), sa.column("name")),
                        [{"id": i, "name": f"n{i}"} for i in range(1, 51)])  # MySQL: id 0 means "next"
    op.meta.create_index("ix_src_name", "src", ["name"])


def downgrade(op):
    op.meta.drop_index("ix_src_name", table_name="src")
    op.meta.drop_table("src")
'''


def test_a_half_applied_revision_without_inverses_is_finished_then_downgraded(make_project, sql_url):
    p = make_project({"meta": {"url": sql_url, "transaction": "step"}})
    p.set_options(lock_lease="1s", lock_timeout="20s")
    p.add("b1", None, REVISION)
    before = snapshot(sql_url)
    proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": "step=2"})  # the rows are in, not the index
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert snapshot(sql_url) != before and heads(sql_url) == set()
    p.cli("downgrade", "base", "-q")
    assert snapshot(sql_url) == before and heads(sql_url) == set()
    p.cli("upgrade", "head", "-q")
    assert heads(sql_url) == {"b1"}
