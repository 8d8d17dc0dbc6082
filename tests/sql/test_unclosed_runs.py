"""A runner killed between writing a store's version and closing its run
record (the ``stamp`` fault point), and a runner killed while reverting a
half-applied revision (found by the reliability harness, issue 9).

- killed after the stamp of an upgrade: the revision is applied, its record
  still says running. ``current`` must not call it half-applied, and the
  derived downgrade must still find what its steps captured;
- killed after the stamp of a downgrade: the next ``downgrade``/``upgrade``
  must not be blocked by a "half-reverted" revision that is fully reverted;
- killed while reverting the completed steps of a half-applied revision: the
  same ``downgrade`` finishes the revert.

On SQL with ``transaction = "step"`` (each step commits with its journal
record; the revision's stamp and record close are separate commits)."""
from __future__ import annotations

import pytest

import signal

import sqlalchemy as sa

from tests.helpers.sql import heads, snapshot

DROPS = '''
def upgrade(op):
    op.meta.drop_column("notes", "body")
    op.meta.drop_column("notes", "title")
    op.meta.add_column("notes", sa.Column("flag", sa.Integer, server_default="1"))
'''


def project(make_project, url):
    p = make_project({"meta": {"url": url, "transaction": "step"}})
    p.set_options(lock_timeout="20s", lock_lease="1s")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(40), body TEXT)")
        c.execute(sa.text("INSERT INTO notes VALUES (:id, :title, :body)"),
                  [{"id": i, "title": f"note {i}", "body": "x" * i} for i in range(50)])
    engine.dispose()
    p.add("n1", None, DROPS)  # no downgrade(): derived from what the drops captured
    return p


def killed(p, *args, fault: str) -> None:
    proc = p.run(*args, "-q", env={"RAGREV_FAULTS": fault})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (fault, err)
    # no wait for the dead runner's lease: an SQL store frees the lease of a process gone from this host


@pytest.mark.slow
def test_killed_after_the_upgrade_stamp_then_derived_downgrade_restores(make_project, sql_url):
    p = project(make_project, sql_url)
    before = snapshot(sql_url)
    killed(p, "upgrade", "head", fault="stamp=1")
    assert heads(sql_url) == {"n1"}
    current = p.cli("current", "-v").output
    assert "half-applied" not in current, current
    p.cli("upgrade", "head", "-q")  # nothing to do; closes the record
    p.cli("downgrade", "base", "-q")
    assert snapshot(sql_url) == before


@pytest.mark.slow
def test_killed_after_the_downgrade_stamp_then_both_directions_work(make_project, sql_url):
    p = project(make_project, sql_url)
    before = snapshot(sql_url)
    p.cli("upgrade", "head", "-q")
    after = snapshot(sql_url)
    killed(p, "downgrade", "base", fault="stamp=1")
    assert heads(sql_url) == set() and snapshot(sql_url) == before
    assert "half" not in p.cli("current", "-v").output
    p.cli("downgrade", "base", "-q")
    p.cli("upgrade", "head", "-q")
    assert snapshot(sql_url) == after
    p.cli("downgrade", "base", "-q")
    assert snapshot(sql_url) == before


@pytest.mark.slow
def test_killed_while_reverting_a_half_applied_revision_the_same_downgrade_finishes(make_project, sql_url):
    p = project(make_project, sql_url)
    before = snapshot(sql_url)
    killed(p, "upgrade", "head", fault="step=2")       # two of three steps done
    killed(p, "downgrade", "base", fault="step=1")     # one of their two inverses done
    assert "half-reverted" in p.cli("current", "-v").output
    p.cli("upgrade", "head", "-q", expect=2)           # refused: finish the downgrade first
    p.cli("downgrade", "base", "-q")
    assert snapshot(sql_url) == before and heads(sql_url) == set()
    p.cli("upgrade", "head", "-q")
    assert heads(sql_url) == {"n1"}
