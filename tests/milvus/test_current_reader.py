"""``ragrev current`` on a project with a Milvus Lite store and a SQL store:
as its own process it reads the Lite store in a forked child, through
milvus-lite's engine (:class:`ragrev.drivers.milvus.lite_read.LiteReader`);
in the test process (threads running) it reads every store itself. Both
must say the same as the store: the heads, a half-applied revision with its
step count, and a Lite file held by another process (exit 3, naming it)."""
from __future__ import annotations

import json
import os

import pytest

from ragrev.config import StoreConfig
from ragrev.stores import open_store
from ragrev.drivers.milvus.lite_read import LiteReader

pytestmark = pytest.mark.lite_only

C1 = '''
def upgrade(op):
    op.vectors.create_collection("items", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))
'''

C2 = '''
def rows():
    for i in range(150):
        yield {"id": i, "vec": [float(i), 1.0]}
    raise RuntimeError("source went away")


def upgrade(op):
    op.vectors.insert("items", rows=[{"id": 1000, "vec": [0.0, 0.0]}])
    op.vectors.insert("items", rows=rows, batch_size=100)
    op.meta.add_column("notes", sa.Column("body", sa.Text))
'''


def _both(p, *args):
    """``current`` as its own process and in this one: (exit, stdout, stderr) of each."""
    proc = p.run("current", *args)
    out, err = proc.communicate(timeout=120)
    here = p.cli("current", *args, expect=None)
    return (proc.returncode, out, err), (here.exit_code, here.output)


def _lite(p) -> StoreConfig:
    return StoreConfig("vectors", f"milvus-lite:///{p.root}/var/v.db", "milvus", {})


def test_heads_and_half_applied_revision_read_alike_forked_and_in_process(make_project):
    p = make_project({"vectors": "milvus-lite:///./var/v.db", "meta": "sqlite:///./var/meta.db"})
    p.add("c1", None, C1)
    p.add("c2", "c1", C2)
    (code, out, err), (here_code, here) = _both(p)
    assert code == here_code == 0, err
    assert out == here and out.split() == ["vectors", "<base>", "(2", "pending)", "meta", "<base>", "(2", "pending)"]

    p.cli("upgrade", "c1")
    p.cli("upgrade", "head", expect=1)                # the second insert fails after its first batch
    (code, out, err), (here_code, here) = _both(p)
    assert code == here_code == 0, err
    assert out == here, (out, here)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["vectors", "c1", "(1"]
    assert "revision c2 half-applied (1/2 steps)" in out and "'ragrev downgrade c1' reverts it" in out

    (code, out, err), (_, here) = _both(p, "--json")
    assert code == 0 and json.loads(out) == json.loads(here)
    vectors = json.loads(out)["stores"][0]
    assert vectors["heads"] == ["c1"] and vectors["half_applied"][0]["steps_done"] == 1

    # the reader's answers are the store's own
    reader = LiteReader.open(_lite(p))
    try:
        heads, records = reader.read_heads(), reader.log_records()
        only_c2 = reader.log_records("c2")
    finally:
        reader.close()
    store = open_store(_lite(p))
    store.connect()
    try:
        assert heads == store.read_heads() == ("c1",)
        assert records == store.log_records() and only_c2 == store.log_records("c2") != []
    finally:
        store.close()


def test_lite_file_held_by_another_process_exit_3_naming_it(make_project):
    p = make_project({"vectors": {"url": "milvus-lite:///./var/v.db", "lock_timeout": "1s"},
                      "meta": "sqlite:///./var/meta.db"})
    p.add("c1", None, C1)
    p.cli("upgrade", "head")
    store = open_store(_lite(p))
    store.connect()
    try:
        store.read_heads()                            # this process holds the Lite file now
        assert LiteReader.open(_lite(p)) is None      # not while another process holds it
        proc = p.run("current")
        out, err = proc.communicate(timeout=120)
    finally:
        store.close()
    assert proc.returncode == 3, (out, err)
    *waiting, error = err.splitlines()
    assert error.startswith(f"ragrev: error: store 'vectors' is locked by another process (pid {os.getpid()})")
    assert waiting and all(line.startswith("ragrev: waiting: store 'vectors'") for line in waiting)
    proc = p.run("current")                           # released: read again
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.split() == ["vectors", "c1", "(head)", "meta", "c1", "(head)"], err


def test_a_fresh_lite_store_is_left_to_the_store(tmp_path):
    assert LiteReader.open(StoreConfig("v", f"milvus-lite:///{tmp_path}/none.db", "milvus", {})) is None
    assert not (tmp_path / "none.db").exists()


def test_a_store_the_child_cannot_reach_is_one_error_line_exit_2(make_project):
    p = make_project({"vectors": {"url": "milvus://127.0.0.1:9", "connect_timeout": "1s"},
                      "meta": "sqlite:///./var/meta.db"})
    proc = p.run("current")
    out, err = proc.communicate(timeout=120)
    here = p.cli("current", expect=None)
    assert proc.returncode == here.exit_code == 2, (out, err)
    assert err.startswith("ragrev: error: store 'vectors': cannot connect to milvus://127.0.0.1:9")
    assert err.count("\n") == 1 and "Traceback" not in err and err.strip() in here.output


LITE_WRITE = '''
import os, sys
from milvus_lite.db import MilvusLite
db = MilvusLite(sys.argv[1])
col = db.get_collection(sys.argv[2])
col.load()
if sys.argv[3] == "delete":
    col.delete([sys.argv[4]])
else:
    col.upsert([{"id": "heads", "heads": sys.argv[4], "v": [0.0, 0.0]}])
if sys.argv[5] == "kill":
    os._exit(0)          # no flush: the write stays in Lite's write-ahead log
db.close()
'''


def _lite_write(path, collection, action, value, end):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", LITE_WRITE, str(path), collection, action, value, end], check=True,
                   timeout=120)


def _engine_answers(p):
    """What milvus-lite's engine reads (the reader's other path)."""
    from milvus_lite.db import MilvusLite

    reader = LiteReader(_lite(p), db=MilvusLite(str(p.root / "var" / "v.db")))
    try:
        return reader.read_heads(), reader.log_records()
    finally:
        reader.close()


def test_files_and_engine_read_alike_after_updates_deletes_and_a_kill(make_project):
    """Read from the files (a flushed directory) or through the engine (a
    write-ahead log left by a killed writer), the reader says what Lite says."""
    from ragrev.drivers.milvus.lite_read import _read_files

    p = make_project({"vectors": "milvus-lite:///./var/v.db", "meta": "sqlite:///./var/meta.db"})
    p.add("c1", None, C1)
    p.add("c2", "c1", C2)
    p.cli("upgrade", "c1")
    p.cli("upgrade", "head", expect=1)
    path = p.root / "var" / "v.db"

    def answers():
        reader = LiteReader.open(_lite(p))
        try:
            return reader._read is not None, reader.read_heads(), reader.log_records()
        finally:
            reader.close()

    from_files, heads, records = answers()
    assert from_files and heads == ("c1",) and len(records) > 2   # updated records: one row each, the latest
    assert (heads, records) == _engine_answers(p)
    _lite_write(path, "ragrev_version", "upsert", '["c9"]', "close")     # a newer row of the same key
    assert answers() == (True, ("c9",), records) and _engine_answers(p) == (("c9",), records)
    _lite_write(path, "ragrev_version", "delete", "heads", "close")      # a delete (a delta file)
    assert answers() == (True, (), records) and _engine_answers(p) == ((), records)
    _lite_write(path, "ragrev_version", "upsert", '["c1"]', "kill")      # left in the write-ahead log
    assert _read_files(str(path)) is None
    assert answers() == (False, ("c1",), records)
