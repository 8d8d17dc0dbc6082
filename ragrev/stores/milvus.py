"""The Milvus store: Milvus Lite (embedded, ``milvus-lite:///path.db``) or a
Milvus server (``milvus://host:port[/db]``, ``milvus+https://host[:port][/db]``,
token from ``?token=`` or ``user:password@``), through pymilvus ``MilvusClient``.

- Meta collections ``ragrev_version`` (one row: the heads), ``ragrev_log`` (one
  row per record, the record as JSON text) and ``ragrev_lock`` (one row: the
  lease). Milvus wants a vector field in every collection: each has a
  2-dimensional dummy one. ``ragrev_*`` collections are never listed as the
  user's (:meth:`MilvusStore.user_collections`).
- Lock: a lease row, taken by writing it and reading it back (Milvus has no
  compare-and-set), with a fencing token bumped at each takeover, checked by
  renewals and before a runner's writes (see :mod:`ragrev.lock`); two runners at the
  same moment can both win. With the store option ``lock_url`` (a SQL URL) the
  lease is held in that database's ``ragrev_lock`` instead, by compare-and-set. On Milvus Lite only one process can open the file at all
  (an OS lock held by milvus-lite): a second process sees the file busy, waits
  up to ``lock_timeout`` for it (:attr:`MilvusStore.lock_timeout`, default 60 s)
  and is told who holds it (from ``ragrev-lease.json`` next to the data and
  ``/proc/locks``). A lease row left by a killed process is stale as soon as
  another process can open the file.
- Rows are read in primary-key order by pages of ``pk > last`` (Milvus' own
  iterator protocol), so a data step resumes exactly after its last batch;
  rows are written by primary key (upsert), so a redone batch never duplicates.
- How each operation of :mod:`ragrev.ops.milvus` is applied lives in
  :mod:`ragrev.stores.milvus_steps` (imported at the end of this module).
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

from pymilvus import DataType, MilvusClient, MilvusException

from ragrev.config import parse_duration
from ragrev.errors import LockTimeout, OperationError, RagrevError, StoreUnreachable
from ragrev.lock import local_pid, pid_alive, took_over, utc
from ragrev.ops.milvus import (
    MILVUS_LITE, RESERVED_PREFIX, TRASH_PREFIX, VECTOR_TYPES, CollectionState, MilvusOp, SchemaState,
)
from ragrev.ops.milvus_schema import parse_version, server_capabilities
from ragrev.stores import LOCK_TABLE, LOG_FIELDS, LOG_TABLE, VERSION_TABLE, Store
from ragrev.stores.milvus_lite_read import _finish_lite_flushes, _flock_busy

KIND = "milvus"
ZERO = [0.0, 0.0]
MAX_PAGE = 16384                       # Milvus' limit on a query's limit
LEASE_FILE = "ragrev-lease.json"
_LITE_OPEN: dict[str, int] = {}       # Lite data path -> stores of this process using it
_LITE_GUARD = threading.RLock()         # stores opened and closed by threads at once (Dask workers on Lite)
log = logging.getLogger(__name__)
_NAME_PARAMS = {"collection", "source", "target", "old", "new", "alias", "against", "expected"}
_INDEX_INFO_KEYS = {"index_type", "metric_type", "field_name", "index_name", "total_rows", "indexed_rows",
                    "pending_index_rows", "state", "index_state", "failed_reason", "params"}


def _quiet() -> None:
    """pymilvus and milvus-lite log every failed call; ragrev reports its own errors."""
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


_quiet()


def lit(value) -> str:
    """A primary key as a literal of a Milvus filter expression."""
    if isinstance(value, str):
        return json.dumps(value)
    return str(int(value))


#: how Milvus words an expression it cannot parse (as opposed to one that names unknown fields or mixes types)
_SYNTAX_ERROR = re.compile(r"unexpected (token|character)|expected .* got|cannot parse|syntax error", re.IGNORECASE)
#: how it words an unknown field; Milvus 2.3 says ``cannot parse expression: ..., error: field lang not exist``
_UNKNOWN_FIELD = re.compile(r"field \S+ not exist|not exist.*field|field .* not found|no such field", re.IGNORECASE)


def _syntax_error(text: str) -> bool:
    """Whether a failed query's message says its filter does not parse (not that it names a field
    the collection lacks, which an earlier step of the run may add)."""
    return bool(_SYNTAX_ERROR.search(text)) and not _UNKNOWN_FIELD.search(text)


#: the collection property that keeps the embedding contract (see ragrev.contracts)
CONTRACT_PROPERTY = "ragrev.embedding"


def read_contract(description: dict) -> dict | None:
    """The embedding contract kept in a collection's properties (``describe_collection``'s answer)."""
    raw = (description.get("properties") or {}).get(CONTRACT_PROPERTY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"unreadable": raw}
    return value if isinstance(value, dict) else {"unreadable": raw}


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return str(text).strip().splitlines()[0]


class _LoadingClient:
    """A ``MilvusClient`` whose reads load a released collection and retry
    (Milvus Lite opens every collection released; a server may release one),
    and whose renames and alias switches drop pymilvus' schema cache (kept by
    name, it would describe a renamed-away collection or an alias' old target)."""

    _READS = {"query", "search", "get"}
    _RENAMES = {"rename_collection", "create_alias", "alter_alias", "drop_alias", "create_collection",
                "drop_collection"}

    def __init__(self, client: MilvusClient, db_name: str = ""):
        self._client = client
        self._db_name = db_name

    def _forget_schemas(self) -> None:
        try:  # pymilvus has no public call for this
            self._client._get_connection()._invalidate_db_schemas(self._db_name)
        except Exception:
            pass

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name in self._RENAMES:
            def renaming(*args, **kwargs):
                try:
                    return attr(*args, **kwargs)
                finally:
                    self._forget_schemas()

            return renaming
        if name not in self._READS:
            return attr

        def read(collection_name, *args, **kwargs):
            try:
                return attr(collection_name, *args, **kwargs)
            except MilvusException as e:
                if getattr(e, "code", None) != 101 and "load" not in _first_line(e).lower():
                    raise
                self._client.load_collection(collection_name)
                return attr(collection_name, *args, **kwargs)

        return read


class MilvusStore(Store):
    kind = KIND

    def __init__(self, config):
        super().__init__(config)
        scheme, rest = config.url.split("://", 1)
        self.lite = scheme == "milvus-lite"
        self.client: MilvusClient | None = None
        self.lock_timeout = parse_duration(config.options.get("lock_timeout", 60), "lock_timeout")
        self.connect_timeout = parse_duration(config.options.get("connect_timeout", 5), "connect_timeout")
        self._busy: str | None = None
        self._opened_lite = False
        self._log_cache: dict[str, dict] = {}
        self._meta_ok = False
        self._caps = None
        self._lease = None     # the SqlStore of option lock_url, once used
        if self.lite:
            self.path = os.path.abspath(config.path)
            return
        parts = urlsplit("x://" + rest)
        https = scheme == "milvus+https"
        query = parse_qs(parts.query)
        self.uri = f"{'https' if https else 'http'}://{parts.hostname or 'localhost'}:{parts.port or (443 if https else 19530)}"
        token = (query.get("token") or [""])[0]
        if not token and parts.username:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        self.token = token
        self.db_name = parts.path.strip("/") or (query.get("db_name") or [""])[0]

    @property
    def caps(self):
        """What the server supports: asked its version once per connection
        (:func:`ragrev.ops.milvus_schema.server_capabilities`); Milvus Lite has its own set."""
        if self.lite:
            return MILVUS_LITE
        if self._caps is None:
            self._caps = server_capabilities(self.server_version())
        return self._caps

    def server_version(self) -> tuple | None:
        """The server's version as ``(major, minor, patch)``; None if it does not say."""
        try:
            return parse_version(self.c.get_server_version())
        except MilvusException:
            return None

    # --- lifecycle -------------------------------------------------------------------
    def connect(self) -> None:
        _quiet()
        if self.lite:
            self._open_lite()
            return
        try:
            self.client = _LoadingClient(MilvusClient(uri=self.uri, token=self.token, db_name=self.db_name,
                                                      timeout=self.connect_timeout), self.db_name)
            self.client.list_collections(timeout=self.connect_timeout)
        except Exception as e:
            self.client = None
            raise StoreUnreachable(f"store {self.name!r}: cannot connect to {self.config.display_url}: "
                                   f"{self.config.scrub(_first_line(e))}") from None

    def _open_lite(self) -> bool:
        """Open the Lite data directory; False (and ``_busy`` set) when another process has it."""
        with _LITE_GUARD:
            return self._open_lite_guarded()

    def _open_lite_guarded(self) -> bool:
        if not _LITE_OPEN.get(self.path):
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            if not _finish_lite_flushes(self.path):  # probes Lite's lock too
                self._busy = _lite_holder(self.path)
                return False
        from milvus_lite.server_manager import server_manager_instance

        uri = server_manager_instance.start_and_get_uri(self.path)
        if uri is None:
            if _flock_busy(self.path):
                self._busy = _lite_holder(self.path)
                return False
            raise StoreUnreachable(f"store {self.name!r}: cannot open Milvus Lite data at {self.path}")
        self.client = _LoadingClient(MilvusClient(uri=uri))
        _LITE_OPEN[self.path] = _LITE_OPEN.get(self.path, 0) + 1
        self._opened_lite, self._busy = True, None
        return True

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None
        self._caps = None
        if self._lease is not None:
            self._lease.close()
            self._lease = None
        if self._opened_lite:
            with _LITE_GUARD:
                self._opened_lite = False
                _LITE_OPEN[self.path] -= 1
                if not _LITE_OPEN[self.path]:
                    del _LITE_OPEN[self.path]
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self.path)

    @property
    def c(self) -> MilvusClient:  # a _LoadingClient, used as a MilvusClient
        """The client; on a Lite file busy in another process, wait for it up to ``lock_timeout``."""
        if self.client is None:
            if not (self.lite and self._busy is not None):
                raise StoreUnreachable(f"store {self.name!r} is not connected")
            from ragrev.notice import Notice

            start, notice = time.monotonic(), Notice()
            while not self._open_lite():
                waited = time.monotonic() - start
                if waited >= self.lock_timeout:
                    raise LockTimeout(self.name, self._busy, waited)
                notice(f"store {self.name!r}: its Milvus Lite file is held by {self._busy}; "
                       f"waited {waited:.0f}s of {self.lock_timeout:.0f}s")
                time.sleep(0.25)
        return self.client

    # --- meta collections ------------------------------------------------------------------
    def _meta_schema(self, name: str):
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        if name == VERSION_TABLE:
            schema.add_field("heads", DataType.VARCHAR, max_length=65535)
        elif name == LOG_TABLE:
            schema.add_field("seq", DataType.INT64)
            schema.add_field("revision", DataType.VARCHAR, max_length=256)
            schema.add_field("doc", DataType.VARCHAR, max_length=65535)
        else:
            schema.add_field("owner", DataType.VARCHAR, max_length=1024)
            schema.add_field("expires", DataType.DOUBLE)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=len(ZERO))
        return schema

    def _create_meta(self, name: str) -> None:
        ip = self.c.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        self.c.create_collection(name, schema=self._meta_schema(name), consistency_level="Strong")
        self.c.create_index(name, ip, sync=False)
        self.c.load_collection(name)

    def has_meta(self) -> bool:
        return self.c.has_collection(VERSION_TABLE)

    def ensure_meta(self) -> None:
        if self._meta_ok:
            return
        existing = set(self.c.list_collections())
        for name in (VERSION_TABLE, LOG_TABLE, LOCK_TABLE):
            if name not in existing:
                self._create_meta(name)
        self._meta_ok = True

    def read_heads(self) -> tuple[str, ...]:
        if not self.has_meta():
            return ()
        rows = self.c.query(VERSION_TABLE, filter='id == "heads"', output_fields=["heads"])
        return tuple(sorted(json.loads(rows[0]["heads"]))) if rows else ()

    def write_heads(self, heads) -> None:
        self.ensure_meta()
        self.c.upsert(VERSION_TABLE, [{"id": "heads", "heads": json.dumps(sorted(heads)), "v": ZERO}])

    def _log_write(self, record: dict) -> None:
        doc = json.dumps(record, default=str)
        if len(doc.encode()) > 65535:
            raise RagrevError(f"store {self.name!r}: a journal record of {len(doc)} bytes does not fit in ragrev_log "
                              "(a resume token or captured value is too large)")
        self.c.upsert(LOG_TABLE, [{"id": record["id"], "seq": int(record.get("seq") or 0),
                                   "revision": str(record.get("revision") or ""), "doc": doc, "v": ZERO}])
        self._log_cache[record["id"]] = record

    def log_append(self, record: dict) -> None:
        self.ensure_meta()
        self._log_write({k: record.get(k) for k in LOG_FIELDS})

    def log_update(self, record_id: str, fields: dict) -> None:
        record = self._log_cache.get(record_id)
        if record is None:
            rows = self.c.query(LOG_TABLE, filter=f"id == {lit(record_id)}", output_fields=["doc"])
            if not rows:
                return
            record = json.loads(rows[0]["doc"])
        self._log_write({**record, **{k: v for k, v in fields.items() if k in LOG_FIELDS}})

    def log_records(self, revision: str | None = None) -> list[dict]:
        if not self.c.has_collection(LOG_TABLE):
            return []
        filt = None if revision is None else f"revision == {lit(revision)}"
        records = [json.loads(r["doc"]) for rows in self.scan(LOG_TABLE, filt, fields=["doc"], batch=2000)
                   for r in rows]
        records.sort(key=lambda r: (r.get("seq") or 0))
        for r in records:
            self._log_cache[r["id"]] = r
        return [dict(r) for r in records]

    def log_clear(self) -> None:
        if self.c.has_collection(LOG_TABLE):
            self.c.drop_collection(LOG_TABLE)
        self._create_meta(LOG_TABLE)
        self._log_cache.clear()

    # --- lock ---------------------------------------------------------------------------
    def _lock_row(self):
        """The lease: owner, fencing token, time taken (kept in the ``owner``
        field as ``owner#token#taken``: the lock collection's schema predates
        them) and expiry (0 once released); None when there is none."""
        rows = self.c.query(LOCK_TABLE, filter='id == "lock"', output_fields=["owner", "expires"])
        if not rows:
            return None
        owner, _, rest = rows[0]["owner"].partition("#")
        token, _, taken = rest.partition("#")
        return {"owner": owner, "token": int(token) if token.isdigit() else 0,
                "taken": float(taken) if taken.replace(".", "", 1).isdigit() else None,
                "expires": rows[0]["expires"]}

    def _lock_write(self, owner: str, token: int, taken: float, expires: float) -> None:
        self.c.upsert(LOCK_TABLE, [{"id": "lock", "owner": f"{owner}#{token}#{taken:.3f}", "expires": expires, "v": ZERO}])

    def _stale(self, owner: str) -> bool:
        """A lease of a process that cannot hold it: on this host and not alive,
        or (Lite) any other process, since this one has the file open."""
        pid = local_pid(owner)
        return pid is not None and (self.lite or not pid_alive(pid))

    def _lease_store(self):
        """The SQL store holding this server's lease (option ``lock_url``), or None.

        Milvus has no compare-and-set, so two runners taking the lease row at
        the same moment can both read back their own write; a SQL lease row is
        taken by a conditional UPDATE/INSERT, which only one can win. The row
        is keyed by this server's URL and database, apart from the SQL store's own."""
        url = self.config.options.get("lock_url")
        if self.lite or not url:
            return None
        if self._lease is None:
            import hashlib

            from ragrev.config import StoreConfig
            from ragrev.stores.sql import SqlStore

            store = SqlStore(StoreConfig(f"{self.name}-lock", str(url), "sql"))
            store.lock_name = "m" + hashlib.sha1(f"{self.uri}/{self.db_name}".encode()).hexdigest()[:30]
            store.connect()
            store.ensure_meta()
            self._lease = store
        return self._lease

    def lock_try(self, owner: str, lease: float) -> str | None:
        if (held := self._lease_store()) is not None:
            holder = held.lock_try(owner, lease)
            self.lock_token = held.lock_token
            return holder
        if self.client is None and self.lite and not self._open_lite():
            return self._busy
        self.ensure_meta()
        now = time.time()
        row = self._lock_row()
        if row and row["owner"] != owner and row["expires"] > now and not self._stale(row["owner"]):
            return f"{row['owner']} (lease expires in {row['expires'] - now:.0f}s)"
        mine = row is not None and row["owner"] == owner
        token = (row["token"] if mine else row["token"] + 1) if row else 1
        self._lock_write(owner, token, row["taken"] or now if mine else now, now + lease)
        if not self.lite and not mine:
            time.sleep(0.2)  # let a concurrent taker's write land, then see who won
            row = self._lock_row()
            if row and (row["owner"], row["token"]) != (owner, token):
                return f"{row['owner']} (lease expires in {row['expires'] - time.time():.0f}s)"
        if self.lite:
            _write_json(os.path.join(self.path, LEASE_FILE), {"owner": owner, "expires": now + lease})
        self.lock_token = token
        return None

    def lock_renew(self, fence) -> str | None:
        if (held := self._lease_store()) is not None:
            return held.lock_renew(fence)
        # Milvus has no compare-and-set: read, compare, write. A takeover
        # between the read and the write is possible on a server (not on Lite,
        # whose file one process holds); the next check sees the takeover.
        row = self._lock_row()
        if row is None or (row["owner"], row["token"]) != (fence.owner, fence.token) or not row["expires"]:
            return took_over(row and row["owner"], utc(row and row["taken"]), released=bool(row) and not row["expires"])
        now = time.time()
        self._lock_write(fence.owner, fence.token, row["taken"] or now, now + fence.lease)
        return None

    def lock_release(self, owner: str) -> None:
        if self._lease is not None:
            self._lease.lock_release(owner)
            return
        if self.client is None:
            return
        row = self._lock_row()
        if row and row["owner"] == owner:
            self._lock_write(owner, row["token"], row["taken"] or time.time(), 0.0)
        if self.lite:
            try:
                os.remove(os.path.join(self.path, LEASE_FILE))
            except OSError:
                pass

    # --- collections ------------------------------------------------------------------
    def user_collections(self) -> list[str]:
        """The user's collections (ragrev's own and the trash left out)."""
        return sorted(n for n in self.c.list_collections() if not n.startswith(RESERVED_PREFIX))

    def is_collection(self, name: str) -> bool:
        return name in self.c.list_collections()

    def aliases(self, collection: str = "") -> list[str]:
        """Aliases (of ``collection``, or all) in this store's database: Milvus
        2.3 resolves alias calls in ``default`` unless the request names the
        database, and pymilvus names it only for this one."""
        kw = {"db_name": self.db_name} if not self.lite and self.db_name else {}
        return list(self.c.list_aliases(collection, **kw).get("aliases", []))

    def alias_target(self, name: str) -> str | None:
        if self.lite or not self.db_name:
            try:
                return self.c.describe_alias(name)["collection_name"]
            except MilvusException:
                return None
        # describe_alias has no database on Milvus 2.3: describe the collection the alias names
        if name not in self.aliases():
            return None
        try:
            return self.c.describe_collection(name).get("collection_name")
        except MilvusException:
            return None

    def resolve(self, name: str) -> str | None:
        """The collection behind ``name`` (itself, or the target of an alias); None if neither."""
        if self.is_collection(name):
            return name
        return self.alias_target(name)

    def need(self, op, name: str) -> str:
        phys = self.resolve(name)
        if phys is None:
            raise op.fail(f"no collection {name!r}")
        return phys

    def aliases_of(self, name: str) -> list[str]:
        return sorted(self.aliases(name))

    def collection_state(self, name: str) -> CollectionState:
        """The schema and indexes of a collection (or of the one an alias names)."""
        d = self.c.describe_collection(name)
        phys = d.get("collection_name") or name
        fields = {}
        for f in d["fields"]:
            params = f.get("params") or {}
            ftype = DataType(f["type"]).name
            default = f.get("default_value")
            if default is not None and hasattr(default, "WhichOneof"):
                kind = default.WhichOneof("data")
                default = getattr(default, kind) if kind else None
            fields[f["name"]] = {
                "name": f["name"], "type": ftype, "primary": bool(f.get("is_primary")),
                "auto_id": bool(f.get("auto_id") or (f.get("is_primary") and d.get("auto_id"))),
                "dim": int(params["dim"]) if "dim" in params else None,
                "max_length": int(params["max_length"]) if "max_length" in params else None,
                "element_type": DataType(f["element_type"]).name if f.get("element_type") else None,
                "max_capacity": int(params["max_capacity"]) if "max_capacity" in params else None,
                "nullable": bool(f.get("nullable")), "default": default, "description": f.get("description") or "",
            }
        indexes = {}
        for iname in self.c.list_indexes(phys):
            info = self.c.describe_index(phys, iname) or {}
            params = dict(info["params"]) if isinstance(info.get("params"), dict) else \
                {k: _number(v) for k, v in info.items() if k not in _INDEX_INFO_KEYS}
            params.pop("params", None)
            indexes[info.get("field_name") or iname] = {
                "index_type": str(info.get("index_type", "AUTOINDEX")).upper(),
                "metric_type": str(info["metric_type"]).upper() if info.get("metric_type") else None,
                "params": params}
        return CollectionState(fields, bool(d.get("enable_dynamic_field")), indexes, d.get("description") or "",
                               read_contract(d))

    def create(self, name: str, cs: CollectionState, trash: bool = False) -> None:
        """Create a collection from a schema (``trash``: flat indexes, no auto id:
        a copy kept for an inverse), or finish creating it: Milvus creates a
        collection and its indexes in separate calls, so a run killed between
        them leaves the collection without indexes; called again, this adds
        the missing ones (and loads it). The caller checks that an existing
        collection is the one it created."""
        exists = self.is_collection(name)
        have = set(self.collection_state(name).indexes) if exists else set()
        ip = self.c.prepare_index_params()
        for fname, spec in cs.indexes.items():
            ftype = cs.fields[fname]["type"]
            if fname in have or (trash and ftype not in VECTOR_TYPES):
                continue
            if trash and ftype not in ("SPARSE_FLOAT_VECTOR", "BINARY_VECTOR"):
                spec = {"index_type": "FLAT", "metric_type": spec["metric_type"], "params": {}}
            ip.add_index(fname, **_index_args(spec, self.caps))
        if not exists:
            self.c.create_collection(name, schema=self._schema(cs, trash), consistency_level="Strong")
        if cs.embedding and not trash:
            self.c.alter_collection_properties(name, properties={CONTRACT_PROPERTY: json.dumps(cs.embedding)})
        if len(ip):
            if exists:
                self.c.release_collection(name)
            self.c.create_index(name, ip, sync=exists and not self.lite)  # new: empty, nothing to wait for
        self.load(name)

    @staticmethod
    def _schema(cs: CollectionState, trash: bool):
        auto = any(f["auto_id"] for f in cs.fields.values()) and not trash
        schema = MilvusClient.create_schema(auto_id=auto, enable_dynamic_field=cs.dynamic, description=cs.description)
        for f in cs.fields.values():
            kw = {}
            if f["primary"]:
                kw["is_primary"] = True
            for key in ("dim", "max_length", "max_capacity", "description"):
                if f.get(key):
                    kw[key] = f[key]
            if f.get("element_type"):
                kw["element_type"] = DataType[f["element_type"]]
            if f.get("nullable"):
                kw["nullable"] = True
            if f.get("default") is not None:
                kw["default_value"] = f["default"]
            schema.add_field(f["name"], DataType[f["type"]], **kw)
        return schema

    def create_index(self, collection: str, fname: str, spec: dict) -> None:
        ip = self.c.prepare_index_params()
        ip.add_index(fname, **_index_args(spec, self.caps))
        self.c.release_collection(collection)
        self.c.create_index(collection, ip, sync=not self.lite)  # Lite builds it in load()
        self.load(collection)

    def load(self, name: str) -> None:
        try:
            self.c.load_collection(name)
        except MilvusException:  # e.g. a vector field without index on a server: stays released
            pass

    def rename(self, old: str, new: str, load: bool = True) -> None:
        self.c.release_collection(old)
        self.c.rename_collection(old, new)
        if load:
            self.load(new)

    def trash_name(self, name: str, tag: str = "") -> str:
        base = f"{TRASH_PREFIX}{int(time.time())}_{name}" + (f"_{tag}" if tag else "")
        existing = set(self.c.list_collections())
        for n in itertools.count(1):
            candidate = (base if n == 1 else f"{base}_{n}")[:255]
            if candidate not in existing:
                return candidate

    def fresh_name(self, logical: str) -> str:
        """``<logical>_v<n>``: the next generation not used by a collection, an alias or the trash."""
        names = self.c.list_collections()
        used = set(names) | set(self.aliases())
        trashed = [n[len(TRASH_PREFIX):].partition("_")[2] + "_" for n in names if n.startswith(TRASH_PREFIX)]
        return next(f"{logical}_v{n}" for n in itertools.count(2) if f"{logical}_v{n}" not in used
                    and not any(t.startswith(f"{logical}_v{n}_") for t in trashed))

    def soft_drop(self, name: str, trash: str) -> None:
        if self.is_collection(name):
            self.rename(name, trash, load=False)

    def count(self, name: str, filter: str | None = None) -> int:
        rows = self.c.query(name, filter=filter or "", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def pk_of(self, name: str) -> str:
        return next(f["name"] for f in self.c.describe_collection(name)["fields"] if f.get("is_primary"))

    def scan(self, name: str, filter: str | None = None, after=None, batch: int = 1000, fields=("*",), pk=None):
        """Rows of ``name`` (matching ``filter``) in primary-key order, after
        ``after``, ``batch`` at a time: one list per page."""
        pk = pk or self.pk_of(name)
        batch = max(1, min(int(batch), MAX_PAGE))
        last = after
        while True:
            parts = ([f"{pk} > {lit(last)}"] if last is not None else []) + ([f"({filter})"] if filter else [])
            rows = self.c.query(name, filter=" and ".join(parts), output_fields=list(fields), limit=batch,
                                iterator="True", reduce_stop_for_best="True")
            if not rows:
                return
            yield rows
            if len(rows) < batch:
                return
            last = rows[-1][pk]

    def get(self, name: str, ids: list, fields=("*",)) -> list[dict]:
        return self.c.get(name, ids=list(ids), output_fields=list(fields)) if ids else []

    # --- planning ------------------------------------------------------------------
    def _entry(self, name: str):
        if self.is_collection(name):
            return ("collection", self.collection_state(name))
        target = self.alias_target(name)
        return ("alias", target) if target else None

    def schema_state(self) -> SchemaState:
        return SchemaState(self._entry, self.caps)

    def preflight(self, ops: list) -> None:
        """Simulate the run's steps on the store's schema (see
        :mod:`ragrev.ops.milvus`); filters on collections no earlier step
        touches are tried on the server (a one-row query). A step that was
        interrupted (its journal record not done) may have done its work
        already (e.g. killed after a drop, before it was journaled): if its
        simulation fails, the steps after it are simulated on the store as it is."""
        state, touched = self.schema_state(), set()
        interrupted = {r.get("digest") for r in self.log_records()
                       if r.get("type") == "step" and r.get("outcome") != "done"}
        for op in ops:
            if not isinstance(op, MilvusOp):
                continue
            try:
                op.simulate(state)
            except OperationError:
                if op.digest() not in interrupted:
                    raise
                state = self.schema_state()
            name = getattr(op, "collection", None) or getattr(op, "source", None)
            filt = getattr(op, "filter", None)
            if filt and (phys := self.resolve(name)):
                try:
                    self.c.query(phys, filter=filt, limit=1, output_fields=[self.pk_of(phys)])
                except MilvusException as e:
                    # an earlier step may change the collection's fields: then only a syntax error counts
                    if name not in touched or _syntax_error(_first_line(e)):
                        raise op.fail(f"filter {filt!r} on {name!r}: {_first_line(e)}") from None
            touched |= {v for k, v in vars(op).items() if isinstance(v, str) and k in _NAME_PARAMS}

    def purge(self, older_than: float | None = None) -> list[str]:
        dropped, now = [], time.time()
        for name in self.c.list_collections():
            if not name.startswith(TRASH_PREFIX):
                continue
            stamp = name[len(TRASH_PREFIX):].split("_", 1)[0]
            if older_than is not None and stamp.isdigit() and now - int(stamp) < older_than:
                continue
            self.c.drop_collection(name)
            dropped.append(name)
        return dropped


# --- Lite file lock helpers: in ragrev.stores.milvus_lite_read (imported above) --------------------


def _flock_pid(path: str) -> int | None:
    try:
        ino = os.stat(os.path.join(path, "LOCK")).st_ino
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(ino):
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


def _lite_holder(path: str) -> str:
    pid = _flock_pid(path)
    try:
        with open(os.path.join(path, LEASE_FILE)) as f:
            owner = json.load(f)["owner"]
        if pid is None or f":{pid}:" in owner:
            return f"{owner} (it has {path} open)"
    except (OSError, ValueError, KeyError):
        pass
    return f"another process{f' (pid {pid})' if pid else ''} that has {path} open"


def _write_json(path: str, data) -> None:
    try:
        with open(path, "w") as f:
            json.dump(data, f)
    except OSError:
        pass


#: what a server without defaults for HNSW (before Milvus 2.4) is given when a revision leaves them out
HNSW_DEFAULTS = {"M": 16, "efConstruction": 200}


def _index_args(spec: dict, caps=None) -> dict:
    """Arguments of ``IndexParams.add_index``: build params both as flat keys
    (what servers read) and as a ``params`` JSON value (what Milvus Lite reads).
    On a server without HNSW defaults the missing ones are :data:`HNSW_DEFAULTS`."""
    kw = {"index_type": spec["index_type"]}
    if spec.get("metric_type"):
        kw["metric_type"] = spec["metric_type"]
    params = dict(spec.get("params") or {})
    if caps is not None and not caps.hnsw_defaults and spec["index_type"] == "HNSW":
        params = {**HNSW_DEFAULTS, **params}
    if params:
        kw["params"] = {**params, "params": dict(params)}
    return kw


def _number(value):
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return value


# the implementations of the operations register themselves
from ragrev.stores import milvus_steps  # noqa: E402,F401
