"""Fencing on Milvus (issue 12, part 1).

Milvus Lite is one process per data file (milvus-lite holds an OS lock on it
while the process lives, paused or not). So a runner paused with SIGSTOP past
its lease cannot be taken over by another process: the next runner cannot
even open the file; it waits ``lock_timeout`` and exits 3 naming the paused
one, which, continued, finishes and updates every row exactly once.

Takeover itself, and what the paused runner then does, is tested in one
process (two stores on the same Lite file: the lease row is what decides
there, as on a Milvus server): after another runner took the lease over, the
first one's fence raises LockLost naming it, its renewals fail, its release
touches nothing, and the fencing token only grows.
"""
from __future__ import annotations

import signal
import time

import pytest

from ragrev.config import StoreConfig
from ragrev.lock import Leases, LockLost
from ragrev.stores import open_store
from tests.reliability.fencing import start, wait_until

UPDATE = '''
import time


def bump(row):
    time.sleep(0.002)
    return {**row, "n": row["n"] + 1}


def upgrade(op):
    op.vectors.upsert("items", filter="id >= 0", transform=bump, batch_size=50)
'''

SEED = '''
def upgrade(op):
    op.vectors.create_collection("items", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "n", "type": "INT64"},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("items", rows=[{"id": i, "n": i, "vec": [float(i), 1.0]} for i in range(%d)])
'''


def lite_store(path, **options):
    s = open_store(StoreConfig("vectors", f"milvus-lite:///{path}", "milvus", options))
    s.connect()
    return s


@pytest.mark.slow
def test_lite_a_paused_runner_keeps_the_file_the_next_exits_3_and_rows_change_once(make_project):
    p = make_project({"vectors": {"url": "milvus-lite:///./var/v.db", "lock_timeout": "3s"}})
    p.add("m1", None, SEED % 1500)
    p.add("m2", "m1", UPDATE)
    p.cli("upgrade", "m1", "-q")
    a = start(p.config, "upgrade", "head")
    try:
        wait_until(lambda: (p.root / "var" / "v.db" / "ragrev-lease.json").exists(), what="runner A's lease")
        time.sleep(1.0)
        a.send_signal(signal.SIGSTOP)
        time.sleep(2.5)  # past the 2 s lease
        b = start(p.config, "upgrade", "head")
        _, b_err = b.communicate(timeout=120)
    finally:
        a.send_signal(signal.SIGCONT)
    _, a_err = a.communicate(timeout=240)
    lines = [ln for ln in b_err.splitlines()
             if ln.strip() and not ln.startswith("{") and not ln.startswith("ragrev: waiting: ")]
    assert b.returncode == 3 and len(lines) == 1 and f":{a.pid}:" in lines[0], b_err
    assert a.returncode == 0, a_err
    s = lite_store(p.root / "var" / "v.db")
    try:
        rows = s.c.query("items", filter="id >= 0", output_fields=["id", "n"], limit=2000)
        assert len(rows) == 1500 and all(r["n"] == r["id"] + 1 for r in rows)
        assert s.read_heads() == ("m2",)
    finally:
        s.close()


def test_a_runner_whose_lease_was_taken_over_stops(tmp_path):
    path = tmp_path / "v.db"
    a_store, b_store = lite_store(path), lite_store(path)
    try:
        a = Leases([a_store], timeout=1, lease=0.3)
        a.acquire()
        a._stop.set()  # A is paused: no renewal
        a._threads[0].join()
        assert a_store.fence.token == 1
        time.sleep(0.4)
        with Leases([b_store], timeout=2, lease=30) as b:
            assert b_store.fence.token == 2
            with pytest.raises(LockLost, match=f"{b.owner} took over the lease at"):
                a.fence(a_store)
            assert a_store.lock_renew(a_store.fence) is not None
            a.release()  # touches nothing of B's
            assert b_store._lock_row()["owner"] == b.owner and b_store._lock_row()["expires"] > time.time()
        assert b_store._lock_row()["token"] == 2 and not b_store._lock_row()["expires"]
        with Leases([b_store], timeout=2, lease=30):
            assert b_store.fence.token == 3
    finally:
        a_store.close()
        b_store.close()


def test_a_checkpoint_sees_a_takeover_on_lite_at_once_on_a_server_once_a_sixth_of_a_lease_passed(tmp_path):
    """A checkpoint asks the store about the lease (``Leases.fence(verify=True)``),
    except on a Milvus server within a sixth of a lease of the last confirmation:
    there a strong read waits for the server's next time tick, longer than a
    batch's insert. Past that, the takeover is seen there too."""
    from tests.helpers.milvus import MILVUS_SERVER, lite_config

    a_store, b_store = open_store(lite_config(tmp_path / "v.db")), open_store(lite_config(tmp_path / "v.db"))
    a_store.connect()
    b_store.connect()
    now = [1000.0]
    try:
        a = Leases([a_store], timeout=2, lease=30, clock=lambda: now[0])
        a.acquire()
        a._stop.set()  # no renewal thread: only the checks below ask the store
        a._threads[0].join()
        row = a_store._lock_row()  # another runner takes the lease over (as if it had expired)
        b_store._lock_write("other:1:x", row["token"] + 1, time.time(), time.time() + 30)
        now[0] += 1.0
        if MILVUS_SERVER:
            assert a_store.checkpoint_fresh == pytest.approx(1 / 6)
            a.fence(a_store, verify=True)  # confirmed 1 s ago: no round trip
            now[0] += 5.0
        else:
            assert a_store.checkpoint_fresh == 0
        with pytest.raises(LockLost, match="other:1:x took over the lease"):
            a.fence(a_store, verify=True)
        a.release()  # touches nothing of the other runner's
        assert b_store._lock_row()["owner"] == "other:1:x"
    finally:
        a_store.close()
        b_store.close()
