"""Fixtures for the MongoDB adapter's tests.

``mongo_url`` (tests/conftest.py): ``$RAGREV_TEST_MONGO_URI`` when set (a real
MongoDB), else a SecantusDB server started once for the test session. ``mongo_db_name`` is a fresh
database per test, dropped afterwards; ``store`` is a connected
:class:`~ragrev.stores.mongo.MongoStore` on it, and ``mongo_project`` a ragrev
project whose store ``docs`` points at it.
"""
from __future__ import annotations

import uuid

import pymongo
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from ragrev.config import StoreConfig
from ragrev.context import StepContext
from ragrev.stores import open_store
from tests.conftest import REAL_MONGO  # noqa: F401 - re-exported for the test modules


@pytest.fixture(scope="session")
def mongo_client(mongo_url):
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def mongo_db_name(mongo_client):
    name = "ragrev_t_" + uuid.uuid4().hex[:10]
    yield name
    mongo_client.drop_database(name)


@pytest.fixture
def db(mongo_client, mongo_db_name):
    """The test's database, seen by pymongo directly."""
    return mongo_client[mongo_db_name]


def store_config(url: str, database: str, name: str = "docs") -> StoreConfig:
    return StoreConfig(name, url, "mongo", {"database": database})


@pytest.fixture
def store(mongo_url, mongo_db_name):
    s = open_store(store_config(mongo_url, mongo_db_name))
    s.connect()
    yield s
    s.close()


@pytest.fixture
def mongo_project(make_project, mongo_url, mongo_db_name):
    def make(sub: str = "proj", options: str = ""):
        return make_project({"docs": {"url": mongo_url, "database": mongo_db_name}}, options=options, sub=sub)

    return make


# --- helpers ---------------------------------------------------------------------------------

class Journal:
    """What the runner persists of a step: the last checkpoint that completed."""

    def __init__(self):
        self.token = None
        self.rows = 0
        self.captured: dict = {}

    def context(self, store, op, crash_at: int | None = None, resuming: bool | None = None) -> StepContext:
        """A StepContext resuming from what was persisted; ``crash_at``: the
        n-th checkpoint raises (as if the process died before saving it)."""
        calls = []

        def on_checkpoint(ctx):
            calls.append(1)
            if crash_at is not None and len(calls) >= crash_at:
                raise Crash(len(calls))
            self.token, self.rows, self.captured = ctx.resume_token, ctx.rows_done, dict(ctx.captured)

        return StepContext(store=store, op=op, captured=dict(self.captured), resume_token=self.token,
                           rows_done=self.rows, on_checkpoint=on_checkpoint,
                           resuming=self.token is not None if resuming is None else resuming)


class Crash(Exception):
    pass


def run_op(store, op, journal: Journal | None = None, **kw):
    """Apply one operation like the runner does; returns (rows, captured)."""
    op.store = store.name
    op.validate()
    journal = journal or Journal()
    ctx = journal.context(store, op, **kw)
    rows = store.apply(op, ctx)
    journal.captured = dict(ctx.captured)
    return rows, ctx.captured


def run_inverse(store, op, captured):
    for inv in op.reverse(captured):
        run_op(store, inv)


def raw_docs(coll) -> list[bytes]:
    """The collection's documents as BSON bytes in _id order (order- and type-exact)."""
    raw = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    return [d.raw for d in raw.find().sort("_id", 1)]


def validator_of(db, name) -> dict:
    for info in db.list_collections(filter={"name": name}):
        opts = info.get("options", {})
        return {k: opts.get(k) for k in ("validator", "validationLevel", "validationAction")}
    return None


def indexes_of(db, name) -> dict:
    return {ix["name"]: {k: v for k, v in ix.items() if k not in ("v", "ns")} for ix in db[name].list_indexes()}
