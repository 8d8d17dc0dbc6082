"""Issue 4, part 1: the store protocol on Milvus — URLs (Lite, server, https
with a token), an unreachable server, the version / log / lock collections
kept inside the store and never listed as the user's, JSON round trips of the
journal, the lease, and a Lite file held by another process (the second
runner waits, then exits 3 naming the holder; once the holder is killed the
next runner resumes at once)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from ragrev.config import StoreConfig
from ragrev.errors import LockTimeout, StoreUnreachable
from ragrev.stores import open_store
from tests.helpers.milvus import DOCS_FIELDS, apply, lite_config, record


def server_store(url):
    return open_store(StoreConfig("v", url, "milvus"))


def test_urls_of_server_and_https_with_token_parse_without_connecting():
    s = server_store("milvus://alice:s3cret@db.example:19531/rag")
    assert (s.uri, s.token, s.db_name, s.lite, s.client) == ("http://db.example:19531", "alice:s3cret", "rag", False, None)
    s = server_store("milvus+https://cloud.example/prod?token=abc123")
    assert (s.uri, s.token, s.db_name) == ("https://cloud.example:443", "abc123", "prod")
    s = server_store("milvus://localhost")
    assert (s.uri, s.token, s.db_name) == ("http://localhost:19530", "", "")


def test_unreachable_server_is_one_line_exit_2_without_the_secret():
    s = server_store("milvus://127.0.0.1:1/db?token=topsecret")
    start = time.monotonic()
    with pytest.raises(StoreUnreachable) as e:
        s.connect()
    assert time.monotonic() - start < 10
    assert e.value.exit_code == 2 and "topsecret" not in str(e.value) and "\n" not in str(e.value)
    assert "cannot connect to milvus://127.0.0.1:1/db?token=***" in str(e.value)


def test_fresh_store_reads_no_heads_and_creates_nothing(tmp_path):
    store = open_store(lite_config(tmp_path / "v.db"))
    store.connect()
    try:
        assert store.has_meta() is False and store.read_heads() == () and store.log_records() == []
        assert store.c.list_collections() == []
    finally:
        store.close()


def test_heads_and_journal_round_trip_and_stay_out_of_the_users_listing(lite):
    lite.write_heads(("b2", "a1"))
    assert lite.read_heads() == ("a1", "b2")
    token = {"last": "k\"ey ü", "nested": [1, 2.5, None, {"x": [True, False]}], "big": 2 ** 53 + 1}
    records = [{"id": f"r{i}", "seq": 100 - i, "type": "step", "revision": "a1" if i % 2 else "b2", "step_index": i,
                "resume_token": token if i == 1 else None, "captured": {"trash": "ragrev_trash_1_x"} if i == 2 else {}}
               for i in range(4)]
    for r in records:
        lite.log_append(r)
    lite.log_update("r1", {"outcome": "done", "rows_done": 7})
    lite._log_cache.clear()   # read back from the store, not from memory
    got = lite.log_records("a1")
    assert [r["id"] for r in got] == ["r3", "r1"]                     # oldest first by seq
    assert got[1]["resume_token"] == token and got[1]["outcome"] == "done" and got[1]["rows_done"] == 7
    assert [r["id"] for r in lite.log_records()] == ["r3", "r2", "r1", "r0"]
    assert lite.log_records()[1]["captured"] == {"trash": "ragrev_trash_1_x"}

    ops = record(lite, lambda op: (op.vectors.create_collection("docs", fields=DOCS_FIELDS),
                                   op.vectors.create_collection("old", fields=DOCS_FIELDS),
                                   op.vectors.drop_collection("old")))
    apply(lite, ops)
    assert lite.user_collections() == ["docs"]
    assert {"ragrev_version", "ragrev_log", "ragrev_lock"} <= set(lite.c.list_collections())
    lite.log_clear()
    assert lite.log_records() == [] and lite.read_heads() == ("a1", "b2")


def test_lease_is_taken_renewed_refused_released_and_expires(lite):
    assert lite.lock_try("h:1:aaa", 30) is None
    assert lite.lock_try("h:1:aaa", 30) is None                       # renewal
    holder = lite.lock_try("h:1:bbb", 30)
    assert holder.startswith("h:1:aaa (lease expires in")
    lite.lock_release("h:1:bbb")                                      # not the holder: no effect
    assert lite.lock_try("h:1:bbb", 30).startswith("h:1:aaa")
    lite.lock_release("h:1:aaa")
    assert lite.lock_try("h:1:bbb", 0.2) is None
    time.sleep(0.3)
    assert lite.lock_try("h:1:ccc", 30) is None                       # expired


SLOW = '''
import os, time

MARKS = os.path.join(os.path.dirname(__file__), "..", "marks.txt")


def slow(row):
    if row["id"] % 50 == 0:
        with open(MARKS, "a") as f:
            f.write(f"{os.getpid()} {row['id']}\\n")
        time.sleep(0.05)
    return row


def upgrade(op):
    op.vectors.create_collection("docs", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                 {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}])
    op.vectors.insert("docs", rows=[{"id": i, "vec": [float(i), 1.0]} for i in range(4000)])
    op.vectors.copy("docs", "copy", transform=slow, batch_size=100)
'''


@pytest.mark.lite_only
def test_lite_file_held_by_another_runner_exit_3_naming_it_then_resume_after_kill(make_project):
    p = make_project({"vectors": {"url": "milvus-lite:///./var/v.db", "lock_timeout": "1s"}})
    p.add("s1", None, SLOW)
    marks = p.root / "marks.txt"
    proc = p.run("upgrade", "head")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (marks.exists() and len(marks.read_text().splitlines()) > 3):
        time.sleep(0.05)
    assert proc.poll() is None
    pid = int(marks.read_text().split()[0])

    store = open_store(StoreConfig("vectors", f"milvus-lite:///{p.root}/var/v.db", "milvus", {"lock_timeout": 0.5}))
    store.connect()                                   # does not wait: the file is only needed on first use
    holder = store.lock_try("me:1:x", 30)
    assert f":{pid}:" in holder and str(p.root / "var" / "v.db") in holder
    with pytest.raises(LockTimeout) as e:
        store.read_heads()
    assert e.value.exit_code == 3 and f":{pid}:" in str(e.value)
    store.close()

    result = p.cli("upgrade", "head", expect=3)
    assert "store 'vectors' is locked by" in result.output and f":{pid}:" in result.output

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    p.cli("upgrade", "head")                          # the dead holder's lease is stale at once
    assert time.monotonic() - start < 30
    store = open_store(StoreConfig("vectors", f"milvus-lite:///{p.root}/var/v.db", "milvus"))
    store.connect()
    try:
        assert store.count("copy") == 4000 and store.read_heads() == ("s1",)
        assert not os.path.exists(p.root / "var" / "v.db" / "ragrev-lease.json")
    finally:
        store.close()
