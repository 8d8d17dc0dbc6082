"""The store protocol on MongoDB: connection errors, database choice, the
version, log and lock kept in the store, preflight, and the embedded
SecantusDB (``secantus:///dir``) shared by two processes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pymongo
import pytest

from ragrev.config import StoreConfig
from ragrev.errors import ConfigError, OperationError, StoreUnreachable
from ragrev.ops import document as m
from ragrev.drivers.mongo import secantus
from ragrev.stores import LOG_FIELDS, open_store
from tests.helpers.project import REAL_MONGO
from tests.helpers.mongo import run_op, store_config


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_without_the_password():
    url = f"mongodb://admin:s3cret@127.0.0.1:{free_port()}/rag"
    store = open_store(StoreConfig("docs", url, "mongo", {"timeout": "1s"}))
    start = time.monotonic()
    with pytest.raises(StoreUnreachable) as e:
        store.connect()
    assert time.monotonic() - start < 5
    msg = str(e.value)
    assert msg.startswith("store 'docs': cannot reach mongodb://admin:***@127.0.0.1:")
    assert "s3cret" not in msg and "\n" not in msg and e.value.exit_code == 2


def test_unresolvable_srv_url_is_unreachable():
    store = open_store(StoreConfig("docs", "mongodb+srv://u:pw@cluster0.nonexistent.invalid/rag", "mongo", {"timeout": "2s"}))
    with pytest.raises(StoreUnreachable, match=r"cannot reach mongodb\+srv://u:\*\*\*@cluster0"):
        store.connect()


def test_bad_url_is_a_configuration_error():
    with pytest.raises(ConfigError):
        open_store(StoreConfig("docs", "mongodb://host:notaport/x", "mongo", {})).connect()


def test_database_from_option_else_url_path_else_default(mongo_url, mongo_client):
    base = mongo_url.rstrip("/").split("?")[0]
    for url, options, expected in [(mongo_url, {"database": "rag_a"}, "rag_a"), (base + "/rag_b", {}, "rag_b"),
                                   (mongo_url, {}, "ragrev")]:
        s = open_store(StoreConfig("docs", url, "mongo", options))
        s.connect()
        assert s.db.name == expected
        s.close()


def test_version_and_log_live_in_the_store(store, db):
    assert store.read_heads() == () and not store.has_meta()
    assert db.list_collection_names() == []  # reading created nothing
    store.ensure_meta()
    store.ensure_meta()
    assert store.has_meta() and {"ragrev_version", "ragrev_log", "ragrev_lock"} <= set(db.list_collection_names())
    store.write_heads(("a1", "b2"))
    assert store.read_heads() == ("a1", "b2")
    token = {"after": {"$oid": "x"}, "a.b": [1, 2.5, None, "é"], "$k": {"n": True}}
    store.log_append({"id": "r2", "seq": 2, "type": "run", "revision": "a1", "resume_token": None, "captured": {}})
    store.log_append({"id": "r1", "seq": 1, "type": "step", "revision": "a1", "resume_token": token, "captured": [token]})
    store.log_append({"id": "r3", "seq": 3, "type": "run", "revision": "b2"})
    store.log_update("r2", {"outcome": "done", "resume_token": "t", "rows_done": 5})
    records = store.log_records()
    assert [r["id"] for r in records] == ["r1", "r2", "r3"]
    assert all(set(r) == set(LOG_FIELDS) for r in records)
    assert records[0]["resume_token"] == token and records[0]["captured"] == [token]
    assert records[1]["outcome"] == "done" and records[1]["resume_token"] == "t" and records[1]["rows_done"] == 5
    assert [r["id"] for r in store.log_records("a1")] == ["r1", "r2"]
    assert store.user_collections() == []
    store.log_clear()
    assert store.log_records() == []


def test_lock_is_a_lease_taken_atomically(store, mongo_url, mongo_db_name):
    other = open_store(store_config(mongo_url, mongo_db_name))
    other.connect()
    try:
        store.ensure_meta()
        assert store.lock_try("h:1:a", 30) is None
        assert store.lock_try("h:1:a", 30) is None  # renew
        holder = other.lock_try("h:2:b", 30)
        assert holder.startswith("h:1:a (lease until ") and holder.endswith(" UTC)")
        store.lock_release("h:1:a")
        assert other.lock_try("h:2:b", 0.3) is None
        assert store.lock_try("h:1:a", 30).startswith("h:2:b")
        time.sleep(0.5)  # the lease expired: taken over
        assert store.lock_try("h:1:a", 30) is None
        other.lock_release("h:2:b")  # not the holder: nothing happens
        assert other.lock_try("h:2:b", 30).startswith("h:1:a")
    finally:
        other.close()


def test_preflight_follows_the_run_and_names_file_and_line(store, db):
    db.create_collection("docs")
    db.docs.create_index("title")

    def ops(*items):
        for i, op in enumerate(items, 1):
            op.store, op.location = "docs", ("revisions/a1.py", 10 + i)
            op.validate()
        return list(items)

    store.preflight(ops(m.CreateCollection("new"), m.AddField("new", "x", default=1), m.RenameCollection("docs", "d2"),
                        m.DropIndex("d2", "title_1"), m.CreateIndex("d2", "x"), m.DropIndex("d2", "x_1"),
                        m.DropCollection("d2")))
    with pytest.raises(OperationError, match=r"revisions/a1.py:12: add_field: store 'docs' has no collection 'nope'"):
        store.preflight(ops(m.CreateCollection("x"), m.AddField("nope", "x", default=1)))
    with pytest.raises(OperationError, match=r"a1.py:12: drop_index: collection 'docs' has no index 'x_1'"):
        store.preflight(ops(m.DropIndex("docs", "title_1"), m.DropIndex("docs", "x_1")))
    with pytest.raises(OperationError, match=r"a1.py:12: set_schema: store 'docs' has no collection 'docs'"):
        store.preflight(ops(m.RenameCollection("docs", "d2"), m.SetSchema("docs", {})))


def test_estimates_for_plan(store, db):
    db.docs.insert_many([{"_id": i, "lang": "fr"} if i < 3 else {"_id": i} for i in range(10)])
    assert store.estimate_rows(m.AddField("docs", "lang", default="en")) == 7
    assert store.estimate_rows(m.DropField("docs", "lang")) == 3
    assert store.estimate_rows(m.Transform("docs", str, filter={"_id": {"$lt": 4}})) == 4
    assert store.estimate_rows(m.AddField("missing", "lang", default="en")) is None


# --- the embedded SecantusDB -------------------------------------------------------------------------

embedded_only = pytest.mark.skipif(bool(REAL_MONGO), reason="SecantusDB embedding")

HOLD = textwrap.dedent("""
    import sys, time
    from ragrev.config import StoreConfig
    from ragrev.stores import open_store
    s = open_store(StoreConfig("docs", sys.argv[1], "mongo", {"database": "rag"}))
    s.connect()
    s.db.notes.insert_one({"_id": "from-" + sys.argv[2]})
    print("ready", flush=True)
    time.sleep(float(sys.argv[3]))
    s.close()
""")


@embedded_only
def test_embedded_store_two_processes_share_one_directory(tmp_path):
    url = f"secantus:///{tmp_path}/docs"
    first = subprocess.Popen([sys.executable, "-c", HOLD, url, "first", "3"], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "ready"
    second = subprocess.run([sys.executable, "-c", HOLD, url, "second", "0"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert first.wait(timeout=30) == 0
    assert not (tmp_path / "docs" / secantus.ADDRESS_FILE).exists()
    s = open_store(StoreConfig("docs", url, "mongo", {"database": "rag"}))
    s.connect()
    try:
        assert sorted(d["_id"] for d in s.db.notes.find()) == ["from-first", "from-second"]
    finally:
        s.close()


@embedded_only
def test_embedded_server_outlives_its_owner_while_another_process_uses_it(tmp_path):
    """Issue 12 part 2: the owner, done with the store, keeps its server
    running (and says so) while a sharer holds on; before, it stopped it and
    the sharer's next read failed with ServerSelectionTimeoutError."""
    url = f"secantus:///{tmp_path}/docs"
    owner = subprocess.Popen([sys.executable, "-c", HOLD, url, "owner", "0.2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "ready"
    s = open_store(StoreConfig("docs", url, "mongo", {"database": "rag", "timeout": "1s"}))
    s.connect()
    try:
        assert s._embedded[1] is False  # connected to the owner's server
        time.sleep(3.0)  # idle, well past the owner's end of work
        assert owner.poll() is None, owner.stderr.read()
        s.ensure_meta()
        assert s.lock_try("me", 30) is None
        s.db.notes.insert_one({"_id": "from-sharer"})
        s.lock_release("me")
    finally:
        s.close()
    assert owner.wait(timeout=60) == 0
    assert "keeping the embedded SecantusDB server" in owner.stderr.read()
    s.connect()  # the owner is gone: this process opens the directory
    try:
        assert s._embedded[1] is True
        assert {d["_id"] for d in s.db.notes.find()} == {"from-owner", "from-sharer"}
    finally:
        s.close()


@embedded_only
def test_embedded_sharer_takes_over_when_the_owner_is_killed(tmp_path):
    url = f"secantus:///{tmp_path}/docs"
    owner = subprocess.Popen([sys.executable, "-c", HOLD, url, "owner", "600"], stdout=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "ready"
    s = open_store(StoreConfig("docs", url, "mongo", {"database": "rag", "timeout": "1s"}))
    s.connect()
    try:
        assert s._embedded[1] is False  # connected to the owner's server
        s.ensure_meta()
        owner.kill()
        owner.wait(timeout=30)
        assert s.lock_try("me", 30) is None  # the owner is gone: reopened the directory here
        assert s._embedded[1] is True
        assert s.db.notes.find_one({"_id": "from-owner"})
    finally:
        s.close()


@embedded_only
def test_embedded_directory_held_by_a_standalone_server_exits_3(tmp_path, monkeypatch):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "secantus", "--port", str(port), "--storage-path",
                               str(tmp_path / "docs"), "--log-level", "ERROR"])
    try:
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=20000)
        client.admin.command("ping")
        client.close()
        monkeypatch.setattr(secantus, "PEER_WAIT", 0.5)
        s = open_store(StoreConfig("docs", f"secantus:///{tmp_path}/docs", "mongo", {}))
        with pytest.raises(secantus.DirectoryBusy) as e:
            s.connect()
        assert e.value.exit_code == 3 and "publishes no address" in str(e.value)
    finally:
        server.terminate()
        server.wait(timeout=30)


@embedded_only
def test_embedded_server_is_shared_within_a_process_and_stopped_by_the_last_close(tmp_path):
    url = f"secantus:///{tmp_path}/docs"
    a, b = (open_store(StoreConfig(n, url, "mongo", {})) for n in ("a", "b"))
    a.connect()
    b.connect()
    assert a.client.address == b.client.address
    run_op(a, m.CreateCollection("c"))
    a.close()
    assert "c" in b.db.list_collection_names()
    address = b.client.address
    b.close()
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
        pymongo.MongoClient(f"mongodb://{address[0]}:{address[1]}/", serverSelectionTimeoutMS=300).admin.command("ping")
