"""Issue 17 part 4: ``reembed(..., workers=...)`` runs its first pass on Dask
by primary-key ranges, each range's end checkpointed in the journal; a
killed run resumes the unfinished ranges only; a task whose run lost the
lease writes nothing (fenced)."""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from ragrev.config import load_config
from ragrev.distributed import Fenced, ReembedRows, range_task
from ragrev.embeddings import hashing
from ragrev.errors import OperationError
from ragrev.stores import open_store

from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, record, rows_of

pytest.importorskip("dask.distributed")


def _vectors(store, name):
    return {r["id"]: np.asarray(r["vec"], dtype=np.float32) for r in rows_of(store, name)}


@pytest.mark.slow
def test_local_cluster_gives_the_single_process_result(lite):
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("a", DOCS_FIELDS),
                                         op.vectors.insert("a", doc_rows(3000)),
                                         op.vectors.create_collection("b", DOCS_FIELDS),
                                         op.vectors.insert("b", doc_rows(3000)))))
    embed = hashing(16, seed=2)
    single = apply(lite, record(lite, lambda op: op.vectors.reembed("a", "text", embed, dim=16, batch_size=300)))
    spread = apply(lite, record(lite, lambda op: op.vectors.reembed("b", "text", embed, dim=16, batch_size=300,
                                                                    workers="local:2")))
    assert "ranges" not in single[0]
    ranges = spread[0]["ranges"]
    assert set(ranges["done"]) == {"1"} and len(ranges["bounds"]) - 1 == len(ranges["done"]) >= 8
    a, b = _vectors(lite, "a"), _vectors(lite, "b")
    assert a.keys() == b.keys() and len(b) == 3000
    assert all(np.allclose(a[k], b[k]) for k in a)
    assert lite.count(lite.resolve("b")) == 3000


def test_a_task_of_a_run_without_the_lease_writes_nothing(lite):
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("a", DOCS_FIELDS),
                                         op.vectors.insert("a", doc_rows(50)),
                                         op.vectors.create_collection("t", DOCS_FIELDS))))
    assert lite.lock_try("someone-else", 30) is None
    fn = ReembedRows(hashing(8), "text", 8, "vec", "vec", False)
    with pytest.raises(Fenced, match="lost the store's lease"):
        range_task(lite.config, "a", "t", None, None, 20, fn, "our-run")
    assert lite.count("t") == 0
    lite.lock_release("someone-else")


def test_bad_workers_value_is_refused(lite):
    with pytest.raises(OperationError, match="workers= must be"):
        record(lite, lambda op: op.vectors.reembed("a", "text", hashing(8), dim=8, workers="spark://x"))


SETUP = '''
def rows():
    for i in range(%d):
        yield {"id": i, "text": f"text {i} " + "w" * (i %% 13), "vec": [1.0, 0.0, 0.0, float(i)]}


def upgrade(op):
    op.vectors.create_collection("docs", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 256},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}])
    op.vectors.insert("docs", rows=rows, batch_size=5000)
'''

REEMBED = '''
import os
import time

from ragrev.embeddings import hashing

MARKS = os.path.join(os.path.dirname(__file__), "..", "marks.txt")
_model = hashing(8)


def slow_model(texts):
    time.sleep(0.05)
    with open(MARKS, "a") as f:
        f.write("".join(t.split()[1] + "\\n" for t in texts))
    return _model(texts)


def upgrade(op):
    op.vectors.reembed("docs", "text", slow_model, dim=8, batch_size=100, workers="local:2")
'''


@pytest.mark.slow
def test_killed_run_resumes_the_unfinished_ranges_only(make_project):
    n = 4000
    p = make_project({"vectors": "milvus-lite:///./var/vectors.db"})
    p.add("d1", None, SETUP % n)
    p.add("d2", "d1", REEMBED)
    marks = p.root / "marks.txt"
    p.cli("upgrade", "d1")
    proc = p.run("upgrade", "head")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.exists() and len(marks.read_text().split()) >= n // 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = [int(x) for x in marks.read_text().split() if x.isdigit()]

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        step = [r for r in store.log_records("d2") if r["type"] == "step"][0]
        ranges = step["captured"]["ranges"]
    finally:
        store.close()
    done = [i for i, f in enumerate(ranges["done"]) if f == "1"]
    assert done and len(done) < len(ranges["done"])
    bounds = ranges["bounds"]

    def range_of(key):
        return next(i for i in range(len(bounds) - 1)
                    if (bounds[i] is None or key > bounds[i]) and (bounds[i + 1] is None or key <= bounds[i + 1]))

    marks.write_text("")
    p.cli("upgrade", "head")
    second = [int(x) for x in marks.read_text().split() if x.isdigit()]
    assert not {range_of(k) for k in second} & set(done)  # no finished range embedded again
    assert set(first) | set(second) >= set(range(n))

    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        keys = [r["id"] for page in store.scan(store.resolve("docs"), fields=("id",)) for r in page]
        missing = sorted(set(range(n)) - set(keys))
        assert not missing, (len(missing), missing[:5], missing[-5:], ranges, sorted({range_of(k) for k in missing}),
                             store.count(store.resolve("docs")))
        assert len(keys) == len(set(keys)) == n
    finally:
        store.close()
