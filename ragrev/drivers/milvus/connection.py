"""The Milvus store's connection: Milvus Lite (embedded, ``milvus-lite:///path.db``)
or a Milvus server (``milvus://host:port[/db]``, ``milvus+https://host[:port][/db]``,
token from ``?token=`` or ``user:password@``), through pymilvus ``MilvusClient``;
its meta collections, its lease, and reading rows.

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
"""
from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs, unquote, urlsplit

from pymilvus import DataType, MilvusClient, MilvusException

from ragrev.config import parse_duration
from ragrev.drivers.milvus.client import KIND, MAX_PAGE, ZERO, _first_line, _LoadingClient, _quiet, lit
from ragrev.drivers.milvus.lite import (
    _LITE_GUARD, _LITE_OPEN, LEASE_FILE, _finish_lite_flushes, _flock_busy, _lite_holder, _write_json,
)
from ragrev.errors import LockTimeout, RagrevError, StoreUnreachable
from ragrev.lock import local_pid, pid_alive, took_over, utc
from ragrev.ops.vector import MILVUS_LITE
from ragrev.ops.vector_schema import parse_version, server_capabilities
from ragrev.stores import LOCK_TABLE, LOG_FIELDS, LOG_TABLE, VERSION_TABLE, Store


class MilvusConnection(Store):
    """Connection, meta collections (version, log), lease and row reads of a
    Milvus store; :class:`~ragrev.drivers.milvus.store.MilvusStore` adds the
    collections and preflight."""

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
        # a server's strong read of the lease row waits for its next time tick (about 0.2 s, more than
        # the insert of a batch of 1,000 rows): a checkpoint asks only when the lease was confirmed
        # more than a sixth of a lease ago (the renewal thread confirms it every third)
        self.checkpoint_fresh = 0.0 if self.lite or config.options.get("lock_url") else 1 / 6
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
        (:func:`ragrev.ops.vector_schema.server_capabilities`); Milvus Lite has its own set."""
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
            if self._opened_lite:
                try:
                    self._release_for_close()
                except Exception:
                    pass
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

    def _release_for_close(self) -> None:
        """Before the last store of this process closes a Lite file: release its
        collections. Closing Lite flushes what is in memory and, for a loaded
        collection, builds and saves each new segment's index next to its data
        (for FLAT, a second copy of the vectors); a program that inserts and
        exits leaves it to be built by the next load, and so does ragrev (Lite
        opens every collection released anyway)."""
        with _LITE_GUARD:
            if _LITE_OPEN.get(self.path) != 1:
                return
            for name in self.client.list_collections():
                self.client.release_collection(name)

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
            from ragrev.drivers.sql.store import SqlStore

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
        if fence.released:  # the run let the lease go while this renewal read: writing would take it back
            return None
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

    # --- reading rows ---------------------------------------------------------------------
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
