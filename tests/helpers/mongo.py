"""Test helpers (mongo), imported by the test modules and conftest files."""
from __future__ import annotations

import datetime as dt

from bson import Binary, Decimal128, Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from ragrev.config import StoreConfig
from ragrev.context import StepContext
from tests.helpers.project import REAL_MONGO  # noqa: F401 - re-exported for the test modules


def store_config(url: str, database: str, name: str = "docs") -> StoreConfig:
    return StoreConfig(name, url, "mongo", {"database": database})


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


V1 = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


V2 = {"type": "object", "required": ["title", "lang"],
      "properties": {"title": {"type": "string"}, "lang": {"enum": ["en", "fr"]}, "n": {"type": "integer"}}}


def sample_docs(n: int = 30) -> list[dict]:
    """Documents of varied shapes and BSON types, with int, string and ObjectId _ids."""
    docs = []
    for i in range(n):
        d = {"_id": i, "title": f"doc {i}", "body": {"text": "x" * i, "tags": ["a", "b"][: i % 3], "meta": {"k": i}},
             "draft": i % 2 == 0, "n": Int64(i), "score": i / 3, "when": dt.datetime(2024, 1, 1) + dt.timedelta(days=i),
             "blob": Binary(bytes([i % 256])), "price": Decimal128(f"{i}.50")}
        if i % 5 == 0:
            d["lang"] = "fr"  # already has the field add_field adds
        if i % 7 == 0:
            del d["draft"]  # lacks the field drop_field drops
        docs.append(d)
    docs.append({"_id": "a-string-id", "title": "s", "draft": True, "body": {"text": "", "meta": {}}})
    docs.append({"_id": ObjectId("65a000000000000000000001"), "title": "o", "draft": False, "lang": "en"})
    return docs


def bump(doc):
    doc["hits"] = doc.get("hits", 0) + 1
    return doc


def unbump(doc):
    doc["hits"] -= 1
    if not doc["hits"]:
        del doc["hits"]
    return doc


def current(db):
    """The heads recorded in a MongoDB store's version collection."""
    doc = db.ragrev_version.find_one({"_id": "heads"})
    return tuple(doc["heads"]) if doc else ()
