"""Runner processes on SQL stores (issue 3): two at once (one applies, the
other exits 3 naming the holder), a SIGKILLed holder whose lease expires,
and SIGKILLs at several points of a multi-step run that the next ``upgrade``
recovers from, reaching the state of an uninterrupted run."""
from __future__ import annotations

import signal
import time

import pytest

from tests.helpers.sql import heads, scalar, snapshot
from tests.helpers.sql import slow_project, wait_for_lock


def test_two_runners_one_applies_the_other_exits_3_naming_the_holder(make_project, sql_url):
    # the first runner works ~10 s: long enough for the second to start and wait its 1 s on a loaded machine
    p = slow_project(make_project, sql_url, seconds=2.5, steps=2, revisions=2)
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
    p.set_options(lock_timeout="20s")
    second = p.run("upgrade", "head", "-q")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert heads(sql_url) == {"q2"}
    assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 6


@pytest.mark.parametrize("mode", ["step", "revision"])
def test_sigkill_at_several_points_then_upgrade_reaches_the_same_state(make_project, sql_url, mode, tmp_path):
    """Kill the runner at several moments of a 3-revision, 9-step-each run (slow enough,
    about 4 s, that the kills land while it runs); after each
    kill, ``upgrade head`` finishes. The end state equals an uninterrupted run's,
    and no step ran twice (one counter row per step)."""
    reference_url = (f"sqlite:///{tmp_path}/reference.db" if sql_url.startswith("sqlite")
                     else sql_url)  # on PostgreSQL the reference run happens first, then is reverted
    ref = slow_project(make_project, reference_url, seconds=0.3, steps=4, revisions=3, mode=mode, sub="ref")
    ref.cli("upgrade", "head", "-q")
    expected = snapshot(reference_url)
    if reference_url == sql_url:
        ref.cli("downgrade", "base", "-q")
    p = slow_project(make_project, sql_url, seconds=0.3, steps=4, revisions=3, mode=mode)
    kills = 0
    for delay in (0.9, 1.4, 2.0, 0.6):
        proc = p.run("upgrade", "head", "-q", env={"RAGREV_CONFIG": ""})
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # a killed holder leaves its lease: wait for it to expire (lock_lease = 2s)
        p.set_options(lock_timeout="10s")
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
    p.set_options(lock_lease="1s")
    p.cli("upgrade", "head", "-q")
    expected = snapshot(sql_url)
    p.cli("downgrade", "base", "-q")
    for point, n in [("applied", 1), ("applied", 4), ("step", 2), ("step", 7), ("stamp", 1), ("stamp", 2)]:
        proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": f"{point}={n}"})
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (point, n)
        # no wait for the killed runner's lease: an SQL store frees the lease of a process gone from this host
        p.cli("upgrade", "head", "-q")
        assert snapshot(sql_url) == expected, (point, n)
        assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 6, (point, n)
        p.cli("downgrade", "base", "-q")
        assert snapshot(sql_url) == {}
