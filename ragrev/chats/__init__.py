"""Chat archives (docs/chat-archives.md): the implementations of ``ragrev.ops.chats``.

The algorithms are written once, over a small :class:`Backend` that each
store kind provides (``ragrev.drivers.mongo.chats`` on a pymongo Database,
``ragrev.drivers.sql.chats`` on a SQLAlchemy connection):

- :mod:`ragrev.chats.codec` — lossless JSON for messages, keys, hashes;
- :mod:`ragrev.chats.archive` — cold storage files, manifests, fsspec,
  durable writes and verification;
- :mod:`ragrev.chats.cold` — ``archive`` and ``restore``;
- :mod:`ragrev.chats.sessions` — ``remap_sessions``, ``merge_from``,
  ``unmerge``, ``check_sequence``.

A backend module calls :func:`register_backend` once, which registers every
chat operation's implementation (and ``--plan`` estimator) for its kind.
"""
from __future__ import annotations

import importlib

from ragrev.ops.chats import KEY_DEFAULTS

#: store kind -> "module:class" of its backend
BACKENDS = {"mongo": "ragrev.drivers.mongo.chats:MongoChats", "sql": "ragrev.drivers.sql.chats:SqlChats"}


class Backend:
    """Message storage primitives of one collection/table (a store kind implements these).

    Messages are dicts (documents / rows). ``sessions`` arguments are lists of
    native session ids; ids likewise. Pointer records are dicts with ``id``,
    ``session`` (native), ``root``, ``path``, ``format``, ``file_sha256``,
    ``messages``, ``checksum``, ``first_ts``, ``last_ts``, ``archived_at``, ``tag``.
    """

    kind = ""
    codec = ""  # name of the line encoding, written to manifests

    def __init__(self, store, collection: str, keys: dict):
        self.store = store
        self.collection = collection
        keys = {**KEY_DEFAULTS, **(keys or {})}
        self.session_key = keys["session_key"]
        self.order_key = keys["order_key"]
        self.id_key = keys["id_key"]
        self.ts_key = keys["ts_key"] or keys["order_key"]
        self.seq_key = keys["seq_key"]
        self.pointer_name = keys["pointers"] or f"{collection}_archive"

    def keys(self) -> dict:
        return {"session_key": self.session_key, "order_key": self.order_key, "id_key": self.id_key,
                "ts_key": self.ts_key, "seq_key": self.seq_key}

    # messages
    def dumps(self, doc: dict) -> str: raise NotImplementedError
    def loads(self, line: str) -> dict: raise NotImplementedError
    def exists(self) -> bool: raise NotImplementedError
    def session_stats(self) -> list[tuple]: raise NotImplementedError  # (session, count, last time)
    def sessions(self) -> list: raise NotImplementedError
    def messages(self, sessions=None): raise NotImplementedError  # ordered by session, order key, id
    def count(self) -> int: raise NotImplementedError
    def existing(self, ids) -> list[dict]: raise NotImplementedError
    def insert(self, docs: list[dict]) -> int: raise NotImplementedError
    def delete_ids(self, ids) -> int: raise NotImplementedError
    def rename_session(self, old, new) -> int: raise NotImplementedError
    def max_int_id(self) -> int | None: raise NotImplementedError  # largest integer id, for new ids

    # pointers
    def pointers(self, sessions=None, tag=None) -> list[dict]: raise NotImplementedError
    def put_pointers(self, records: list[dict]) -> None: raise NotImplementedError
    def delete_pointers(self, ids: list[str]) -> None: raise NotImplementedError
    def drop_pointers_if_empty(self) -> None: raise NotImplementedError


def backend_class(kind: str) -> type:
    module, _, cls = BACKENDS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


def backend_for(store, collection: str, keys: dict) -> Backend:
    """The backend of a connected store for one collection/table."""
    return backend_class(store.kind)(store, collection, keys)


def register_backend(kind: str, cls: type) -> None:
    """Register the chat operations' implementations and estimators for ``kind``."""
    from ragrev.chats import cold, sessions
    from ragrev.ops import chats as ops
    from ragrev.stores import estimator, implementation

    algorithms = {
        ops.ArchiveChats: cold.archive, ops.RestoreChats: cold.restore,
        ops.RemapSessions: sessions.remap, ops.MergeFrom: sessions.merge, ops.Unmerge: sessions.unmerge,
        ops.CheckSequence: sessions.check_sequence,
    }
    estimators = {ops.ArchiveChats: cold.estimate_archive, ops.RestoreChats: cold.estimate_restore,
                  ops.RemapSessions: sessions.estimate_all, ops.CheckSequence: sessions.estimate_all,
                  ops.Unmerge: sessions.estimate_unmerge}
    for op_cls, fn in algorithms.items():
        implementation(op_cls, kind)(_bind(cls, fn))
    for op_cls, fn in estimators.items():
        estimator(op_cls, kind)(_bind_estimate(cls, fn))


def _bind(cls, fn):
    def run(store, op, ctx):
        return fn(cls(store, op.collection, op.keys), op, ctx)

    run.__name__ = fn.__name__
    return run


def _bind_estimate(cls, fn):
    def estimate(store, op):
        backend = cls(store, op.collection, op.keys)
        return fn(backend, op) if backend.exists() else 0

    return estimate
