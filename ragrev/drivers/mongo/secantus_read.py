"""Reading an embedded SecantusDB store's version and journal in process, without pymongo.

:class:`SecantusReader` answers what ``ragrev current`` asks a ``secantus://``
store (its heads and its journal records) from the directory itself, through
SecantusDB's storage engine (``secantus.storage.Storage``, on WiredTiger):
the same collections and documents :class:`ragrev.drivers.mongo.store.MongoStore`
reads, without starting the loopback server, importing pymongo or starting
pymongo's monitor threads (whose end the process exit waits for). It is the
document store's counterpart of :mod:`ragrev.drivers.milvus.lite_read`.

The directory is opened with the options the embedded server uses
(:func:`ragrev.drivers.mongo.secantus._open`), under the same start lock, and
only when nothing else holds it: not a server of this process (whose data
the store reads through it), not another process (whose server the store
connects to, as before). A ``:memory:`` store, a directory that does not
exist yet and any failure to open go through the store as well. Stores
naming one directory (two databases) share one opening; the directory is
held from :meth:`SecantusReader.open` to the last :meth:`~SecantusReader.close`,
and the thread that opened it closes it (``current`` does both in the main
thread).
"""
from __future__ import annotations

import json
import logging
import os

from ragrev.drivers.mongo import secantus
from ragrev.stores import LOG_FIELDS, LOG_JSON_FIELDS, LOG_TABLE, VERSION_TABLE

#: the database of a store whose URL and options name none (as pymongo's default database)
DEFAULT_DATABASE = "ragrev"

#: realpath -> [Storage, readers using it]
_open: dict[str, list] = {}


def decode_record(doc: dict) -> dict:
    """A journal record (:data:`~ragrev.stores.LOG_FIELDS`) from its document."""
    rec = {k: None for k in LOG_FIELDS}
    for k, v in doc.items():
        if k == "_id":
            rec["id"] = v
        elif k in LOG_JSON_FIELDS:
            rec[k] = None if v is None else json.loads(v)
        else:
            rec[k] = v
    return rec


class SecantusReader:
    """The read side of a ``secantus://`` store that ``current`` needs
    (:meth:`read_heads`, :meth:`log_records`), on SecantusDB's storage engine."""

    kind = "mongo"

    def __init__(self, config, path: str, storage):
        self.config = config
        self.name = config.name
        self.database = config.options.get("database") or DEFAULT_DATABASE
        self._path = path
        self._storage = storage

    @classmethod
    def open(cls, config) -> "SecantusReader | None":
        """A reader of the ``secantus://`` store ``config``; None when the store
        itself must read it (see the module's docstring)."""
        if not config.url.lower().startswith("secantus://") or config.path == secantus.MEMORY:
            return None
        path = os.path.realpath(config.path)
        if path in _open:
            _open[path][1] += 1
            return cls(config, path, _open[path][0])
        if not os.path.isfile(os.path.join(path, "WiredTiger")):
            return None
        with secantus._lock:
            if path in secantus._servers:
                return None
            try:
                with secantus._starting(path):
                    if secantus._held_elsewhere(path):
                        return None
                    storage = _open_storage(path, config.options.get("cache_size"))
            except Exception:  # held by now, or unreadable: the store says which
                logging.getLogger(__name__).debug("reading %s through the store", path, exc_info=True)
                return None
        _open[path] = [storage, 1]
        return cls(config, path, storage)

    def read_heads(self) -> tuple[str, ...]:
        if not self._storage.collection_exists(self.database, VERSION_TABLE):
            return ()
        docs = self._storage.find_matching(self.database, VERSION_TABLE, {"_id": "heads"}, limit=1)
        return tuple(docs[0]["heads"]) if docs else ()

    def log_records(self, revision: str | None = None) -> list[dict]:
        query = {} if revision is None else {"revision": revision}
        docs = self._storage.find_matching(self.database, LOG_TABLE, query, sort={"seq": 1, "_id": 1})
        return [decode_record(d) for d in docs]

    def close(self) -> None:
        storage, self._storage = self._storage, None
        if storage is None:
            return
        entry = _open.get(self._path)
        if entry is not None and entry[0] is storage:
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _open[self._path]
        storage.close()


def _open_storage(path: str, cache_size: str | None):
    """SecantusDB's storage on ``path``, opened as the embedded server opens it
    (no oplog: the server runs without a replica set), minus the TTL sweeper
    (nothing is written)."""
    from secantus.storage import Storage

    logging.getLogger("secantus").setLevel(logging.WARNING)
    return Storage(path, enable_oplog=False, ttl_sweep_seconds=0, cache_size=cache_size or "512M",
                   sync_on_commit=True)
