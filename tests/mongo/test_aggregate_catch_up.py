"""Issue 17: ``aggregate_into(..., catch_up=)`` carries the writes that arrive
while the pipeline runs. A writer thread inserts, updates, replaces and
deletes source documents during the step; after it the target equals the
pipeline run over the source, exactly. With a change stream (a SecantusDB
server advertising a replica set, as ``python -m secantus`` does) and with
the watermark field (ragrev's embedded server is standalone: no change
streams)."""
from __future__ import annotations

import threading
import time
import uuid

import pymongo
import pytest

from ragrev.errors import OperationError
from ragrev.ops import document as m
from ragrev.stores import open_store
from tests.helpers.mongo import Crash, Journal, run_op, store_config

PIPELINE = [{"$set": {"title_upper": {"$toUpper": "$title"}, "n2": {"$multiply": ["$n", 2]}}},
            {"$match": {"lang": {"$ne": "xx"}}}, {"$unset": "draft"}]
N = 3000


@pytest.fixture(scope="module")
def replset_url():
    """A SecantusDB server as ``python -m secantus`` runs it: a single-node replica set, with change streams."""
    from secantus import SecantusDBServer

    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:", replica_set_name="secantus",
                              cache_size="256M")
    server.start()
    yield f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
    server.stop()


@pytest.fixture
def rs(replset_url):
    name = "ragrev_t_" + uuid.uuid4().hex[:10]
    client = pymongo.MongoClient(replset_url)
    store = open_store(store_config(replset_url, name))
    store.connect()
    yield store, client[name]
    store.close()
    client.drop_database(name)
    client.close()


def seed(store, db, stamp: bool = False):
    run_op(store, m.CreateCollection("chunks"))
    db.chunks.insert_many([{"_id": i, "title": f"chunk {i}", "n": i, "lang": "en" if i % 3 else "fr", "draft": True,
                            **({"updated_at": 1.0} if stamp else {})} for i in range(N)])


def expected(db, filter=None, tombstone=None):
    match = dict(filter or {})
    if tombstone:
        match[tombstone] = {"$ne": True}
    return sorted(db.chunks.aggregate(([{"$match": match}] if match else []) + PIPELINE), key=lambda d: d["_id"])


def target(db):
    return sorted(db.chunks_v2.find(), key=lambda d: d["_id"])


class Writer(threading.Thread):
    """Inserts, updates, replaces and deletes source documents; ``ops`` of them, a little apart."""

    def __init__(self, db, ops: int = 400, stamp: bool = False, tombstone: str | None = None):
        super().__init__(daemon=True)
        self.db, self.ops, self.stamp, self.tombstone = db, ops, stamp, tombstone
        self.done_at = None
        self.error = None

    def run(self):
        try:
            c, k = self.db.chunks, 0
            for k in range(self.ops):
                now = {"updated_at": time.time()} if self.stamp else {}
                key = (k * 7919) % N
                kind = k % 5
                if kind == 0:
                    c.insert_one({"_id": N + k, "title": f"new {k}", "n": k, "lang": "en", **now})
                elif kind == 1:
                    c.update_one({"_id": key}, {"$set": {"title": f"edited {k}", "lang": "xx" if k % 2 else "fr",
                                                         **now}})
                elif kind == 2:
                    c.replace_one({"_id": key}, {"title": f"replaced {k}", "n": -k, "lang": "en", **now})
                elif kind == 3 and self.tombstone:
                    c.update_one({"_id": key}, {"$set": {self.tombstone: True, **now}})
                else:
                    c.delete_one({"_id": key})
                time.sleep(0.003)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.done_at = time.time()


def test_change_stream_carries_concurrent_writes(rs):
    store, db = rs
    seed(store, db)
    writer = Writer(db)
    writer.start()
    time.sleep(0.05)
    op = m.AggregateInto("chunks", PIPELINE, "chunks_v2", catch_up=True, catch_up_threshold=1,
                         catch_up_rounds=1000)
    rows, captured = run_op(store, op)
    ended = time.time()
    writer.join()
    assert writer.error is None
    assert writer.done_at <= ended  # every write happened during the step
    cu = captured["catch_up"]
    assert cu["mode"] == "changes" and sum(cu["rounds"]) > 0 and cu["rounds"][-1] == 0
    want = expected(db)
    assert target(db) == want and rows == len(want)


def test_change_stream_resumes_after_a_kill(rs):
    store, db = rs
    seed(store, db)
    op = m.AggregateInto("chunks", PIPELINE, "chunks_v2", filter={"lang": {"$ne": "fr"}}, catch_up=True)
    journal = Journal()
    with pytest.raises(Crash):  # dies at the first round's checkpoint: the journal holds the token after the pass
        run_op(store, op, journal, crash_at=4)
    assert journal.captured["catch_up"]["phase"] == "rounds"
    db.chunks.update_one({"_id": 1}, {"$set": {"title": "late"}})
    db.chunks.update_one({"_id": 2}, {"$set": {"lang": "fr"}})  # now filtered out: deleted from the target
    db.chunks.delete_one({"_id": 4})
    db.chunks.insert_one({"_id": -1, "title": "new", "n": 0, "lang": "en"})
    run_op(store, op, journal)
    assert target(db) == expected(db, {"lang": {"$ne": "fr"}})
    assert db.chunks_v2.find_one({"_id": 1})["title_upper"] == "LATE"


def test_watermark_mode_without_change_streams(store, db):
    if has_streams(db):
        pytest.skip("this server has change streams: the watermark mode is the fallback")
    seed(store, db, stamp=True)
    writer = Writer(db, stamp=True, tombstone="deleted")
    writer.start()
    time.sleep(0.05)
    op = m.AggregateInto("chunks", PIPELINE, "chunks_v2", catch_up="updated_at", tombstone="deleted",
                         catch_up_threshold=1, catch_up_rounds=1000, catch_up_skew=0.2)
    rows, captured = run_op(store, op)
    ended = time.time()
    writer.join()
    assert writer.error is None and writer.done_at <= ended
    cu = captured["catch_up"]
    assert cu["mode"] == "watermark" and sum(cu["rounds"]) > 0 and cu["deleted"] > 0
    want = expected(db, tombstone="deleted")
    assert target(db) == want and rows == len(want)


def has_streams(db) -> bool:
    """The server has change streams (a replica set; not the embedded, standalone secantus://)."""
    try:
        db.chunks_probe.watch().close()
        return True
    except pymongo.errors.OperationFailure:
        return False


def test_catch_up_errors_are_clear_and_change_nothing(store, db):
    seed(store, db)
    if not has_streams(db):
        with pytest.raises(OperationError, match="needs change streams"):
            run_op(store, m.AggregateInto("chunks", PIPELINE, "chunks_v2", catch_up=True))
        assert "chunks_v2" not in db.list_collection_names()
    with pytest.raises(OperationError, match=r"\$group is not per-document"):
        run_op(store, m.AggregateInto("chunks", [{"$group": {"_id": "$lang"}}], "chunks_v2", catch_up="updated_at"))
    with pytest.raises(OperationError, match="tombstone= works with catch_up="):
        run_op(store, m.AggregateInto("chunks", PIPELINE, "chunks_v2", tombstone="deleted"))
    with pytest.raises(OperationError, match="catch_up= must be True"):
        run_op(store, m.AggregateInto("chunks", PIPELINE, "chunks_v2", catch_up="$x"))
    assert "chunks_v2" not in db.list_collection_names()
    # the catch-up parameters at their default stay out of the step's checksum
    assert m.AggregateInto("c", PIPELINE, "d").params() == {"collection": "c", "pipeline": PIPELINE, "into": "d",
                                                             "filter": None}
