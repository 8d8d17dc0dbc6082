"""MongoDB document store adapter (docs/store-kinds.md), on pymongo only.

URLs: ``mongodb://...`` and ``mongodb+srv://...`` (a real server), or
``secantus:///dir`` (an in-process SecantusDB on a loopback port, see
:mod:`ragrev.drivers.mongo.secantus`). The database is the store option
``database = "rag"`` in ``[stores.NAME]``, else the URL's path
(``mongodb://host/rag``), else ``"ragrev"``. Option ``timeout`` (default
``"5s"``) bounds server selection; ``cache_size`` sizes SecantusDB's cache.

Inside the database ragrev keeps ``ragrev_version`` (one document: the
heads), ``ragrev_log`` (run and step records, ``_id`` = record id;
``resume_token``/``captured`` stored as JSON text so they round-trip
exactly), ``ragrev_lock`` (one lease document, taken atomically with one
``find_one_and_update`` against the server clock; its ``token`` is the
fencing token, bumped at each takeover: a renewal, and the check before a
runner's next write, match owner and token, so a runner that lost its lease
never renews it back nor writes again) and ``ragrev_trash_*``
(soft-dropped collections and the values destructive steps keep for their
inverses; ``ragrev purge`` drops them).

For other adapters building on this one (chat archives): :attr:`MongoStore.db`
is the connected :class:`pymongo.database.Database`, :attr:`MongoStore.client`
its client; :meth:`MongoStore.user_collections` lists the user's collections
and :func:`ragrev.stores.trash_name` makes a trash collection name.

The operations' implementations live in :mod:`ragrev.drivers.mongo.steps` (named
by the operation classes' ``impl_modules``, imported when a step first runs).
"""
from __future__ import annotations

import atexit
import datetime as _dt
import json
import time

import pymongo
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from pymongo import ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, InvalidURI, OperationFailure, PyMongoError

from ragrev.config import parse_duration
from ragrev.errors import ConfigError, OperationError, StoreUnreachable
from ragrev.lock import took_over
from ragrev.ops.document_base import TRASH_PREFIX
from ragrev.ops.document_schema import DocCollection, DocState
from ragrev.stores import (LOCK_TABLE, LOG_JSON_FIELDS, LOG_TABLE, RESERVED_PREFIX, VERSION_TABLE,
                           Store, find_implementation, trash_age)
from ragrev.drivers.mongo import secantus
from ragrev.drivers.mongo.secantus_read import DEFAULT_DATABASE, decode_record

KIND = "mongo"


# --- helpers shared with the implementations --------------------------------------------

def to_ejson(value, relaxed: bool = False):
    """BSON value -> plain JSON data (extended JSON), exact in canonical mode."""
    opts = RELAXED_JSON_OPTIONS if relaxed else CANONICAL_JSON_OPTIONS
    return json.loads(json_util.dumps(value, json_options=opts))


def from_ejson(data):
    """Inverse of :func:`to_ejson`."""
    return json_util.loads(json_util.dumps(data))


_QUERY_ONLY = {"$text", "$near", "$nearSphere", "$where"}


def _query_only(value) -> bool:
    """``value`` uses an operator that only a query's filter takes (not a ``$match`` after ``$limit``)."""
    if isinstance(value, dict):
        return any(k in _QUERY_ONLY or _query_only(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_query_only(v) for v in value)
    return False


class MongoStore(Store):
    """A MongoDB database as a ragrev store."""

    kind = KIND

    def __init__(self, config):
        super().__init__(config)
        self.client = None
        self.db = None
        self._embedded = None  # (path, owned) for secantus:// stores
        self._holding = False  # the lease is ours (no takeover of a shared directory then)
        self.embedded = config.url.split("://", 1)[0].lower() == "secantus"

    # --- lifecycle ---------------------------------------------------------------------
    def connect(self) -> None:
        opts = self.config.options
        timeout_ms = int(parse_duration(opts.get("timeout", "5s"), "timeout") * 1000)
        url = self.config.url
        if url.lower().startswith("mongodb://"):  # (not +srv: parsing that one resolves DNS)
            try:  # pymongo's own reading of the URL: its password is masked in every message
                from pymongo.uri_parser import parse_uri

                from ragrev.config import register_secrets

                parsed = parse_uri(url, validate=False, warn=True)
                register_secrets(parsed.get("password"), *(str(v) for v in
                                 ((parsed.get("options") or {}).get("authmechanismproperties") or {}).values()))
            except Exception:  # MongoClient below says what is wrong with it
                pass
        if self.embedded:
            uri, owned = secantus.acquire(self.config.path, self.name, opts.get("cache_size"))
            self._embedded = (self.config.path, owned)
            url = uri
        try:
            client = pymongo.MongoClient(url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                         appname="ragrev")
        except (InvalidURI, ValueError) as e:
            self._release()
            raise ConfigError(self.config.scrub(f"store {self.name!r}: bad MongoDB URL {self.config.display_url}: {e}")) from None
        except PyMongoError as e:
            self._release()
            raise self._unreachable(e) from None
        try:
            client.admin.command("ping")
        except PyMongoError as e:
            client.close()
            self._release()
            raise self._unreachable(e) from None
        self.client = client
        self.db = client.get_database(opts.get("database") or client.get_default_database(DEFAULT_DATABASE).name)

    def _unreachable(self, e) -> StoreUnreachable:
        reason = str(e).splitlines()[0].split(", Timeout:")[0][:200]
        return StoreUnreachable(self.config.scrub(f"store {self.name!r}: cannot reach {self.config.display_url}: {reason}"))

    def _release(self) -> None:
        if self._embedded:
            secantus.release(*self._embedded)
            self._embedded = None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
            self.db = None
        self._release()

    def _reconnect(self) -> None:
        """After the process owning a shared SecantusDB directory stopped: take it over."""
        self.close()
        self.connect()

    # --- collections ----------------------------------------------------------------------
    def collection_names(self) -> set[str]:
        return set(self.db.list_collection_names())

    def user_collections(self) -> list[str]:
        """The user's collections (never ragrev's own nor system ones), sorted."""
        return sorted(n for n in self.collection_names()
                      if not n.startswith(RESERVED_PREFIX) and not n.startswith("system."))

    def collection_options(self, name: str) -> dict | None:
        """``listCollections`` options of a collection; None when it does not exist."""
        for info in self.db.list_collections(filter={"name": name}):
            return dict(info.get("options") or {})
        return None

    # --- version and log -----------------------------------------------------------------------
    def has_meta(self) -> bool:
        return bool(self.db.list_collection_names(filter={"name": VERSION_TABLE}))

    def ensure_meta(self) -> None:
        self._shared_retry(self._ensure_meta)

    def _ensure_meta(self) -> None:
        existing = self.collection_names()
        for name in (VERSION_TABLE, LOG_TABLE, LOCK_TABLE):
            if name not in existing:
                try:
                    self.db.create_collection(name)
                except pymongo.errors.CollectionInvalid:  # created meanwhile
                    pass
        self.db[LOG_TABLE].create_index([("revision", 1), ("seq", 1)], name="revision_seq")

    def read_heads(self) -> tuple[str, ...]:
        if not self.has_meta():
            return ()
        doc = self.db[VERSION_TABLE].find_one({"_id": "heads"})
        return tuple(doc["heads"]) if doc else ()

    def write_heads(self, heads) -> None:
        self.db[VERSION_TABLE].replace_one({"_id": "heads"}, {"_id": "heads", "heads": list(heads)}, upsert=True)

    @staticmethod
    def _encode(fields: dict) -> dict:
        return {k: (json.dumps(v) if k in LOG_JSON_FIELDS else v) for k, v in fields.items() if k != "id"}

    _decode = staticmethod(decode_record)

    def log_append(self, record: dict) -> None:
        self.db[LOG_TABLE].insert_one({"_id": record["id"], **self._encode(record)})

    def log_update(self, record_id: str, fields: dict) -> None:
        self.db[LOG_TABLE].update_one({"_id": record_id}, {"$set": self._encode(fields)})

    def log_records(self, revision: str | None = None) -> list[dict]:
        query = {} if revision is None else {"revision": revision}
        return [self._decode(d) for d in self.db[LOG_TABLE].find(query).sort([("seq", 1), ("_id", 1)])]

    def log_clear(self) -> None:
        self.db[LOG_TABLE].delete_many({})

    # --- lock --------------------------------------------------------------------------------------
    def lock_try(self, owner: str, lease: float) -> str | None:
        holder = self._shared_retry(self._lock_try, owner, lease)
        self._holding = holder is None
        return holder

    def _shared_retry(self, fn, *args):
        """Run ``fn``; when this process shares another's SecantusDB directory
        and that process went away, take the directory over and run it again
        (only while waiting for the lock: never under a held lease)."""
        try:
            return fn(*args)
        except ConnectionFailure:
            if not (self._embedded and not self._embedded[1]) or self._holding:
                raise
            self._reconnect()
            return fn(*args)

    def server_time(self) -> _dt.datetime:
        """The server's clock (naive UTC, as pymongo decodes dates), so that
        runners on hosts with skewed clocks agree on lease expiry."""
        now = self.client.admin.command("hello").get("localTime")
        return now.replace(tzinfo=None) if isinstance(now, _dt.datetime) else _dt.datetime.utcnow()

    def _lock_try(self, owner: str, lease: float) -> str | None:
        # Dates are literals from the server's clock: comparing stored dates
        # with $$NOW is broken on SecantusDB 0.7 (naive vs aware datetimes).
        locks = self.db[LOCK_TABLE]
        for _ in range(3):
            now = self.server_time()
            free = {"_id": "lock", "$or": [{"owner": owner}, {"owner": None}, {"expires": {"$lt": now}}]}
            claim = [{"$set": {
                "owner": owner,
                "expires": now + _dt.timedelta(seconds=lease),
                "since": {"$cond": [{"$eq": ["$owner", owner]}, "$since", {"$literal": now}]},
                "token": {"$cond": [{"$eq": ["$owner", owner]}, {"$ifNull": ["$token", 1]},
                                    {"$add": [{"$ifNull": ["$token", 0]}, 1]}]},
            }}]
            try:
                doc = locks.find_one_and_update(free, claim, upsert=True, return_document=ReturnDocument.AFTER)
                self.lock_token = (doc or {}).get("token", 0)
                return None
            except DuplicateKeyError:  # held by someone else (or a lost upsert race)
                held = locks.find_one({"_id": "lock"})
                if held is not None:
                    expires = held.get("expires")
                    when = f"{expires:%Y-%m-%d %H:%M:%S} UTC" if expires else "?"
                    return f"{held.get('owner')} (lease until {when})"
        return "an unknown holder"

    def lock_renew(self, fence) -> str | None:
        now = self.server_time()
        locks = self.db[LOCK_TABLE]
        mine = {"_id": "lock", "owner": fence.owner, "token": fence.token}
        if locks.update_one(mine, {"$set": {"expires": now + _dt.timedelta(seconds=fence.lease)}}).matched_count == 1:
            return None
        held = locks.find_one({"_id": "lock"}) or {}
        since = held.get("since")
        return took_over(held.get("owner") or held.get("released_by"), f"{since:%Y-%m-%d %H:%M:%S} UTC" if since else "?",
                         released=not held.get("owner"))

    def lock_release(self, owner: str) -> None:
        self._holding = False
        self.db[LOCK_TABLE].update_one({"_id": "lock", "owner": owner},
                                       {"$set": {"owner": None, "released_by": owner, "expires": _dt.datetime(1970, 1, 1)}})

    # --- operations ------------------------------------------------------------------------------
    def apply(self, op, ctx):
        if op.kind == "document":
            op.validate()  # idempotent for these; derived inverses were never validated
        return find_implementation(op, self.kind)(self, op, ctx)

    # --- preflight: the generic simulation, with this store's hooks ------------------------------
    def preflight(self, ops) -> None:
        """Simulate the run's steps on the store's collections before anything
        changes (each operation's ``simulate`` over :meth:`schema_state`): an
        operation with no implementation here, a missing collection, trash
        collection or index, a name taken, a field the validator would refuse,
        or a filter the server refuses is an :class:`OperationError` naming the
        file and line. A step that was interrupted (its journal record not
        done) may have done its work already (e.g. killed after a rename,
        before it was journaled): if its simulation fails, the state is read
        again from the store and the steps after it are simulated on that."""
        state, touched = self.schema_state(), set()
        interrupted = self._interrupted_steps()
        for op in ops:
            find_implementation(op, self.kind)
            try:
                self.preflight_check(op, state)
                if state is not None and callable(getattr(op, "simulate", None)):
                    op.simulate(state)
            except OperationError:
                if interrupted.isdisjoint(op.digests()):
                    raise
                state = self.schema_state()
            self.preflight_filter(op, state, touched)

    def _interrupted_steps(self) -> set:
        if LOG_TABLE not in self.collection_names():
            return set()
        return {d.get("digest") for d in self.db[LOG_TABLE].find({"type": "step", "outcome": {"$ne": "done"}},
                                                                 {"digest": 1})}

    def schema_state(self) -> DocState:
        """The store's collections as preflight sees them, read lazily: each
        collection's validator and indexes (:class:`DocState`)."""
        def load(name):
            opts = self.collection_options(name)
            if opts is None:
                return None
            indexes = {ix["name"]: [[f, d] for f, d in ix["key"].items()] for ix in self.db[name].list_indexes()}
            return DocCollection(opts.get("validator"), opts.get("validationLevel"), opts.get("validationAction"),
                                 indexes)

        return DocState(load, self.name)

    def preflight_check(self, op, state) -> None:
        """What the operations' own simulation does not cover on this store:
        chat-archive operations need their collection; an operation without
        ``simulate`` (``aggregate_into``) needs its collection and makes ``into``."""
        if state is None or callable(getattr(op, "simulate", None)):
            return
        c = getattr(op, "collection", None)
        if op.kind == "chat":
            if op.name != "restore" and state.get(c) is None:
                raise OperationError(f"{op.where()}{op.name}: store {self.name!r} has no collection {c!r}")
            return
        if c is not None and state.get(c) is None:
            raise OperationError(f"{op.where()}{op.name}: store {self.name!r} has no collection {c!r}")
        into = getattr(op, "into", None)
        if isinstance(into, str):
            if state.get(into) is not None:
                raise OperationError(f"{op.where()}{op.name}: collection {into!r} already exists")
            state.put(into, DocCollection())

    def preflight_filter(self, op, state, touched: set) -> None:
        """A document operation's ``filter`` on a collection no earlier step
        touches is tried by the server on one document (``$limit`` then
        ``$match``, so no scan): an unknown operator, a bad regular expression
        are refused before the run. Filters with operators ``$match`` does not
        take there (``$text``, ``$near``, ``$where``...) are left to the step."""
        c, filt = getattr(op, "collection", None), getattr(op, "filter", None)
        if op.kind == "document" and isinstance(filt, dict) and filt and isinstance(c, str) and c not in touched \
                and state is not None and state.get(c) is not None and not _query_only(filt):
            try:
                list(self.db[c].aggregate([{"$limit": 1}, {"$match": filt}, {"$project": {"_id": 1}}]))
            except OperationFailure as e:
                reason = (e.details or {}).get("errmsg") or str(e)
                raise OperationError(f"{op.where()}{op.name}: filter {filt!r} on {c!r}: {reason}") from None
        touched.update(v for k in ("collection", "new_name", "into", "trash")
                       if isinstance(v := getattr(op, k, None), str))

    def purge(self, older_than: float | None = None) -> list[str]:
        dropped = []
        now = time.time()
        for name in sorted(self.collection_names()):
            age = trash_age(name, now)
            if age is not None and (older_than is None or age >= older_than):
                self.db.drop_collection(name)
                dropped.append(name)
        return dropped



def _exit_without_waiting_for_closed_clients() -> bool:
    """At exit pymongo stops and joins the thread of every periodic executor
    (server monitors, cursor cleanup) of its clients, threads that sleep in
    steps of half a second: the exit waited up to 0.5 s after the last client
    was closed. When every executor is already stopped (every client closed:
    those threads have nothing left to do, and no write ever runs on them),
    that join is pure waiting, so pymongo's hook is dropped and its daemon
    threads end with the process. While any client is open its hook runs
    as usual. (Registered after pymongo's hook, so it runs before it.)
    True when the hook was dropped."""
    try:
        from pymongo import periodic_executor
        from pymongo.synchronous import monitor

        executors = [ref() for ref in list(periodic_executor._EXECUTORS)]
        hook = monitor._shutdown_resources
    except (ImportError, AttributeError, TypeError):  # another pymongo: keep its hook
        return False
    if not all(e is None or getattr(e, "_stopped", False) is True for e in executors):
        return False
    atexit.unregister(hook)
    return True


atexit.register(_exit_without_waiting_for_closed_clients)
