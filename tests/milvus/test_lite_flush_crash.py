"""A process killed in the middle of a Milvus Lite flush must not double
rows (found by the reliability harness, N=50 run on the final tree: after a
time kill, ``chunks_backup`` held each of its 2,000 rows twice).

Milvus Lite 3.x flushes in steps: Parquet files, then ``manifest.json``
(``active_wal_number`` moved past the flushed WAL), then deleting that WAL.
Its recovery replays every WAL file on disk, so a kill between the last two
steps brings the flushed rows back, and the next flush lists the same data
file twice. The state such a kill leaves is made here on real Lite files:
the WAL saved before a flush is put back after it. Opened directly with
pymilvus the rows double (the control); opened by ragrev, which first
deletes WAL files the manifest already covers, they do not."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragrev.stores import open_store
from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, lite_config, record

pytestmark = pytest.mark.lite_only

N = 300

COUNT_AFTER_FLUSH = '''
import sys
from pymilvus import MilvusClient
c = MilvusClient(sys.argv[1])
c.load_collection("docs")
c.insert("docs", [{"id": 10_000, "text": "x", "vec": [0.0] * 8}])
c.flush("docs")
rows = c.query("docs", filter="id >= 0", output_fields=["id"], limit=16384)
print(len(rows), len({r["id"] for r in rows}))
'''


def killed_mid_flush(tmp_path: Path) -> Path:
    """A Lite directory whose ``docs`` was flushed by a process killed before it deleted the WAL."""
    path = tmp_path / "vectors.db"
    store = open_store(lite_config(path))
    store.connect()
    store.ensure_meta()
    apply(store, record(store, lambda op: (op.vectors.create_collection("docs", fields=DOCS_FIELDS, indexes={
        "vec": {"index_type": "FLAT", "metric_type": "L2"}}), op.vectors.insert("docs", rows=doc_rows(N)))))
    wal = next(path.glob("**/docs/wal"))
    saved = tmp_path / "wal-before-flush"
    shutil.copytree(wal, saved)
    store.c.flush("docs")
    store.close()
    assert not any(p.name.startswith("wal_") and p.name in {q.name for q in saved.iterdir()} for p in wal.iterdir())
    for f in saved.iterdir():
        shutil.copy2(f, wal / f.name)
    return path


def test_pymilvus_alone_doubles_the_rows_of_an_interrupted_flush(tmp_path):
    path = killed_mid_flush(tmp_path)
    out = subprocess.run([sys.executable, "-c", COUNT_AFTER_FLUSH, str(path)], capture_output=True, text=True,
                         timeout=120)
    rows, distinct = map(int, out.stdout.split())
    assert (rows, distinct) == (2 * N + 1, N + 1), out.stdout + out.stderr


def test_ragrev_opens_it_with_every_row_once(tmp_path):
    path = killed_mid_flush(tmp_path)
    store = open_store(lite_config(path))
    store.connect()
    try:
        store.c.insert("docs", [{"id": 10_000, "text": "x", "vec": [0.0] * 8}])
        store.c.flush("docs")
        ids = [r["id"] for page in store.scan("docs", batch=5000, fields=["id"]) for r in page]
        assert len(ids) == N + 1 and len(set(ids)) == N + 1
        assert store.count("docs") == N + 1
    finally:
        store.close()
