"""Reading a Milvus Lite store's version and journal in process, without pymilvus.

:class:`LiteReader` answers what ``ragrev current`` asks a Milvus store
(its heads and its journal records) from the Lite directory itself through
milvus-lite's own engine: the same collections and rows
:class:`ragrev.drivers.milvus.store.MilvusStore` writes, read without importing
pymilvus (and pandas with it) or starting Lite's gRPC server, which is most
of the cost of opening a Lite store. Anything else (and a directory another
process holds, whose holder the store names while it waits) goes through
the store. Its lock helpers are those of the store (:mod:`ragrev.drivers.milvus.lite`).
"""
from __future__ import annotations

import json
import logging
import os

from ragrev.drivers.milvus.lite import _finish_lite_flushes
from ragrev.stores import LOG_TABLE, VERSION_TABLE

log = logging.getLogger("ragrev.drivers.milvus")


class LiteReader:
    """The read side of a Milvus Lite store that ``current`` needs
    (:meth:`read_heads`, :meth:`log_records`), on milvus-lite's engine.
    Holds Lite's lock on the directory from :meth:`open` to :meth:`close`."""

    kind = "milvus"

    def __init__(self, config, db):
        self.config = config
        self.name = config.name
        self._db = db

    @classmethod
    def open(cls, config) -> "LiteReader | None":
        """A reader of the ``milvus-lite://`` store ``config``; None when the
        directory does not exist yet or another process holds it (the store
        itself then creates it, or waits for it and names the holder)."""
        if not config.url.lower().startswith("milvus-lite://"):
            return None
        path = os.path.abspath(config.path)
        if not os.path.isdir(path) or not _finish_lite_flushes(path):
            return None
        from milvus_lite.db import MilvusLite

        try:
            return cls(config, MilvusLite(path))
        except Exception:  # held by now, or unreadable: the store says which
            return None

    def _rows(self, collection: str, expr: str, field: str) -> list[dict]:
        if not self._db.has_collection(collection):
            return []
        col = self._db.get_collection(collection)
        if col.load_state != "loaded":  # as the store's client does: Lite opens collections released
            col.load()
        return col.query(expr, output_fields=[field])

    def read_heads(self) -> tuple[str, ...]:
        rows = self._rows(VERSION_TABLE, 'id == "heads"', "heads")
        return tuple(sorted(json.loads(rows[0]["heads"]))) if rows else ()

    def log_records(self, revision: str | None = None) -> list[dict]:
        expr = "" if revision is None else f"revision == {json.dumps(revision)}"
        records = [json.loads(r["doc"]) for r in self._rows(LOG_TABLE, expr, "doc")]
        records.sort(key=lambda r: (r.get("seq") or 0))
        return records

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
