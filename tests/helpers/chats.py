"""Test helpers (chats), imported by the test modules and conftest files."""
from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3

KINDS = ["sqlite", "mongo"]


CHATS = 'op.chat.chats("conversations", order_key="seq", ts_key="ts", seq_key="seq")'


def messages(sessions: int = 500, per_session: int = 20, start=dt.datetime(2024, 1, 1), step_hours: float = 20.0,
             prefix: str = "s", first_id: int = 1):
    """Deterministic conversations: ``sessions`` x ``per_session`` messages,
    session k starting ``k * step_hours`` after ``start``, one minute apart."""
    out, i = [], first_id
    for s in range(sessions):
        t0 = start + dt.timedelta(hours=s * step_hours)
        for k in range(per_session):
            out.append({"id": i, "session_id": f"{prefix}{s:04d}", "seq": k, "role": ("user", "assistant")[k % 2],
                        "content": f"message {i} of {prefix}{s} — ünïcode ✓ " + "x" * (i % 7), "tokens": i % 50,
                        "ts": t0 + dt.timedelta(minutes=k, microseconds=(i % 1000) * 1000),
                        "score": i / 7, "meta": {"n": i, "tags": ["a", k]}})
            i += 1
    return out


class ChatEnv:
    """One store named ``chat`` of a kind, in a project, and direct access to its data."""

    def __init__(self, kind: str, make_project, tmp_path, mongo_url=None, db_name=None, sub="proj"):
        self.kind = kind
        self.tmp_path = tmp_path
        self.embedded = None
        if kind == "sqlite":
            self.db_path = tmp_path / f"{sub}-chat.db"
            spec = self.sql_url = f"sqlite:///{self.db_path}"
        elif kind == "postgresql":
            spec = self.sql_url = mongo_url
        elif kind == "secantus":  # embedded: the ragrev process runs the server (kill tests)
            self.kind, self.embedded, self.db_name = "mongo", str(tmp_path / f"{sub}-docs"), "rag"
            spec = {"url": f"secantus:///{self.embedded}", "database": "rag"}
        else:
            self.mongo_url, self.db_name = mongo_url, db_name
            spec = {"url": mongo_url, "database": db_name}
        self.project = make_project({"chat": spec}, sub=sub)
        self.cold = self.project.root / "var" / "cold"

    # --- direct access ----------------------------------------------------------------
    def _mongo(self):
        import pymongo

        url = self.mongo_url if self.embedded is None else self._acquire()
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        if self.embedded is not None:
            close = client.close

            def release():
                close()
                from ragrev.drivers.mongo import secantus

                secantus.release(self.embedded, self._owned)

            client.close = release
        return client, client[self.db_name]

    def _acquire(self) -> str:
        from ragrev.drivers.mongo import secantus

        uri, self._owned = secantus.acquire(self.embedded, "chat-tests")
        return uri

    def _sa(self, sql: str) -> list[dict]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.sql_url)
        try:
            with engine.connect() as c:
                return [dict(r) for r in c.execute(sa.text(sql)).mappings()]
        except sa.exc.ProgrammingError:  # no such table
            return []
        finally:
            engine.dispose()

    def seed(self, rows: list[dict], collection: str = "conversations") -> None:
        if self.kind in ("sqlite", "postgresql"):
            import sqlalchemy as sa

            engine = sa.create_engine(self.sql_url)
            md = sa.MetaData()
            t = sa.Table(collection, md, sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("session_id", sa.String(40), nullable=False), sa.Column("seq", sa.Integer),
                         sa.Column("role", sa.String(16)), sa.Column("content", sa.Text),
                         sa.Column("tokens", sa.Integer), sa.Column("ts", sa.DateTime), sa.Column("score", sa.Float),
                         sa.Column("meta", sa.JSON))
            with engine.begin() as c:
                md.create_all(c)
                if rows:
                    c.execute(t.insert(), rows)
            engine.dispose()
        else:
            import bson

            client, db = self._mongo()
            coll = db[collection]
            coll.create_index([("session_id", 1), ("seq", 1)])
            docs = []
            for r in rows:
                d = {"_id": bson.ObjectId(f"{r['id']:024x}"), **{k: v for k, v in r.items() if k != "id"}}
                d["ts"] = d["ts"].replace(microsecond=d["ts"].microsecond // 1000 * 1000)  # BSON keeps ms
                d["tokens"] = bson.Int64(d["tokens"])
                d["blob"] = bson.Binary(r["content"].encode()[:8], 0)
                docs.append(d)
            if docs:
                coll.insert_many(docs)
            else:
                db.create_collection(collection)
            client.close()

    def raw(self, collection: str = "conversations") -> dict[str, str]:
        """id -> SHA-256 of the message exactly as stored (raw SQLite row / raw BSON;
        on PostgreSQL the row as the driver returns it)."""
        if self.kind == "postgresql":
            return {str(r["id"]): hashlib.sha256(repr(tuple(r.values())).encode()).hexdigest()
                    for r in self._sa(f'SELECT * FROM "{collection}"')}
        if self.kind == "sqlite":
            con = sqlite3.connect(self.db_path)
            try:
                rows = con.execute(f'SELECT * FROM "{collection}"').fetchall()
            except sqlite3.OperationalError:
                rows = []
            con.close()
            return {str(r[0]): hashlib.sha256(repr(r).encode()).hexdigest() for r in rows}
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument

        client, db = self._mongo()
        coll = db[collection].with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        out = {str(d["_id"]): hashlib.sha256(d.raw).hexdigest() for d in coll.find()}
        client.close()
        return out

    def rows(self, collection: str = "conversations", **where) -> list[dict]:
        """Messages as dicts (decoded), optionally filtered by equality."""
        if self.kind == "postgresql":
            rows = self._sa(f'SELECT * FROM "{collection}"')
        elif self.kind == "sqlite":
            con = sqlite3.connect(self.db_path)
            con.row_factory = sqlite3.Row
            try:
                rows = [dict(r) for r in con.execute(f'SELECT * FROM "{collection}"')]
            except sqlite3.OperationalError:
                rows = []
            con.close()
        else:
            client, db = self._mongo()
            rows = list(db[collection].find())
            client.close()
        return [r for r in rows if all(r.get(k) == v for k, v in where.items())]

    def execute(self, fn):
        """``fn(handle)`` with a sqlite3 connection or a pymongo Database (committed after)."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.db_path)
            try:
                fn(con)
                con.commit()
            finally:
                con.close()
        else:
            client, db = self._mongo()
            try:
                fn(db)
            finally:
                client.close()

    def tables(self) -> set[str]:
        if self.kind == "postgresql":
            names = {r["tablename"] for r in self._sa("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        elif self.kind == "sqlite":
            con = sqlite3.connect(self.db_path)
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            con.close()
        else:
            client, db = self._mongo()
            names = set(db.list_collection_names())
            client.close()
        return {n for n in names if not n.startswith("ragrev_")}

    def files(self, pattern: str = "*") -> list:
        return sorted(self.cold.rglob(pattern)) if self.cold.exists() else []


def add_store(env: ChatEnv, name: str, other: ChatEnv) -> None:
    """Make ``other``'s database a second store ``name`` of ``env``'s project."""
    if other.kind in ("sqlite", "postgresql"):
        text = f'\n[stores.{name}]\nurl = "{other.sql_url}"\n'
    else:
        text = f'\n[stores.{name}]\nurl = "{other.mongo_url}"\ndatabase = "{other.db_name}"\n'
    with open(env.project.config, "a") as f:
        f.write(text)


def archive_revision(fmt: str, older_than: str = "30d") -> str:
    return f'''
        def upgrade(op):
            chats = {CHATS}
            chats.check_sequence()
            chats.archive(older_than="{older_than}", to="file://./var/cold", format="{fmt}", batch_size=2000)
    '''
