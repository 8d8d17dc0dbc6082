"""The multi-store project the reliability harness migrates, and its seed data.

Four kinds of store in one project, all embedded (no server to run):

- ``meta``: SQLite (``transaction = "step"``: each step commits with its
  journal record, so a kill leaves a half-applied revision to resume);
- ``vectors``: Milvus Lite;
- ``docs``: an embedded SecantusDB (MongoDB wire protocol), holding the
  documents and the chat history (``conversations``), whose archive goes to
  cold storage in ``var/cold``.

Before any revision runs, the stores already hold user data (the *initial*
state a ``downgrade base`` must give back): a ``feedback`` table, a
``documents`` and a ``conversations`` collection, a ``legacy`` vector
collection. Five revisions then change every store, with data steps in each:

====  =====================================================================
r1    meta: create ``sources`` and bulk-insert its rows, bulk-insert more
      feedback (explicit downgrade: no inverse for bulk inserts)
r2    vectors: create ``chunks``, insert its rows (batched); docs: an index
      and a field with a default; meta: two columns
r3    docs: a batched transform, a field computed by a function, a JSON
      Schema; vectors: copy ``chunks`` into ``chunks_backup``; meta: an index
r4    vectors: re-embed ``chunks`` into 16 dimensions; chats: check the
      sequences, archive sessions older than mid-2024; meta: drop a column
r5    docs: drop a field, count; vectors: delete rows by filter, soft-drop
      ``legacy``, count; chats: rename some sessions
====  =====================================================================

Every downgrade but r1's is derived from the inverses ragrev captured.
Sizes are small enough that an uninterrupted ``upgrade head`` takes seconds.
The documents and messages are few (the embedded SecantusDB costs time per
document; every test of ``tests/reliability/`` pays it in each run), and the
batch sizes small enough that each data step still runs in several batches,
so that checkpoint kills land inside them.
"""
from __future__ import annotations

import datetime as dt
import random
import shutil
import textwrap
from pathlib import Path

N_SOURCES = 3000
N_FEEDBACK = 1000
N_MORE_FEEDBACK = 500
N_DOCS = 500
N_CHUNKS = 3000
N_LEGACY = 300
SESSIONS, PER_SESSION = 100, 4
SESSION_EVERY_HOURS = 72  # 61 sessions before ARCHIVE_BEFORE, 39 after
ARCHIVE_BEFORE = "2024-07-01T00:00:00+00:00"
TOPICS = ("cats", "dogs", "rivers", "engines", "tea", "chess", "bridges")

CONFIG = """\
[ragrev]
script_location = "revisions"
lock_timeout = "{lock_timeout}"
lock_lease = "{lock_lease}"
"""
STORES = {
    "meta": 'url = "sqlite:///./var/meta.db"\ntransaction = "step"\n',
    "vectors": 'url = "milvus-lite:///./var/vectors.db"\n',
    "docs": 'url = "secantus:///./var/docs"\ndatabase = "rag"\n',
}

CHATS = 'op.docs.chats("conversations", session_key="session_id", order_key="seq", ts_key="ts", seq_key="seq")'

REVISIONS = {
    "r1": (None, "sources and feedback rows", f'''
        from sqlalchemy.sql import column, table

        SOURCES = table("sources", column("id", sa.Integer), column("name", sa.String),
                        column("lang", sa.String), column("weight", sa.Integer))
        FEEDBACK = table("feedback", column("id", sa.Integer), column("chunk_id", sa.Integer),
                         column("score", sa.Float), column("note", sa.String))


        def upgrade(op):
            op.meta.create_table(
                "sources",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.String(64), nullable=False),
                sa.Column("lang", sa.String(8)),
                sa.Column("weight", sa.Integer),
            )
            op.meta.bulk_insert(SOURCES, [{{"id": i, "name": f"source {{i}}", "lang": "de" if i % 3 == 0 else "en",
                                           "weight": i % 17}} for i in range({N_SOURCES})])
            op.meta.bulk_insert(FEEDBACK, [{{"id": 100000 + i, "chunk_id": i * 7 % {N_CHUNKS}, "score": i / 8,
                                            "note": f"batch two {{i}}"}} for i in range({N_MORE_FEEDBACK})])


        def downgrade(op):
            op.meta.execute("DELETE FROM feedback WHERE id >= 100000")
            op.meta.drop_table("sources")
    '''),
    "r2": ("r1", "chunks, document languages", f'''
        import random

        FIELDS = [
            {{"name": "id", "type": "INT64", "primary": True}},
            {{"name": "doc_id", "type": "INT64"}},
            {{"name": "text", "type": "VARCHAR", "max_length": 256}},
            {{"name": "vec", "type": "FLOAT_VECTOR", "dim": 8}},
        ]
        TOPICS = {TOPICS!r}


        def chunk_rows():
            rng = random.Random(2)
            for i in range({N_CHUNKS}):
                yield {{"id": i, "doc_id": i % {N_DOCS}, "text": f"chunk {{i}} on {{TOPICS[i % 7]}} and {{TOPICS[i % 5]}}",
                       "vec": [rng.randrange(-64, 64) / 64 for _ in range(8)]}}


        def upgrade(op):
            op.vectors.create_collection("chunks", fields=FIELDS,
                                         indexes={{"vec": {{"index_type": "FLAT", "metric_type": "L2"}}}})
            op.vectors.insert("chunks", rows=chunk_rows, batch_size=500)
            op.docs.create_index("documents", "title")
            op.docs.add_field("documents", "lang", default="en")
            op.meta.add_column("sources", sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))
            op.meta.add_column("feedback", sa.Column("reviewed", sa.Integer, server_default="0"))
    '''),
    "r3": ("r2", "shouted titles, word counts, a schema, a backup of the chunks", '''
        SCHEMA = {
            "type": "object",
            "required": ["title", "body", "lang", "words"],
            "properties": {
                "title": {"type": "string"},
                "body": {"type": "string"},
                "lang": {"type": "string"},
                "words": {"type": "integer", "minimum": 0},
            },
        }


        def shout(doc):
            return {**doc, "title": doc["title"].upper()}


        def hush(doc):
            return {**doc, "title": doc["title"].lower()}


        def words(doc):
            return len(doc["body"].split())


        def upgrade(op):
            op.docs.transform("documents", shout, inverse=hush, batch_size=100)
            op.docs.add_field("documents", "words", fill=words, batch_size=100)
            op.docs.set_schema("documents", SCHEMA)
            op.vectors.copy("chunks", "chunks_backup", batch_size=500)
            op.meta.create_index("ix_sources_lang", "sources", ["lang"])
    '''),
    "r4": ("r3", "a new embedding, old chats to cold storage", f'''
        import hashlib


        def embed(texts):
            return [[(b - 128) / 128 for b in hashlib.sha256(t.encode()).digest()[:16]] for t in texts]


        embed.dim = 16


        def upgrade(op):
            op.vectors.reembed("chunks", text_field="text", embed=embed, dim=16, batch_size=500)
            chats = {CHATS}
            chats.check_sequence()
            chats.archive(older_than="{ARCHIVE_BEFORE}", to="file://./var/cold", batch_size=40)
            op.meta.drop_column("feedback", "score")
    '''),
    "r5": ("r4", "tidy up", f'''
        def vip(session):
            return "vip-" + session if session.endswith("7") else None


        def upgrade(op):
            op.docs.drop_field("documents", "n")
            op.docs.expect_count("documents", {N_DOCS})
            op.vectors.delete("chunks_backup", filter="id >= 2000")
            op.vectors.drop_collection("legacy")
            op.vectors.expect_count("chunks", {N_CHUNKS})
            {CHATS}.remap_sessions(vip)
    '''),
}
HEAD = "r5"


def write_project(root: Path, lock_timeout: str = "30s", lock_lease: str = "1s",
                  order: tuple[str, ...] = ("meta", "vectors", "docs")) -> Path:
    """Write ``ragrev.toml`` (stores in ``order``: the order runners open and
    lock them) and ``revisions/`` under ``root``; return the config path."""
    (root / "revisions").mkdir(parents=True, exist_ok=True)
    config = root / "ragrev.toml"
    config.write_text(CONFIG.format(lock_timeout=lock_timeout, lock_lease=lock_lease) +
                      "".join(f"\n[stores.{name}]\n{STORES[name]}" for name in order))
    for rev, (down, message, body) in REVISIONS.items():
        text = (f'"""{message}\n\nRevision ID: {rev}\nRevises: {down}\n"""\nimport sqlalchemy as sa\n\n'
                f"revision = {rev!r}\ndown_revision = {down!r}\n\n\n" + textwrap.dedent(body).strip() + "\n")
        (root / "revisions" / f"{rev}.py").write_text(text)
    return config


# --- seed data ---------------------------------------------------------------------------

def documents() -> list[dict]:
    return [{"_id": i, "title": f"document {i} on {TOPICS[i % 7]}",
             "body": " ".join(TOPICS[(i + k) % 7] for k in range(3 + i % 9)),
             "n": i, "tags": [TOPICS[i % 3], i % 4]} for i in range(N_DOCS)]


def conversations() -> list[dict]:
    """``SESSIONS`` sessions of ``PER_SESSION`` messages, a session every ``SESSION_EVERY_HOURS`` from 2024-01-01."""
    import bson

    out, i = [], 0
    start = dt.datetime(2024, 1, 1)
    for s in range(SESSIONS):
        t0 = start + dt.timedelta(hours=SESSION_EVERY_HOURS * s)
        for k in range(PER_SESSION):
            out.append({"_id": bson.ObjectId(f"{i + 1:024x}"), "session_id": f"s{s:04d}", "seq": k,
                        "role": ("user", "assistant")[k % 2], "content": f"message {i} — ünïcode ✓ {TOPICS[i % 7]}",
                        "ts": t0 + dt.timedelta(minutes=k, milliseconds=i % 1000)})
            i += 1
    return out


def seed(var: Path) -> None:
    """Fill ``var/`` (a new directory) with the initial user data of every store."""
    var.mkdir(parents=True)
    _seed_sql(var / "meta.db")
    _seed_mongo(var / "docs")
    _seed_milvus(var / "vectors.db")


def _seed_sql(path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, chunk_id INTEGER NOT NULL, score REAL, note TEXT)")
    con.executemany("INSERT INTO feedback VALUES (?, ?, ?, ?)",
                    [(i, i * 3 % N_CHUNKS, i / 4, f"note {i}" if i % 5 else None) for i in range(N_FEEDBACK)])
    con.commit()
    con.close()


def _seed_mongo(path: Path) -> None:
    from tests.reliability.hashes import mongo_database

    with mongo_database(path, "rag") as db:
        db.documents.insert_many(documents())
        db.conversations.insert_many(conversations())
        db.conversations.create_index([("session_id", 1), ("seq", 1)])


def _seed_milvus(path: Path) -> None:
    from pymilvus import DataType, MilvusClient

    from tests.reliability.hashes import milvus_client

    rng = random.Random(5)
    with milvus_client(path) as client:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("label", DataType.VARCHAR, max_length=64)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        index = client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="L2")
        client.create_collection("legacy", schema=schema, index_params=index)
        client.insert("legacy", [{"id": i, "label": f"legacy {i}", "vec": [rng.randrange(-8, 8) / 8 for _ in range(4)]}
                                 for i in range(N_LEGACY)])
        client.flush("legacy")


def copy_var(pristine: Path, root: Path) -> None:
    """A fresh copy of the seeded stores for one project (no process may have them open)."""
    if (root / "var").exists():
        shutil.rmtree(root / "var")
    shutil.copytree(pristine, root / "var")
