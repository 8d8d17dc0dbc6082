"""Runner processes on SQL stores (issue 3): two at once (one applies, the
other exits 3 naming the holder), a SIGKILLed holder whose lease expires,
and SIGKILLs at several points of a multi-step run that the next ``upgrade``
recovers from, reaching the state of an uninterrupted run."""
from __future__ import annotations

import re
import signal
import time

import pytest
import sqlalchemy as sa

from tests.sql.test_runner_sql import heads, scalar, snapshot


def slow_sql(url: str, seconds: float) -> str:
    if url.startswith("postgresql"):
        return f"SELECT pg_sleep({seconds})"
    if url.startswith("mysql"):
        return f"SELECT SLEEP({seconds})"
    n = int(seconds * 5_000_000)  # a CPU-bound recursive count: ~0.2 us a row on this machine
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT count(*) FROM c"


def slow_project(make_project, url, seconds=0.3, steps=4, revisions=3, mode="revision", sub="proj"):
    """revisions q1..qN, each: create a table, then ``steps`` slow steps that each insert a counter row."""
    p = make_project({"meta": {"url": url, "transaction": mode}}, sub=sub)
    p.add("q0", None, "def upgrade(op):\n    op.meta.create_table('counter', sa.Column('rev', sa.String(8)), sa.Column('step', sa.Integer))\n"
                      "\ndef downgrade(op):\n    op.meta.drop_table('counter')\n")
    down = "q0"
    for r in range(1, revisions + 1):
        lines = [f"    op.meta.create_table('t{r}', sa.Column('id', sa.Integer, primary_key=True))"]
        for s in range(steps):
            lines.append(f"    op.meta.execute({slow_sql(url, seconds)!r})")
            lines.append(f"    op.meta.execute(\"INSERT INTO counter (rev, step) VALUES ('q{r}', {s})\")")
        body = "def upgrade(op):\n" + "\n".join(lines) + "\n\ndef downgrade(op):\n" \
               f"    op.meta.execute(\"DELETE FROM counter WHERE rev = 'q{r}'\")\n    op.meta.drop_table('t{r}')\n"
        p.add(f"q{r}", down, body)
        down = f"q{r}"
    return p


def wait_for_lock(url, timeout=30.0):
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as c:
                    row = c.execute(sa.text("SELECT owner FROM ragrev_lock WHERE expires > 0")).first()
                    if row:
                        return row[0]
            except sa.exc.SQLAlchemyError:
                pass
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the first runner never took the lock")


def test_two_runners_one_applies_the_other_exits_3_naming_the_holder(make_project, sql_url):
    p = slow_project(make_project, sql_url, seconds=1.0, steps=2, revisions=2)
    first = p.run("upgrade", "head", "-q")
    owner = wait_for_lock(sql_url)
    assert owner.split(":")[1] == str(first.pid)
    second = p.run("upgrade", "head", "-q")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 3, (out, err, first.communicate())
    assert f":{first.pid}:" in err and "locked by" in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("ragrev: waiting: ")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "ragrev: waiting: store" in err and "is locked by" in err  # said at once while waiting (issue 12)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert heads(sql_url) == {"q2"}
    assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 4  # 2 revisions x 2 steps, never twice


def test_killed_holder_lease_expires_and_next_runner_proceeds(make_project, sql_url):
    p = slow_project(make_project, sql_url, seconds=0.5, steps=3, revisions=2)
    first = p.run("upgrade", "head", "-q")
    wait_for_lock(sql_url)
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # lock_lease is 2s in the test config; give the next runner time to wait it out
    p.config.write_text(p.config.read_text().replace('lock_timeout = "1s"', 'lock_timeout = "20s"'))
    second = p.run("upgrade", "head", "-q")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert heads(sql_url) == {"q2"}
    assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 6


@pytest.mark.parametrize("mode", ["step", "revision"])
def test_sigkill_at_several_points_then_upgrade_reaches_the_same_state(make_project, sql_url, mode, tmp_path):
    """Kill the runner at several moments of a 3-revision, 9-step-each run; after each
    kill, ``upgrade head`` finishes. The end state equals an uninterrupted run's,
    and no step ran twice (one counter row per step)."""
    reference_url = (f"sqlite:///{tmp_path}/reference.db" if sql_url.startswith("sqlite")
                     else sql_url)  # on PostgreSQL the reference run happens first, then is reverted
    ref = slow_project(make_project, reference_url, seconds=0.1, steps=4, revisions=3, mode=mode, sub="ref")
    ref.cli("upgrade", "head", "-q")
    expected = snapshot(reference_url)
    if reference_url == sql_url:
        ref.cli("downgrade", "base", "-q")
    p = slow_project(make_project, sql_url, seconds=0.1, steps=4, revisions=3, mode=mode)
    kills = 0
    for delay in (0.9, 1.4, 2.0, 0.6):
        proc = p.run("upgrade", "head", "-q", env={"RAGREV_CONFIG": ""})
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # a killed holder leaves its lease: wait for it to expire (lock_lease = 2s)
        p.config.write_text(re.sub(r'lock_timeout = "\d+s"', 'lock_timeout = "10s"', p.config.read_text()))
    assert kills >= 2
    p.cli("upgrade", "head", "-q")
    assert heads(sql_url) == {"q3"}
    assert snapshot(sql_url) == expected
    assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 12


@pytest.mark.parametrize("mode", ["step", "revision"])
def test_sigkill_at_every_kind_of_point_by_fault_injection(make_project, sql_url, mode, tmp_path):
    """RAGREV_FAULTS kills the runner at exact points — after a step ran but before it
    was journaled, after it was journaled, after a stamp — then ``upgrade head``
    reaches the uninterrupted state with one counter row per step."""
    p = slow_project(make_project, sql_url, seconds=0.0, steps=3, revisions=2, mode=mode)
    p.config.write_text(p.config.read_text().replace('lock_lease = "2s"', 'lock_lease = "1s"'))
    p.cli("upgrade", "head", "-q")
    expected = snapshot(sql_url)
    p.cli("downgrade", "base", "-q")
    for point, n in [("applied", 1), ("applied", 4), ("step", 2), ("step", 7), ("stamp", 1), ("stamp", 2)]:
        proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": f"{point}={n}"})
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (point, n)
        time.sleep(1.1)  # the killed runner's lease (lock_lease = 1s) expires
        p.cli("upgrade", "head", "-q")
        assert snapshot(sql_url) == expected, (point, n)
        assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 6, (point, n)
        p.cli("downgrade", "base", "-q")
        assert snapshot(sql_url) == {}
