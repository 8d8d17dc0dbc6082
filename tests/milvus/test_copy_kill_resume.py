"""Issue 4, "done when" 2: a ``copy`` in a ``ragrev upgrade`` subprocess
killed with SIGKILL mid-way resumes from its last batch: the next
``upgrade`` starts right after the last primary key the journal recorded, and
the target ends with exactly the source's rows, no primary key twice.

The issue's figure was 100k rows in batches of 2,000 (50 batches, killed
past row 40,000). What the test proves depends on the number of batches, not
on the rows in each, so it copies 12,000 rows in batches of 240: the same 50
batches, killed past the same 40 %, in an eighth of the time (the insert of
the source and the check of every key scale with the rows)."""
from __future__ import annotations

import signal
import time
from pathlib import Path

from ragrev.config import load_config
from ragrev.stores import open_store

N = 12_000
BATCH = 240  # N / 50: the 50 batches of the 100k rows in batches of 2,000

SOURCE = '''
def rows():
    for i in range(%d):
        yield {"id": i, "vec": [float(i %% 97), float(i %% 89), 1.0, float(i %% 7)]}


def upgrade(op):
    op.vectors.create_collection("src", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("src", rows=rows, batch_size=10000)
''' % N

COPY = '''
import os

MARKS = os.path.join(os.path.dirname(__file__), "..", "marks.txt")
_first = []


def mark(row):
    if not _first:
        _first.append(row["id"])
        with open(MARKS, "a") as f:
            f.write(f"start {os.getpid()} {row['id']}\\n")
    if row["id"] %% %d == 0:
        with open(MARKS, "a") as f:
            f.write(f"row {row['id']}\\n")
    return row


def upgrade(op):
    op.vectors.copy("src", "dst", transform=mark, batch_size=%d)
''' % (BATCH, BATCH)


def copy_step(store) -> dict:
    steps = [r for r in store.log_records("k2") if r["type"] == "step"]
    assert len(steps) == 1
    return steps[0]


def test_copy_killed_mid_way_resumes_from_its_last_batch(make_project, milvus_url):
    p = make_project({"vectors": milvus_url})
    p.add("k1", None, SOURCE)
    p.add("k2", "k1", COPY)
    marks = p.root / "marks.txt"
    p.cli("upgrade", "k1")

    proc = p.run("upgrade", "head")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        rows = [int(line.split()[1]) for line in _lines(marks) if line.startswith("row ")]
        if rows and max(rows) >= N * 2 // 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the copy ended before the kill: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        step = copy_step(store)
        assert step["outcome"] == "running"
        last, done = step["resume_token"]["last"], step["resume_token"]["done"]
        assert 0 < done < N and done == last + 1 == step["rows_done"]
        assert store.count("dst") >= done
    finally:
        store.close()

    p.cli("upgrade", "head")
    starts = [int(line.split()[2]) for line in _lines(marks) if line.startswith("start ")]
    assert starts == [0, last + 1], "the second run must start right after the last checkpointed key"

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        assert copy_step(store)["outcome"] == "done"
        assert store.count("dst") == store.count("src") == N
        keys = [r["id"] for page in store.scan("dst", batch=16384, fields=("id",)) for r in page]
        assert len(keys) == len(set(keys)) == N and set(keys) == set(range(N))
        assert store.read_heads() == ("k2",)
    finally:
        store.close()


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []
