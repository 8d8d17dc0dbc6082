"""Chat archives on a SQL table (SQLAlchemy Core on the store's connection,
inside the runner's transaction — so an archive, restore or merge step
commits with its journal record, or not at all).

The messages table needs columns for the id (``id_key``; when the default
``_id`` is not a column, the table's single-column primary key), the session,
the order key and the time; every other column is archived and restored as
it is. Rows are archived as typed JSON (:mod:`ragrev.chats.codec`).

Pointer records live in the table ``<table>_archive`` (or ``pointers=``):
``id`` (primary key), ``session`` (the session id as JSON text), ``root``,
``path``, ``format``, ``file_sha256``, ``messages``, ``checksum``,
``first_ts``, ``last_ts``, ``archived_at``, ``tag``. It is created by the first
archive and dropped when a restore leaves it empty.
"""
from __future__ import annotations

import sqlalchemy as sa

from ragrev.chats import Backend, register_backend
from ragrev.chats import codec
from ragrev.errors import OperationError
from ragrev.stores import chunks

CHUNK = 500


def _chunks(items, size=CHUNK):
    return chunks(items, size)


class SqlChats(Backend):
    kind = "sql"
    codec = "ragrev-typed-json/1"

    def __init__(self, store, collection, keys):
        super().__init__(store, collection, keys)
        self.conn = store.conn
        self._table = None
        if self.exists():
            self.table  # noqa: B018 - reflect now: resolves id_key, checks the key columns

    # --- the messages table ----------------------------------------------------------
    def exists(self) -> bool:
        return sa.inspect(self.conn).has_table(self.collection)

    @property
    def table(self) -> sa.Table:
        if self._table is None:
            if not self.exists():
                raise OperationError(f"no table {self.collection!r} in store {self.store.name!r}")
            t = sa.Table(self.collection, sa.MetaData(), autoload_with=self.conn)
            if self.id_key not in t.c and self.id_key == "_id" and len(t.primary_key.columns) == 1:
                self.id_key = next(iter(t.primary_key.columns)).name
            for role, name in (("id_key", self.id_key), ("session_key", self.session_key),
                               ("order_key", self.order_key), ("ts_key", self.ts_key), ("seq_key", self.seq_key)):
                if name is not None and name not in t.c:
                    raise OperationError(f"table {self.collection!r} has no column {name!r} ({role}); "
                                         f"its columns: {', '.join(t.c.keys())}")
            self._table = t
        return self._table

    def _col(self, name):
        return self.table.c[name]

    def dumps(self, doc: dict) -> str:
        return codec.dumps(doc)

    def loads(self, line: str) -> dict:
        return codec.loads(line)

    def session_stats(self) -> list[tuple]:
        s, ts = self._col(self.session_key), self._col(self.ts_key)
        q = sa.select(s, sa.func.count(), sa.func.max(ts)).where(s.is_not(None)).group_by(s)
        return [tuple(r) for r in self.conn.execute(q)]

    def sessions(self) -> list:
        s = self._col(self.session_key)
        return [r[0] for r in self.conn.execute(sa.select(s).where(s.is_not(None)).distinct())]

    def _ordered(self, q):
        t = self.table
        return q.order_by(t.c[self.session_key], t.c[self.order_key], t.c[self.id_key])

    def messages(self, sessions=None):
        t = self.table
        if sessions is None:
            for row in self.conn.execute(self._ordered(sa.select(t))).mappings():
                yield dict(row)
            return
        for chunk in _chunks(sessions):
            q = self._ordered(sa.select(t).where(t.c[self.session_key].in_(chunk)))
            for row in self.conn.execute(q).mappings().all():
                yield dict(row)

    def count(self) -> int:
        return self.conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar()

    def existing(self, ids) -> list[dict]:
        t = self.table
        out = []
        for chunk in _chunks(ids):
            out += [dict(r) for r in self.conn.execute(sa.select(t).where(t.c[self.id_key].in_(chunk))).mappings()]
        return out

    def insert(self, docs: list[dict]) -> int:
        if not docs:
            return 0
        t = self.table
        unknown = sorted({k for d in docs for k in d} - set(t.c.keys()))
        if unknown:
            raise OperationError(f"table {self.collection!r} has no column(s) {', '.join(unknown)} "
                                 "for the messages being inserted")
        for chunk in _chunks(docs):
            self.conn.execute(t.insert(), chunk)
        return len(docs)

    def delete_ids(self, ids) -> int:
        t = self.table
        n = 0
        for chunk in _chunks(ids):
            n += self.conn.execute(t.delete().where(t.c[self.id_key].in_(chunk))).rowcount
        return n

    def rename_session(self, old, new) -> int:
        t = self.table
        s = t.c[self.session_key]
        return self.conn.execute(t.update().where(s == old).values({self.session_key: new})).rowcount

    def max_int_id(self):
        return self.conn.execute(sa.select(sa.func.max(self._col(self.id_key)))).scalar()

    # --- pointers -------------------------------------------------------------------------
    def _pointer_table(self) -> sa.Table:
        md = sa.MetaData()
        return sa.Table(
            self.pointer_name, md,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("session", sa.Text, nullable=False, index=True),
            sa.Column("root", sa.Text, nullable=False),
            sa.Column("path", sa.Text, nullable=False),
            sa.Column("format", sa.String(16), nullable=False),
            sa.Column("file_sha256", sa.String(64), nullable=False),
            sa.Column("messages", sa.Integer, nullable=False),
            sa.Column("checksum", sa.String(64), nullable=False),
            sa.Column("first_ts", sa.String(40)),
            sa.Column("last_ts", sa.String(40)),
            sa.Column("archived_at", sa.String(40)),
            sa.Column("tag", sa.String(255), index=True),
        )

    def _has_pointers(self) -> bool:
        return sa.inspect(self.conn).has_table(self.pointer_name)

    def pointers(self, sessions=None, tag=None) -> list[dict]:
        if not self._has_pointers():
            return []
        p = self._pointer_table()
        conds = [p.c.tag == tag] if tag is not None else []
        groups = [None] if sessions is None else list(_chunks([codec.key_text(s) for s in sessions]))
        out = []
        for chunk in groups:
            q = sa.select(p).where(*conds, *([p.c.session.in_(chunk)] if chunk is not None else []))
            for r in self.conn.execute(q).mappings():
                out.append({**r, "session": codec.key_from_text(r["session"])})
        return out

    def put_pointers(self, records: list[dict]) -> None:
        p = self._pointer_table()
        p.create(self.conn, checkfirst=True)
        rows = [{**r, "session": codec.key_text(r["session"])} for r in records]
        for chunk in _chunks(rows):
            self.conn.execute(p.delete().where(p.c.id.in_([r["id"] for r in chunk])))
            self.conn.execute(p.insert(), chunk)

    def delete_pointers(self, ids: list[str]) -> None:
        if not ids or not self._has_pointers():
            return
        p = self._pointer_table()
        for chunk in _chunks(ids):
            self.conn.execute(p.delete().where(p.c.id.in_(chunk)))

    def drop_pointers_if_empty(self) -> None:
        if not self._has_pointers():
            return
        p = self._pointer_table()
        if not self.conn.execute(sa.select(sa.func.count()).select_from(p)).scalar():
            p.drop(self.conn)


register_backend("sql", SqlChats)
