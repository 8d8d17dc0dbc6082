"""A Milvus Lite directory's lock and crash leftovers, and reading its
version and journal in process without pymilvus.

:class:`LiteReader` answers what ``ragrev current`` asks a Milvus store
(its heads and its journal records) from the Lite directory itself through
milvus-lite's own engine: the same collections and rows
:class:`ragrev.stores.milvus.MilvusStore` writes, read without importing
pymilvus (and pandas with it) or starting Lite's gRPC server, which is most
of the cost of opening a Lite store. Anything else (and a directory another
process holds, whose holder the store names while it waits) goes through
the store. The lock helpers are shared with the store.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re

from ragrev.stores import LOG_TABLE, VERSION_TABLE

log = logging.getLogger("ragrev.stores.milvus")


# --- Lite file lock helpers ---------------------------------------------------------------

def _flock_busy(path: str) -> bool:
    lock = os.path.join(path, "LOCK")
    if not os.path.exists(lock):
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


_WAL_FILE = re.compile(r"^wal_(?:data|delta)_(\d+)\.arrow$")


def _finish_lite_flushes(path: str) -> bool:
    """Finish the flushes a killed process left half done in a Milvus Lite
    directory, before opening it; False when another process holds it.

    Milvus Lite 3.x flushes a collection in steps: it writes the Parquet
    files, saves ``manifest.json`` with ``active_wal_number`` moved past the
    WAL it flushed, then deletes that WAL. Its recovery replays every WAL file
    it finds, so after a kill between the last two steps the flushed rows come
    back from the WAL, and the next flush lists the same data file twice in
    the manifest: every row in it twice (found by the reliability harness).
    This deletes the WAL files numbered below the manifest's
    ``active_wal_number``, exactly those the killed flush would have deleted,
    holding Lite's own lock on the directory meanwhile."""
    lock = os.path.join(path, "LOCK")
    if not os.path.exists(lock):
        return True
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        for manifest in glob.glob(os.path.join(glob.escape(path), "**", "manifest.json"), recursive=True):
            wal_dir = os.path.join(os.path.dirname(manifest), "wal")
            try:
                with open(manifest) as f:
                    active = int(json.load(f)["active_wal_number"])
                names = os.listdir(wal_dir)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for name in names:
                m = _WAL_FILE.match(name)
                if m and int(m.group(1)) < active:
                    log.info("Milvus Lite %s: removing %s, flushed before a crash", path, os.path.join(wal_dir, name))
                    os.remove(os.path.join(wal_dir, name))
        return True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --- reading the version and the journal ---------------------------------------------------

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
