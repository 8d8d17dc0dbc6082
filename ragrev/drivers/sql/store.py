"""The SQL store: any SQLAlchemy URL (SQLite, PostgreSQL, MySQL...).

- Version table ``ragrev_version`` (one row per head, as ``alembic_version``),
  log ``ragrev_log``, lease ``ragrev_lock``.
- Transactions: by default a revision's steps, their journal records and the
  version stamp commit in one transaction (``transaction = "revision"``, as
  Alembic's ``transaction_per_migration``); with ``transaction = "step"`` in
  the store's table each step commits with its journal record. SQLite and
  PostgreSQL have transactional DDL (for SQLite the driver's own transaction
  handling is replaced so that DDL is covered too). On a dialect without it
  (MySQL, MariaDB, Oracle: each DDL statement commits implicitly) a revision
  cannot be one transaction: there every step commits with its journal record
  whatever ``transaction`` says, so the journal never claims fewer steps than
  the store has (a rerun resumes after the last one, a downgrade reverts
  exactly those); a statement that fails inside a step can still leave that
  one step half-done.
- The lease (``ragrev_lock``: owner, expiry, time taken, fencing token) is
  taken and renewed on its own connection, so that renewing it never waits on
  a migration's transaction. Every write transaction of a runner also checks,
  just before it commits, that owner and token are still its own, and extends
  the lease in the same transaction: a runner that lost its lease (paused past
  it, then continued) has its transaction rolled back (``LockLost``, exit 3)
  instead of committing over the next runner's work. On SQLite, whose writers
  exclude each other, the renewal from the other connection cannot run while
  the migration's transaction is open, and need not: no other runner can take
  the lease then either, and the commit renews it.
- An expired lease is free (a released one has expiry 0, its owner kept). A lease of a process on this host that is gone
  is free at once; one whose pid is alive waits for its expiry (the pid may
  belong to another process by now).
- The operations' implementations live in :mod:`ragrev.drivers.sql.steps`
  (imported when a SQL operation is first applied: the operation classes name
  it in ``impl_modules``); identifiers in the SQL they emit are quoted by the
  dialect (Alembic's operations, SQLAlchemy Core), never by hand. This module
  imports Alembic only where it runs an operation, so reading a store's
  version and journal (``ragrev current``) does not import it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from contextlib import contextmanager, nullcontext

from ragrev.errors import ConfigError, OperationError, StoreUnreachable
from ragrev.lock import LockLost, local_pid, pid_alive, took_over, utc
from ragrev.stores import (LOCK_TABLE, LOG_FIELDS, LOG_JSON_FIELDS, LOG_TABLE, TRASH_PREFIX, VERSION_TABLE,  # noqa: F401
                           Store, decode_log_text, trash_age, trash_name)

import sqlalchemy as sa

_meta = sa.MetaData()
version_table = sa.Table(VERSION_TABLE, _meta, sa.Column("version_num", sa.String(64), primary_key=True))
_TYPES = {"seq": sa.BigInteger, "step_index": sa.Integer, "rows_done": sa.BigInteger}
log_table = sa.Table(
    LOG_TABLE, _meta,
    *[sa.Column(f, _TYPES.get(f, sa.Text if f in LOG_JSON_FIELDS + ("error", "description") else sa.String(255)),
                primary_key=(f == "id")) for f in LOG_FIELDS],
)
lock_table = sa.Table(
    LOCK_TABLE, _meta,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    # DOUBLE: on MySQL a FLOAT keeps 7 digits, and the compare-and-set compares the value read back
    sa.Column("expires", sa.Double, nullable=False),
    sa.Column("acquired", sa.Double, nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
)


class SqlStore(Store):
    kind = "sql"
    commits_fenced = True

    def __init__(self, config):
        super().__init__(config)
        mode = config.options.get("transaction", "revision")
        if mode not in ("revision", "step"):
            raise ConfigError(f"[stores.{config.name}] transaction must be 'revision' or 'step', not {mode!r}")
        self.transaction_mode = mode
        self.engine = None
        self.conn = None
        self._depth = 0
        self._lock_ready = False
        self._meta_seen = False
        #: the lease row's key: ``migrate`` for this store; another store holding its lease here uses its own
        self.lock_name = "migrate"

    # --- lifecycle -------------------------------------------------------------
    def connect(self) -> None:
        url = self.config.url
        try:
            from ragrev.config import register_secrets

            register_secrets(sa.engine.make_url(url).password)  # SQLAlchemy's own reading of the URL
        except (sa.exc.ArgumentError, ValueError):
            raise ConfigError(f"store {self.name!r}: SQLAlchemy cannot parse the URL {self.config.display_url}") from None
        try:
            if url.startswith("sqlite"):
                if self.config.path not in ("", ":memory:"):
                    Path(self.config.path).parent.mkdir(parents=True, exist_ok=True)
                self.engine = sa.create_engine(url, connect_args={"timeout": 30})
                _transactional_sqlite(self.engine)
            else:
                args = {"connect_timeout": 5} if url.startswith(("postgres", "mysql", "mariadb")) else {}
                self.engine = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
            self.conn = self.engine.connect()
            self.conn.commit()
        except (sa.exc.SQLAlchemyError, ImportError) as e:
            detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreUnreachable(f"store {self.name!r}: cannot connect to {self.config.display_url}: "
                                   f"{self.config.scrub(detail)}") from None
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    # --- transactions -------------------------------------------------------------
    @contextmanager
    def _tx(self):
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self.conn.in_transaction():
            self.conn.commit()
        self._depth = 1
        sent = None
        try:
            with _writing(self.conn):
                yield
                sent = self._fence_commit()
        finally:
            self._depth = 0
        if sent is not None:
            self.fence.confirm(sent)

    def _fence_commit(self) -> float | None:
        """In the transaction about to commit: check that this runner still
        holds the lease (owner and fencing token) and extend it; raise
        :class:`LockLost` (the transaction rolls back) when not."""
        fence = self.fence
        if fence is None:
            return None
        if fence.lost is not None:
            raise LockLost(fence.lost)
        sent = fence.clock()
        res = self.conn.execute(
            lock_table.update()
            .where(lock_table.c.name == self.lock_name, lock_table.c.owner == fence.owner, lock_table.c.token == fence.token)
            .values(expires=time.time() + fence.lease))
        if res.rowcount != 1:
            row = self.conn.execute(sa.select(lock_table).where(lock_table.c.name == self.lock_name)).mappings().first()
            raise fence.lose(self.name, _holder(row))
        return sent

    @property
    def transactional_ddl(self) -> bool:
        """Whether DDL takes part in transactions here (Alembic's flag for
        the dialect; SQLite made so by :func:`_transactional_sqlite`)."""
        if self.dialect == "sqlite":
            return True
        from alembic.runtime.migration import MigrationContext

        return bool(MigrationContext.configure(connection=self.conn).impl.transactional_ddl)

    def revision_scope(self):
        if self.transaction_mode == "revision" and self.transactional_ddl:
            return self._tx()
        return nullcontext()

    def step_scope(self):
        return self._tx()

    def _write(self, stmt, params=None):
        with self._tx():
            return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)

    def _read(self, stmt):
        rows = self.conn.execute(stmt).mappings().all()
        if not self._depth:
            self.conn.commit()
        return rows

    # --- version and log -------------------------------------------------------------
    def has_meta(self) -> bool:
        found = sa.inspect(self.conn).has_table(VERSION_TABLE)
        if not self._depth:
            self.conn.commit()
        return found

    def ensure_meta(self) -> None:
        if self._meta_seen:  # seen committed: ragrev never drops them (a stamp per revision asked each time)
            return
        # read first: a runner waiting for the lease must not wait for SQLite's write lock here
        names = set(sa.inspect(self.conn).get_table_names())
        if not self._depth:
            self.conn.commit()
        if {VERSION_TABLE, LOG_TABLE, LOCK_TABLE} <= names:
            self._meta_seen = not self._depth  # outside a transaction: committed, not to be rolled back
            return
        outside = not self._depth
        with self._tx():
            _meta.create_all(self.conn, checkfirst=True)
        self._meta_seen = outside  # committed by the transaction just closed

    def read_heads(self) -> tuple[str, ...]:
        if not self.has_meta():
            return ()
        return tuple(sorted(r["version_num"] for r in self._read(sa.select(version_table.c.version_num))))

    def write_heads(self, heads) -> None:
        with self._tx():
            self.ensure_meta()
            self.conn.execute(version_table.delete())
            if heads:
                self.conn.execute(version_table.insert(), [{"version_num": h} for h in heads])

    def log_append(self, record: dict) -> None:
        with self._tx():
            self.conn.execute(log_table.insert(), _encode(record))

    def log_update(self, record_id: str, fields: dict) -> None:
        with self._tx():
            self.conn.execute(log_table.update().where(log_table.c.id == record_id).values(**_encode(fields)))

    def log_records(self, revision: str | None = None) -> list[dict]:
        if not sa.inspect(self.conn).has_table(LOG_TABLE):
            if not self._depth:
                self.conn.commit()
            return []
        q = sa.select(log_table).order_by(log_table.c.seq)
        if revision is not None:
            q = q.where(log_table.c.revision == revision)
        return [decode_log_text(dict(r)) for r in self._read(q)]

    def log_clear(self) -> None:
        with self._tx():
            self.conn.execute(log_table.delete())

    @contextmanager
    def failure_scope(self):
        if self.conn.in_transaction() and not self._depth:
            self.conn.rollback()
        yield

    # --- lock -------------------------------------------------------------------------
    def _lock_columns(self) -> None:
        """Add the fencing token to a lock table made by an older ragrev."""
        if self._lock_ready:
            return
        with self.engine.connect() as c:
            cols = {col["name"] for col in sa.inspect(c).get_columns(LOCK_TABLE)}
            c.commit()
            if "token" not in cols:
                from alembic.operations import Operations
                from alembic.runtime.migration import MigrationContext

                with _writing(c):
                    Operations(MigrationContext.configure(connection=c)).add_column(
                        LOCK_TABLE, sa.Column("token", sa.BigInteger, nullable=False, server_default="0"))
        self._lock_ready = True

    def lock_try(self, owner: str, lease: float) -> str | None:
        now = time.time()
        try:
            self._lock_columns()
            with self.engine.connect() as c:
                if self.dialect == "sqlite":  # short: a waiting runner tries again (and says it waits) within lock_timeout
                    c.exec_driver_sql("PRAGMA busy_timeout = 500")
                row = c.execute(sa.select(lock_table).where(lock_table.c.name == self.lock_name)).mappings().first()
                c.commit()
                if row is not None and row["owner"] not in (owner, "") and row["expires"] > now \
                        and not self._gone_here(row["owner"]):
                    return f"{row['owner']} (lease expires in {max(0.0, row['expires'] - now):.0f}s)"
                with _writing(c):
                    if row is None:
                        c.execute(lock_table.insert().values(name=self.lock_name, owner=owner, expires=now + lease,
                                                             acquired=now, token=1))
                        self.lock_token = 1
                        return None
                    mine = row["owner"] == owner
                    token = row["token"] if mine else row["token"] + 1
                    res = c.execute(
                        lock_table.update()
                        .where(lock_table.c.name == self.lock_name, lock_table.c.owner == row["owner"],
                               lock_table.c.expires == row["expires"], lock_table.c.token == row["token"])
                        .values(owner=owner, expires=now + lease, acquired=row["acquired"] if mine else now, token=token)
                    )
                    if res.rowcount == 1:
                        self.lock_token = token
                        return None
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            pass
        with self.engine.connect() as c:
            row = c.execute(sa.select(lock_table).where(lock_table.c.name == self.lock_name)).mappings().first()
        if row is None or not row["owner"]:
            return "another runner (busy)"
        if row["owner"] == owner:
            self.lock_token = row["token"]
            return None
        return f"{row['owner']} (lease expires in {max(0.0, row['expires'] - time.time()):.0f}s)"

    @staticmethod
    def _gone_here(owner: str) -> bool:
        """``owner`` (``host:pid:...``) was a process on this host that is gone:
        its lease is free before it expires. A live pid proves nothing (it
        may have been reused): that lease waits for its expiry."""
        pid = local_pid(owner)
        return pid is not None and not pid_alive(pid)

    def _renew_on(self, conn, fence) -> str | None:
        """Extend ``fence``'s lease on ``conn`` when it still holds it (owner and
        token match): None, else the holder that has the lock now."""
        res = conn.execute(
            lock_table.update()
            .where(lock_table.c.name == self.lock_name, lock_table.c.owner == fence.owner,
                   lock_table.c.token == fence.token)
            .values(expires=time.time() + fence.lease))
        if res.rowcount == 1:
            return None
        return _holder(conn.execute(sa.select(lock_table).where(lock_table.c.name == self.lock_name)).mappings().first())

    def lock_renew(self, fence) -> str | None:
        with self.engine.connect() as c:
            if self.dialect == "sqlite":
                c.exec_driver_sql("PRAGMA busy_timeout = 2000")
                c.commit()
            with _writing(c):
                return self._renew_on(c, fence)

    def lock_fence(self, fence) -> str | None:
        if self._depth and self.dialect == "sqlite":  # renew inside the open transaction (the only writer now)
            return self._renew_on(self.conn, fence)
        return self.lock_renew(fence)

    def renewal_blocked(self) -> bool:
        return self.dialect == "sqlite" and self._depth > 0

    def lock_release(self, owner: str) -> None:
        with self.engine.connect() as c, _writing(c):
            c.execute(lock_table.update().where(lock_table.c.name == self.lock_name, lock_table.c.owner == owner)
                      .values(expires=0.0))  # owner, time and token stay: who had it last, and the counter

    # --- operations --------------------------------------------------------------------
    def operations(self):
        """Alembic's ``Operations`` on this store's connection (made once per connection)."""
        cached = getattr(self, "_operations", None)
        if cached is None or cached[0] is not self.conn:
            from alembic.operations import Operations
            from alembic.runtime.migration import MigrationContext

            cached = self._operations = (self.conn, Operations(MigrationContext.configure(connection=self.conn)))
        return cached[1]

    def user_tables(self) -> list[str]:
        names = sa.inspect(self.conn).get_table_names()
        return sorted(n for n in names if not n.startswith("ragrev_"))

    def preflight(self, ops) -> None:
        """The tables that SQL operations (``add_column``, ``drop_column``,
        ``alter_column``, ``create_index``, ``drop_table``, ``rename_table``,
        ``bulk_insert``, ``batch_alter_table``) and chat archive operations
        (``op.<store>.chats(table)``) work on must exist before anything runs,
        unless an earlier step of the run may create them (a
        ``create_table``/``rename_table`` to that name, or any ``execute``)."""
        from alembic.operations import ops as aops

        from ragrev.ops.sql import SqlBatch, SqlOp, tables_used

        tables, created, opaque = None, set(), False
        for op in ops:
            mops = op.ops if isinstance(op, SqlBatch) else [op.mop] if isinstance(op, SqlOp) else []
            needed = ([op.table_name] if not op.schema else []) if isinstance(op, SqlBatch) else [t for m in mops for t in tables_used(m)]
            for table in needed:  # a table the run neither has nor makes first: exit 2 before anything runs
                if opaque or table in created:
                    continue
                if tables is None:
                    tables = set(sa.inspect(self.conn).get_table_names())
                    if not self._depth:
                        self.conn.commit()
                if table not in tables:
                    raise OperationError(f"{op.where()}{getattr(op, 'op_name', op.name)}: store {self.name!r} "
                                         f"has no table {table!r}")
            if isinstance(op, SqlOp):
                if isinstance(op.mop, aops.CreateTableOp):
                    created.add(op.mop.table_name)
                elif isinstance(op.mop, aops.RenameTableOp):
                    created.add(op.mop.new_table_name)
                elif isinstance(op.mop, aops.ExecuteSQLOp):
                    opaque = True
            elif getattr(op, "kind", "") == "chat" and op.name != "restore" and not opaque \
                    and op.collection not in created:
                if tables is None:
                    tables = set(sa.inspect(self.conn).get_table_names())
                    if not self._depth:
                        self.conn.commit()
                if op.collection not in tables:
                    raise OperationError(f"{op.where()}{op.name}: store {self.name!r} has no table {op.collection!r}")

    def purge(self, older_than: float | None = None) -> list[str]:
        dropped = []
        now = time.time()
        with self._tx():
            for name in sa.inspect(self.conn).get_table_names():
                if not name.startswith(TRASH_PREFIX):
                    continue
                age = trash_age(name, now)
                if older_than is not None and age is not None and age < older_than:
                    continue
                self.operations().drop_table(name)
                dropped.append(name)
        return dropped


def _holder(row) -> str:
    """Who holds a lease this runner lost (a ``ragrev_lock`` row, or None)."""
    if row is None:
        return took_over(None, "?")
    return took_over(row["owner"], utc(row["acquired"]), released=not row["expires"])


def _encode(record: dict) -> dict:
    return {k: (json.dumps(v) if k in LOG_JSON_FIELDS else v) for k, v in record.items() if k in LOG_FIELDS}


def _transactional_sqlite(engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, emit BEGIN, so DDL is
    transactional; a transaction begun after :func:`_writing` takes the write
    lock at once (``BEGIN IMMEDIATE``). A deferred transaction that reads
    first and then writes must upgrade its lock, and SQLite refuses that at
    once ("database is locked"), without waiting, when another connection
    holds the write lock — the lease renewal, on its own connection, does."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop(_IMMEDIATE, False) else "BEGIN")


_IMMEDIATE = "ragrev_begin_immediate"


def _writing(conn):
    """``conn.begin()`` for a transaction that will write (immediate on SQLite)."""
    conn.info[_IMMEDIATE] = True
    return conn.begin()

