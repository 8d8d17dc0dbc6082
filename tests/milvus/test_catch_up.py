"""Issue 17 part 1: a blue-green switch while the application writes.

A writer thread (Milvus Lite is one process per data file: the writer shares
the process with the ``ragrev upgrade`` run, through its own client) inserts,
updates and deletes rows of the collection in service during the copy,
asking :class:`ragrev.dualwrite.DualWrite` where to write. The revision
copies with ``catch_up=``, gates on ``expect_fresh`` and switches the alias.
Once the switch is over, green holds exactly blue's rows, and exactly what
the writer wrote."""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from ragrev.config import load_config
from ragrev.dualwrite import DualWrite
from ragrev.stores import open_store

N = 3000

SETUP = '''
import time


def rows():
    for i in range(%d):
        yield {"id": i, "text": f"doc {i}", "updated_at": 1.0, "deleted": False,
               "vec": [float(i %% 7), float(i %% 5), 1.0, 0.5]}


def upgrade(op):
    op.vectors.create_collection("docs_blue", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 256},
        {"name": "updated_at", "type": "DOUBLE"},
        {"name": "deleted", "type": "BOOL"},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("docs_blue", rows=rows, batch_size=1000)
    op.vectors.create_alias("docs_blue", "docs")
''' % N

SWITCH = '''
import time


def slow(row):
    time.sleep(0.0004)  # the copy lasts long enough for the writer to act during the pass
    return row


def upgrade(op):
    op.vectors.copy("docs", "docs_green", transform=slow, catch_up="updated_at", batch_size=200%s)
    op.vectors.expect_fresh("docs_green", "docs", max_lag=5%s)
    op.vectors.alter_alias("docs_green", "docs")
'''


class Writer(threading.Thread):
    """Inserts, updates and deletes through DualWrite; keeps the rows it expects."""

    def __init__(self, config, tombstone: bool):
        super().__init__(daemon=True)
        self.config, self.tombstone = config, tombstone
        self.stop = threading.Event()
        self.ops = {"insert": 0, "update": 0, "delete": 0}
        self.saw_switch = False
        self.error = None

    def run(self):
        store = open_store(load_config(self.config).store("vectors"))
        store.connect()
        try:
            self.loop(store)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            store.close()

    def loop(self, store):
        rng = random.Random(7)
        dw = DualWrite(store, refresh=0.05)
        next_id, live = N, set(range(N))
        while not self.stop.is_set():
            targets = dw.targets("docs")
            if len(targets) > 1:
                self.saw_switch = True
            elif self.saw_switch:
                return  # the switch is over: the comparison starts
            kind = rng.choice(["insert", "update", "update", "delete"])
            now = time.time()
            if kind == "insert":
                key, next_id = next_id, next_id + 1
                live.add(key)
            else:
                key = rng.choice(sorted(live)[:200] + sorted(live)[-200:])
            row = {"id": key, "text": f"{kind} {key} {now}", "updated_at": now, "deleted": False,
                   "vec": [float(rng.random()) for _ in range(4)]}
            for name in targets:
                if kind == "delete" and not self.tombstone:
                    store.c.delete(name, ids=[key])
                else:
                    store.c.upsert(name, [{**row, "deleted": kind == "delete"}])
            if kind == "delete":
                live.discard(key)
            self.ops[kind] += 1
            time.sleep(0.002)


def _content(store, name, tombstone=False):
    phys = store.resolve(name)
    out = {}
    for page in store.scan(phys, batch=5000):
        for r in page:
            if tombstone and r["deleted"]:
                continue
            out[r["id"]] = (r["text"], r["updated_at"], r["deleted"],
                            np.asarray(r["vec"], dtype=np.float32).round(5).tobytes())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tombstone", [False, True], ids=["pk-difference", "tombstone"])
def test_switch_under_a_writer_leaves_green_equal_to_blue(make_project, tombstone):
    p = make_project({"vectors": "milvus-lite:///./var/vectors.db"})
    p.add("s1", None, SETUP)
    extra = ', tombstone="deleted"' if tombstone else ""
    p.add("s2", "s1", SWITCH % (extra, extra))
    p.cli("upgrade", "s1")

    writer = Writer(p.config, tombstone)
    writer.start()
    time.sleep(0.2)
    out = p.cli("upgrade", "head")
    writer.join(timeout=30)
    writer.stop.set()
    writer.join(timeout=10)
    assert writer.error is None, writer.error
    assert writer.saw_switch, "the writer never saw the switch in progress"
    assert writer.ops["delete"] > 5 and writer.ops["update"] > 5 and writer.ops["insert"] > 5, writer.ops

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        assert store.resolve("docs") == "docs_green", out.output
        # a tombstoned row is a delete: kept (marked) in blue, gone from green or marked there too
        green, blue = _content(store, "docs_green", tombstone), _content(store, "docs_blue", tombstone)
        assert set(green) == set(blue)
        assert green == blue
        step = [r for r in store.log_records("s2") if r["type"] == "step"]
        cu = step[0]["captured"]["catch_up"]
        assert cu["phase"] == "done" and cu["round"] >= 2
        fresh = step[1]["captured"]  # rows written while it read may count as not carried yet, with a small lag
        assert fresh["lag"] <= 5 and fresh["extra"] == 0 and fresh["rows"] > N // 2
    finally:
        store.close()
