"""SQLite cannot renew a lease while the holder's transaction keeps the
database busy, so a lease shorter than one step expires under a live runner
(found by the reliability harness, issue 9: a second runner then took the
lease, and its write attempts made the holder's step fail with "database is
locked"). A waiting runner must not take the lease of a live runner on this
host: it waits (and exits 3 naming it, or finds nothing left to do), the
holder finishes, every run record is the holder's, no step runs twice."""
from __future__ import annotations


import sqlalchemy as sa

from tests.helpers.sql import slow_project, wait_for_lock
from tests.helpers.sql import heads, scalar


def run_owners(url) -> set[str]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        owners = {r[0].split(":")[1] for r in c.execute(sa.text("SELECT owner FROM ragrev_log WHERE type = 'run'"))}
    engine.dispose()
    return owners


def test_a_lease_expired_under_a_live_holder_is_not_taken(make_project, tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    p = slow_project(make_project, url, seconds=1.0, steps=3, revisions=2, mode="step")
    # the waiter's lock_timeout outlasts the holder's run even on a loaded machine (37 s seen)
    p.set_options(lock_lease="1s", lock_timeout="240s")
    first = p.run("upgrade", "head", "-q")
    owner = wait_for_lock(url)
    assert owner.split(":")[1] == str(first.pid)
    second = p.run("upgrade", "head", "-q")
    _, err2 = second.communicate(timeout=300)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2  # waited for the holder, then found nothing to do
    assert run_owners(url) == {str(first.pid)}, "the second runner took the lease of a live runner"
    assert heads(url) == {"q2"}
    assert scalar(url, "SELECT COUNT(*) FROM counter") == 6  # every step once


def test_the_waiting_runner_names_the_live_holder(make_project, tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    p = slow_project(make_project, url, seconds=1.5, steps=2, revisions=2, mode="step")
    p.set_options(lock_lease="1s", lock_timeout="3s")
    first = p.run("upgrade", "head", "-q")
    wait_for_lock(url)
    second = p.run("upgrade", "head", "-q")
    _, err2 = second.communicate(timeout=120)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 3 and f":{first.pid}:" in err2, err2
    assert len([ln for ln in err2.strip().splitlines() if not ln.startswith("ragrev: waiting: ")]) == 1
    assert scalar(url, "SELECT COUNT(*) FROM counter") == 4


def test_an_expired_lease_of_a_live_pid_is_taken_and_a_dead_pid_frees_it_at_once(tmp_path):
    """Issue 12, part 6: the owner's pid may belong to another process by now
    (pid reuse). Before the fix such a lease was never taken over on SQLite
    ("expires in 0s" forever). Expiry decides; a pid on this host that is gone
    only shortens the wait."""
    import socket
    import subprocess
    import sys
    import time

    from ragrev.config import StoreConfig
    from ragrev.stores import open_store

    url = f"sqlite:///{tmp_path}/store.db"
    s = open_store(StoreConfig("meta", url, "sql", {}))
    s.connect()
    s.ensure_meta()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    engine = sa.create_engine(url)

    def put(pid, expires):
        with engine.begin() as c:
            c.exec_driver_sql("DELETE FROM ragrev_lock")
            c.execute(sa.text("INSERT INTO ragrev_lock (name, owner, expires, acquired) "
                              "VALUES ('migrate', :o, :e, 0)"), {"o": f"{host}:{pid}:old", "e": expires})

    try:
        put(live.pid, time.time() - 1)  # expired, pid alive (reused): free
        assert s.lock_try(f"{host}:1:me", 30) is None
        assert s.lock_token == 1  # the takeover bumped the fencing token
        put(live.pid, time.time() + 60)  # unexpired, pid alive: held
        assert s.lock_try(f"{host}:1:me", 30).startswith(f"{host}:{live.pid}:old")
        put(dead.pid, time.time() + 60)  # unexpired, pid gone on this host: free at once
        assert s.lock_try(f"{host}:1:me", 30) is None
    finally:
        live.kill()
        live.wait()
        engine.dispose()
        s.close()
