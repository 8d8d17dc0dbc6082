"""Reading a Milvus Lite store's version and journal in process, without pymilvus.

:class:`LiteReader` answers what ``ragrev current`` asks a Milvus store
(its heads and its journal records) from the Lite directory itself: the
same collections and rows :class:`ragrev.drivers.milvus.store.MilvusStore`
writes, read without importing pymilvus (and pandas with it) or starting
Lite's gRPC server, which is most of the cost of opening a Lite store.

A directory Lite closed cleanly (every write flushed: no write-ahead log
left) is read from its files, with pyarrow's Parquet reader and Lite's own
rules: each collection's ``manifest.json`` lists its live data and delta
files; of the rows of one primary key the one with the highest ``_seq``
counts, unless a delta (delete) of that key has a higher one. That avoids
importing milvus-lite's engine, which imports pandas and faiss. Anything
else (a write-ahead log to replay, another partition, an alias, a manifest
of another format or that does not parse) is read through milvus-lite's
engine, as before. Either way Lite's lock on the directory is held while
reading; a directory another process holds, whose holder the store names
while it waits, goes through the store. Its lock helpers are those of the
store (:mod:`ragrev.drivers.milvus.lite`).
"""
from __future__ import annotations

import json
import logging
import os

from ragrev.drivers.milvus.lite import _finish_lite_flushes, lite_locked
from ragrev.stores import LOG_TABLE, VERSION_TABLE

log = logging.getLogger("ragrev.drivers.milvus")


class LiteReader:
    """The read side of a Milvus Lite store that ``current`` needs
    (:meth:`read_heads`, :meth:`log_records`). Read from the files, its rows
    are read by :meth:`open`; on milvus-lite's engine, it holds Lite's lock on
    the directory from :meth:`open` to :meth:`close`."""

    kind = "milvus"

    def __init__(self, config, db=None, rows: dict | None = None):
        self.config = config
        self.name = config.name
        self._db = db
        self._read = rows

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
        rows = _read_files(path)
        if rows is not None:
            return cls(config, rows=rows)
        from milvus_lite.db import MilvusLite

        try:
            return cls(config, db=MilvusLite(path))
        except Exception:  # held by now, or unreadable: the store says which
            return None

    def _rows(self, collection: str, expr: str, field: str) -> list[dict]:
        if self._read is not None:
            return [{field: v} for v in self._read[collection].values()]
        if not self._db.has_collection(collection):
            return []
        col = self._db.get_collection(collection)
        if col.load_state != "loaded":  # as the store's client does: Lite opens collections released
            col.load()
        return col.query(expr, output_fields=[field])

    def read_heads(self) -> tuple[str, ...]:
        if self._read is not None:
            heads = self._read[VERSION_TABLE].get("heads")
            return tuple(sorted(json.loads(heads))) if heads is not None else ()
        rows = self._rows(VERSION_TABLE, 'id == "heads"', "heads")
        return tuple(sorted(json.loads(rows[0]["heads"]))) if rows else ()

    def log_records(self, revision: str | None = None) -> list[dict]:
        expr = "" if revision is None else f"revision == {json.dumps(revision)}"
        records = [json.loads(r["doc"]) for r in self._rows(LOG_TABLE, expr, "doc")]
        if revision is not None and self._read is not None:
            records = [r for r in records if r.get("revision") == revision]
        records.sort(key=lambda r: (r.get("seq") or 0))
        return records

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


class _NeedsEngine(Exception):
    """The files hold something only milvus-lite's engine reads right."""


def _read_files(path: str) -> dict | None:
    """``{VERSION_TABLE: {id: heads}, LOG_TABLE: {id: doc}}`` of the Lite
    directory ``path``, read from its files under Lite's lock; None when
    the engine must read it (see the module's docstring) or the lock is held."""
    with lite_locked(path) as held:
        if not held:
            return None
        try:
            with open(os.path.join(path, "aliases.json")) as f:
                aliases = json.load(f)
        except FileNotFoundError:
            aliases = {}
        try:
            if not isinstance(aliases, dict) or {VERSION_TABLE, LOG_TABLE} & set(aliases):
                raise _NeedsEngine("an alias")
            return {VERSION_TABLE: _live(path, VERSION_TABLE, "heads"), LOG_TABLE: _live(path, LOG_TABLE, "doc")}
        except Exception as e:  # _NeedsEngine, or files the engine will explain
            log.debug("Milvus Lite %s: read through the engine (%s)", path, e)
            return None


def _live(path: str, collection: str, field: str) -> dict:
    """``{primary key: field}`` of the live rows of a collection of the default database."""
    home = os.path.join(path, "collections", collection)
    if not os.path.exists(os.path.join(home, "schema.json")):
        return {}
    with open(os.path.join(home, "schema.json")) as f:
        keys = [c["name"] for c in json.load(f)["fields"] if c.get("is_primary")]
    with open(os.path.join(home, "manifest.json")) as f:
        manifest = json.load(f)
    if len(keys) != 1 or manifest.get("manifest_format_version") != 2:
        raise _NeedsEngine("a schema or manifest of another format")
    if os.listdir(os.path.join(home, "wal")):
        raise _NeedsEngine("a write-ahead log to replay")
    if set(manifest["partitions"]) != {"_default"}:
        raise _NeedsEngine("partitions")
    import pyarrow.parquet as pq

    key, part = keys[0], os.path.join(home, "partitions", "_default")
    files = manifest["partitions"]["_default"]
    latest: dict = {}
    for rel in files["data_files"]:
        table = pq.ParquetFile(os.path.join(part, rel)).read(columns=["_seq", key, field]).to_pydict()
        for seq, k, v in zip(table["_seq"], table[key], table[field]):
            if k not in latest or seq > latest[k][0]:
                latest[k] = (seq, v)
    deleted: dict = {}
    for rel in files["delta_files"]:
        table = pq.ParquetFile(os.path.join(part, rel)).read(columns=[key, "_seq"]).to_pydict()
        for k, seq in zip(table[key], table["_seq"]):
            deleted[k] = max(seq, deleted.get(k, -1))
    return {k: v for k, (seq, v) in latest.items() if deleted.get(k, -1) <= seq}
