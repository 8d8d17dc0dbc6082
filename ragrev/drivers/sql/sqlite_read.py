"""Reading a SQLite store's version and journal with Python's ``sqlite3``, without SQLAlchemy.

:class:`SqliteReader` answers what ``ragrev current`` asks a SQL store (its
heads and its journal records) for a plain ``sqlite:///file`` URL: the same
rows of ``ragrev_version`` and ``ragrev_log``, by the same queries, as
:class:`ragrev.drivers.sql.store.SqlStore`, opened read-only, without
importing SQLAlchemy (most of the CPU the store spends on such a read). The
SQL side's counterpart of :mod:`ragrev.drivers.milvus.lite_read`. A file that
does not exist yet, ``:memory:``, a URL with a driver or query options, and
a file ``sqlite3`` cannot open go through the store.
"""
from __future__ import annotations

import os
from urllib.parse import quote

from ragrev.stores import LOG_FIELDS, LOG_TABLE, VERSION_TABLE, decode_log_text


class SqliteReader:
    """The read side of a SQLite store that ``current`` needs (:meth:`read_heads`, :meth:`log_records`)."""

    kind = "sql"

    def __init__(self, config, conn):
        self.config = config
        self.name = config.name
        self._conn = conn

    @classmethod
    def open(cls, config) -> "SqliteReader | None":
        url = config.url
        if not url.lower().startswith("sqlite:///") or "?" in url or config.path in ("", ":memory:"):
            return None
        path = os.path.abspath(config.path)
        if not os.path.isfile(path):
            return None
        import sqlite3

        try:  # read-only: reading never creates nor changes the file
            conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error:
            return None
        return cls(config, conn)

    def _has(self, table: str) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (table,)).fetchone() is not None

    def read_heads(self) -> tuple[str, ...]:
        if not self._has(VERSION_TABLE):
            return ()
        return tuple(sorted(r[0] for r in self._conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")))

    def log_records(self, revision: str | None = None) -> list[dict]:
        if not self._has(LOG_TABLE):
            return []
        sql = f"SELECT {', '.join(LOG_FIELDS)} FROM {LOG_TABLE}"
        rows = self._conn.execute(sql + (" WHERE revision = ?" if revision is not None else "") + " ORDER BY seq",
                                  () if revision is None else (revision,)).fetchall()
        return [decode_log_text(dict(zip(LOG_FIELDS, row))) for row in rows]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
