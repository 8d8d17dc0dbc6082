"""Fencing on SQL stores (issue 12, part 1).

- PostgreSQL, real processes: runner A is paused (SIGSTOP) inside a
  revision's transaction, after its ``UPDATE items SET n = n + 1``, past its
  lease; runner B takes the lease over and applies the revision (its UPDATE
  waits for A's row locks); A is continued (SIGCONT). Before the fix A
  committed and B's UPDATE then ran over A's: every row ended at n+2, both
  runners exited 0. Now A's transaction is rolled back, A exits 3 naming B.
- SQLite, real processes: a runner paused inside its write transaction keeps
  the database (SQLite's writers exclude each other): nobody can take its
  lease then; the next runner waits, A finishes, every row is at n+1.
- In one process, on SQLite and PostgreSQL: a runner whose lease was taken
  over while it did not renew (a pause) has its next write transaction
  rolled back (the token is checked before commit) and its fence raises
  LockLost naming the new holder; the fencing token grows at each takeover
  and stays across a release; a renewal never takes a lease back.
"""
from __future__ import annotations

import signal
import time

import pytest
import sqlalchemy as sa

from ragrev.config import StoreConfig
from ragrev.lock import Leases, LockLost
from ragrev.stores import open_store
from tests.reliability.fencing import check_outcome, pause_past_lease, start, wait_until
from tests.helpers.sql import heads, scalar

ROWS = 200


def project(make_project, url, sleep_sql: str):
    p = make_project({"meta": {"url": url}})
    p.set_options(lock_timeout="60s")
    p.add("r1", None, f"""
        def upgrade(op):
            op.meta.create_table('items', sa.Column('id', sa.Integer, primary_key=True), sa.Column('n', sa.Integer))
            op.meta.execute("INSERT INTO items (id, n) SELECT x, x FROM ({_series(ROWS)}) s")
        """)
    p.add("r2", "r1", f"""
        def upgrade(op):
            op.meta.execute("UPDATE items SET n = n + 1")
            op.meta.execute({sleep_sql!r})
        """)
    return p


def _series(n: int) -> str:
    return f"WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {n - 1}) SELECT x FROM c"


def owner_pid(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            row = c.execute(sa.text("SELECT owner FROM ragrev_lock WHERE expires > 0")).first()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    pid = row[0].split(":")[1] if row else ""
    return int(pid) if pid.isdigit() else None


def sleeping(url) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return bool(c.execute(sa.text("SELECT count(*) FROM pg_stat_activity "
                                          "WHERE query LIKE 'SELECT pg_sleep(3)%' AND state = 'active'")).scalar())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_postgresql_a_runner_paused_in_its_transaction_past_its_lease_is_rolled_back(make_project, pg_url):
    p = project(make_project, pg_url, "SELECT pg_sleep(3)")
    p.cli("upgrade", "r1", "-q")
    result = pause_past_lease(p.config, lambda: sleeping(pg_url), lambda: owner_pid(pg_url), lease=2.0)
    assert scalar(pg_url, "SELECT COUNT(*) FROM items WHERE n <> id + 1") == 0, result
    check_outcome(result)
    assert heads(pg_url) == {"r2"}


@pytest.mark.slow
def test_sqlite_a_runner_paused_in_its_transaction_keeps_the_database(make_project, tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    p = project(make_project, url, _series(4_000_000).replace("SELECT x FROM c", "SELECT count(*) FROM c"))
    p.cli("upgrade", "r1", "-q")
    a = start(p.config, "upgrade", "head")
    try:
        wait_until(lambda: owner_pid(url) == a.pid, what="runner A's lease")
        time.sleep(0.3)  # inside r2's transaction: the UPDATE is done, the slow count runs
        a.send_signal(signal.SIGSTOP)
        time.sleep(2.5)  # past the 2 s lease
        b = start(p.config, "upgrade", "head")
        time.sleep(3)
        assert b.poll() is None and owner_pid(url) == a.pid  # B waits: A's transaction holds the database
    finally:
        a.send_signal(signal.SIGCONT)
    _, a_err = a.communicate(timeout=120)
    _, b_err = b.communicate(timeout=120)
    assert a.returncode == 0, a_err
    assert b.returncode == 0, b_err  # waited, then found nothing to do
    assert scalar(url, "SELECT COUNT(*) FROM items WHERE n <> id + 1") == 0
    assert heads(url) == {"r2"}


def _store(url):
    s = open_store(StoreConfig("meta", url, "sql", {}))
    s.connect()
    s.ensure_meta()
    return s


def test_a_runner_whose_lease_was_taken_over_writes_nothing_more(sql_url):
    a_store, b_store = _store(sql_url), _store(sql_url)
    with a_store.engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    clock = [0.0]
    a = Leases([a_store], timeout=1, lease=0.3, clock=lambda: clock[0])
    a.acquire()
    try:
        a._stop.set()  # A is paused: no renewal
        a._threads[0].join()
        assert a_store.fence.token == 1
        time.sleep(0.4)  # the lease expires in the store
        with Leases([b_store], timeout=1, lease=30) as b:
            assert b_store.fence.token == 2
            with pytest.raises(LockLost, match=f"{b.owner} took over the lease at"):
                with a_store._tx():
                    a_store.conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert scalar(sql_url, "SELECT COUNT(*) FROM t") == 0  # rolled back
            with pytest.raises(LockLost, match=b.owner):
                a.fence(a_store)
            clock[0] += 10  # even a lease that looks fresh locally: verify asks the store
            assert a_store.lock_renew(a_store.fence) is not None  # a renewal never takes it back
            assert scalar(sql_url, "SELECT owner FROM ragrev_lock") == b.owner
        # released: the owner and the counter stay; the next taker gets token 3
        assert scalar(sql_url, "SELECT token FROM ragrev_lock") == 2
        assert a_store.lock_renew(a_store.fence) is not None
        with Leases([b_store], timeout=1, lease=30):
            assert b_store.fence.token == 3
    finally:
        a.release()
        assert scalar(sql_url, "SELECT token FROM ragrev_lock") == 3  # A's release touched nothing
        a_store.close()
        b_store.close()


def test_a_lock_table_without_a_token_column_gets_one(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE ragrev_lock (name VARCHAR(32) PRIMARY KEY, owner VARCHAR(255) NOT NULL, "
                          "expires FLOAT NOT NULL, acquired FLOAT NOT NULL)")
        c.exec_driver_sql("INSERT INTO ragrev_lock VALUES ('migrate', 'h:1:x', 0, 0)")
    engine.dispose()
    s = _store(url)
    try:
        with Leases([s], timeout=1, lease=5):
            assert s.fence.token == 1
    finally:
        s.close()


def test_a_lease_that_cannot_be_renewed_for_a_whole_lease_stops_the_runner(tmp_path):
    """A failed renewal is fatal: the fence verifies once half a lease passed
    unconfirmed; while the store cannot answer, the runner goes on only as long
    as its last confirmed renewal still covers it (the injected clock stands in
    for the time passing)."""
    url = f"sqlite:///{tmp_path}/store.db"
    s = _store(url)
    clock = [0.0]
    leases = Leases([s], timeout=1, lease=10, clock=lambda: clock[0])
    leases.acquire()
    try:
        leases._stop.set()
        leases._threads[0].join()
        engine = sa.create_engine(url)
        with engine.begin() as c:  # the store fails every renewal from now on
            c.exec_driver_sql("ALTER TABLE ragrev_lock RENAME TO ragrev_lock_gone")
        engine.dispose()
        clock[0] = 4.0
        leases.fence(s)  # confirmed 4 s ago: no round trip
        clock[0] = 6.0
        leases.fence(s)  # half the lease gone: verify fails, but the last renewal still covers 4 s more
        clock[0] = 10.5
        with pytest.raises(LockLost, match="could not renew the lease for 10.5s, longer than lock_lease"):
            leases.fence(s)
        with pytest.raises(LockLost):  # and for good
            leases.fence(s)
    finally:
        leases.release()
        s.close()
