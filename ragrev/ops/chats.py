"""Chat-archive operations (docs/chat-archives.md): ``op.<store>.chats(collection, ...)``.

Conversation history is a collection (MongoDB) or a table (SQL) of messages,
one document/row each, with a session id, an order key, a time and an id::

    chats = op.docs.chats("conversations", session_key="session_id", order_key="ts")
    chats.check_sequence()
    chats.archive(older_than="90d", to="file://./var/cold", format="jsonl.gz")

``chats(collection, **keys)`` takes these keys (all optional):

- ``session_key`` (``"session_id"``), ``order_key`` (``"ts"``), ``id_key``
  (``"_id"``; on a SQL table without an ``_id`` column, its primary key);
- ``ts_key``: the message time (default: ``order_key``), used for the
  archive cutoff, month partitions and the monotonic-time check;
- ``seq_key``: a per-session sequence number checked for gaps and duplicates;
- ``pointers``: where pointer records of archived sessions live
  (default ``<collection>_archive``).

Operations and inverses:

========================================  ============================================
``archive(older_than, to, format)``       ``restore`` of the sessions it archived
``restore(sessions="all")``               ``archive`` of the sessions it restored
``remap_sessions(mapping_or_fn)``         ``remap_sessions`` with the inverse mapping
``merge_from(source, on_conflict, ...)``  ``unmerge``: delete exactly what was merged
``check_sequence()``                      (a check: nothing)
========================================  ============================================

The classes are data only; the implementations are in ``ragrev.chats``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ragrev.errors import Irreversible, OperationError
from ragrev.ops import Operation, register, short

#: the keys ``chats(...)`` accepts, with their defaults
KEY_DEFAULTS = {"session_key": "session_id", "order_key": "ts", "id_key": "_id", "ts_key": None,
                "seq_key": None, "pointers": None}
DEFAULT_ROOT = "file://./var/chat-archive"
FORMATS = ("jsonl.gz", "parquet")


class ChatNamespace:
    """What ``op.<store>.chats(collection, ...)`` returns: builders of the
    chat operations on one collection/table."""

    def __init__(self, emit, collection: str, options: dict):
        unknown = sorted(set(options) - set(KEY_DEFAULTS))
        if unknown:
            raise OperationError(f"chats({collection!r}): unknown option(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(KEY_DEFAULTS)}")
        if not isinstance(collection, str) or not collection:
            raise OperationError(f"chats(): collection must be a non-empty name, not {collection!r}")
        self._emit = emit
        self.collection = collection
        self.keys = {**KEY_DEFAULTS, **options}

    def archive(self, older_than, to: str = DEFAULT_ROOT, format: str = "jsonl.gz", *, batch_size: int = 5000,
                storage_options: dict | None = None):
        """Move sessions whose last message is older than ``older_than`` (a
        duration like ``"90d"``, seconds, a timedelta, or a date/datetime) to
        cold storage at ``to`` (an fsspec URL; relative ``file://`` paths are
        relative to ragrev.toml), one part file of at most ``batch_size``
        messages per month (sessions are never split); a pointer record per
        session stays in the store."""
        return self._emit(ArchiveChats(self.collection, dict(self.keys), older_than=older_than, to=to,
                                       format=format, batch_size=batch_size, storage_options=storage_options))

    def restore(self, sessions="all", *, storage_options: dict | None = None):
        """Re-insert archived sessions (``"all"`` or a list of session ids)
        with their original ids, order and times, after verifying every file."""
        return self._emit(RestoreChats(self.collection, dict(self.keys), sessions=sessions,
                                       storage_options=storage_options))

    def remap_sessions(self, mapping):
        """Rename sessions: a dict ``{old: new}`` or a function ``old -> new``
        (returning None or ``old`` keeps a session)."""
        return self._emit(RemapSessions(self.collection, dict(self.keys), mapping=mapping))

    def merge_from(self, source: str | None = None, *, collection: str | None = None, on_conflict: str = "prefix",
                   dedupe: bool = True, prefix: str | None = None):
        """Copy another instance's conversations into this collection.

        ``source``: ``"store.collection"``, a configured store's name (same
        collection name), or a collection of this store; ``collection=`` names
        the source collection explicitly. A source session whose id exists
        here and that shares no message with it is a different conversation:
        ``on_conflict="prefix"`` renames it ``prefix + id`` (default prefix:
        ``"<source>:"``), ``"skip"`` leaves it out. With ``dedupe``, messages
        already present (same content hash: every field but the id) are
        dropped, and a session sharing messages with the same-id session here
        is merged into it."""
        return self._emit(MergeFrom(self.collection, dict(self.keys), source=source, source_collection=collection,
                                    on_conflict=on_conflict, dedupe=dedupe, prefix=prefix))

    def check_sequence(self):
        """A check: per session, order keys strictly increasing, times
        monotonic, sequence numbers (``seq_key``) without gaps or duplicates."""
        return self._emit(CheckSequence(self.collection, dict(self.keys)))


@dataclass(eq=False)
class ChatOp(Operation):
    """Base of the chat operations: a collection and its keys."""

    impl_modules: ClassVar[dict] = {"mongo": "ragrev.drivers.mongo.chats", "sql": "ragrev.drivers.sql.chats"}

    collection: str
    keys: dict

    def describe(self) -> str:
        parts = [f"{k}={short(v)}" for k, v in self.params().items()
                 if k not in ("collection", "keys") and v not in (None, False, (), {}, [])]
        return f"chats({self.collection!r}).{self.name}({', '.join(parts)})"

    def _same(self, cls, **params):
        return self.inverse(cls(self.collection, dict(self.keys), **params))


@register("chat")
@dataclass(eq=False)
class ArchiveChats(ChatOp):
    """Sessions to cold storage; see :meth:`ChatNamespace.archive`. ``sessions``
    (instead of ``older_than``) archives given sessions, and ``tag`` labels
    their pointers as the archive step that first wrote them: the inverse of
    restore, so that that step's own inverse still finds them."""

    name = "archive"
    destructive = True
    data_step = True

    older_than: object = None
    to: str = DEFAULT_ROOT
    format: str = "jsonl.gz"
    batch_size: int = 5000
    storage_options: dict | None = None
    sessions: list | None = None
    tag: str | None = None

    def validate(self) -> None:
        from ragrev.chats.archive import check_url, cutoff

        if self.format not in FORMATS:
            raise OperationError(f"{self.where()}archive: format={self.format!r}; use one of {', '.join(FORMATS)}")
        if self.older_than is None and self.sessions is None:
            raise OperationError(f"{self.where()}archive: give older_than (e.g. '90d')")
        if self.older_than is not None:
            cutoff(self.older_than)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise OperationError(f"{self.where()}archive: batch_size must be a positive integer")
        check_url(self.to)

    def reverse(self, captured):
        if not captured or not captured.get("tag"):
            raise Irreversible(f"archive of {self.collection!r} on store {self.store!r}: no record of what it "
                               "archived (was the revision applied?)")
        return self._same(RestoreChats, sessions="all", tag=captured["tag"], storage_options=self.storage_options)


@register("chat")
@dataclass(eq=False)
class RestoreChats(ChatOp):
    """Archived sessions back into the store; see :meth:`ChatNamespace.restore`.
    ``tag`` limits it to what one archive step wrote (the inverse of archive)."""

    name = "restore"
    data_step = True

    sessions: object = "all"
    tag: str | None = None
    storage_options: dict | None = None

    def validate(self) -> None:
        if self.sessions not in (None, "all") and not isinstance(self.sessions, (list, tuple)):
            raise OperationError(f"{self.where()}restore: sessions must be 'all' or a list of session ids")

    def reverse(self, captured):
        if captured is None or "restored" not in captured:
            raise Irreversible(f"restore of {self.collection!r} on store {self.store!r}: no record of what it "
                               "restored (was the revision applied?)")
        return [op for g in captured["restored"] for op in self._same(
            ArchiveChats, older_than=None, to=g["to"], format=g["format"], sessions=g["sessions"],
            tag=g.get("tag"), storage_options=self.storage_options)]


@register("chat")
@dataclass(eq=False)
class RemapSessions(ChatOp):
    """Rename sessions; see :meth:`ChatNamespace.remap_sessions`. ``pairs``
    (``[[old, new], ...]``, ids as JSON) is how the inverse is given."""

    name = "remap_sessions"
    data_step = True

    mapping: object = None
    pairs: list | None = None

    def validate(self) -> None:
        if (self.mapping is None) == (self.pairs is None):
            raise OperationError(f"{self.where()}remap_sessions: give a mapping (dict) or a function")
        if self.mapping is not None and not (isinstance(self.mapping, dict) or callable(self.mapping)):
            raise OperationError(f"{self.where()}remap_sessions: mapping must be a dict or a function, "
                                 f"not {type(self.mapping).__name__}")
        if isinstance(self.mapping, dict):
            targets = list(self.mapping.values())
            if len(set(map(repr, targets))) != len(targets):
                raise OperationError(f"{self.where()}remap_sessions: two sessions map to the same new id")
            both = set(map(repr, self.mapping)) & set(map(repr, targets))
            if both:
                raise OperationError(f"{self.where()}remap_sessions: {sorted(both)[0]} is both renamed and a new "
                                     "name; chains and swaps need two steps")

    def reverse(self, captured):
        if captured and "inverse" in captured:
            return self._same(RemapSessions, pairs=captured["inverse"])
        if isinstance(self.mapping, dict):
            from ragrev.chats.codec import encode_key

            return self._same(RemapSessions, pairs=[[encode_key(n), encode_key(o)] for o, n in self.mapping.items()])
        raise Irreversible(f"remap_sessions of {self.collection!r} on store {self.store!r}: the inverse of a function "
                           "mapping is recorded when it runs, and there is no record (was the revision applied?)")


@register("chat")
@dataclass(eq=False)
class MergeFrom(ChatOp):
    """Another instance's conversations into this collection; see
    :meth:`ChatNamespace.merge_from`."""

    name = "merge_from"
    data_step = True

    source: str | None = None
    source_collection: str | None = None
    on_conflict: str = "prefix"
    dedupe: bool = True
    prefix: str | None = None

    def validate(self) -> None:
        if not self.source and not self.source_collection:
            raise OperationError(f"{self.where()}merge_from: name the source ('store.collection', a store, "
                                 "or collection=...)")
        if self.on_conflict not in ("prefix", "skip"):
            raise OperationError(f"{self.where()}merge_from: on_conflict={self.on_conflict!r}; use 'prefix' or 'skip'")

    def reverse(self, captured):
        if not captured or "ids" not in captured:
            raise Irreversible(f"merge_from into {self.collection!r} on store {self.store!r}: no record of what "
                               "was merged (was the revision applied?)")
        return self._same(Unmerge, ids=captured["ids"])


@register("chat")
@dataclass(eq=False)
class Unmerge(ChatOp):
    """Delete the messages a ``merge_from`` inserted (ids as JSON): its inverse."""

    name = "unmerge"
    destructive = True
    data_step = True

    ids: list | None = None

    def describe(self) -> str:
        return f"chats({self.collection!r}).unmerge({len(self.ids or [])} messages)"


@register("chat")
@dataclass(eq=False)
class CheckSequence(ChatOp):
    """Order keys strictly increasing per session, times monotonic, sequence
    numbers without gaps or duplicates; see :meth:`ChatNamespace.check_sequence`."""

    name = "check_sequence"
    is_check = True
