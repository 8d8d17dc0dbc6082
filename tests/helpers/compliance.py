"""Test helpers (compliance): the revision sets each driver family runs in
``tests/compliance``, and a reader per driver that looks at the store with
the engine's own client (SQLAlchemy, psycopg, pymongo; the Milvus adapter's
scan for Milvus Lite, whose file only one process may open).

A revision set is a dict of revision bodies for a store named ``s``; the same
checks run over every family's set:

- ``base``: creates ``items`` with 40 rows/documents (``seed(i)`` decides them);
- ``change``: reshapes ``items`` (a field filled from each row, an index) and drops it
  into the trash at the end of ``trash``;
- ``slow``: a data step of 60 rows in batches of 10; before its second batch it
  touches ``$COMPLIANCE_MARK`` and waits for the file ``$COMPLIANCE_GO`` (when
  set: the lease check holds the runner there). SQL has no Python in its data
  steps: there each batch follows a statement that takes as long as
  :func:`sql_slow` says;
- ``bad``: revisions preflight must refuse (each first creates ``fresh``, then
  asks for something the store cannot do: a wrong dimension, ``missing``, a
  collection/table no step makes, a filter on an unknown field).
"""
from __future__ import annotations

import hashlib
import json
import re

import sqlalchemy as sa

from tests.helpers.sql import user_tables

#: how a soft-dropped object is named in every store (docs/concepts.md, "trash")
TRASH = re.compile(r"ragrev_trash_\d+_(.+)")

_SLOW_ROWS = '''
import os, pathlib, time

def slow_rows(make):
    for batch in range(6):
        mark, go = os.environ.get("COMPLIANCE_MARK"), os.environ.get("COMPLIANCE_GO")
        if mark and batch == 1:  # not on the first: preflight may read the first row (its dimension)
            pathlib.Path(mark).touch()
            deadline = time.monotonic() + 300
            while go and not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.05)
        for i in range(100 + 10 * batch, 110 + 10 * batch):
            yield make(i)
'''

VECTOR = {
    "base": '''
def row(i):
    return {"id": i, "text": f"passage {i}", "vec": [float(i % 7), 1.0, float(i % 3), 0.5]}

def upgrade(op):
    op.s.create_collection("items", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 64},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4},
    ], indexes={"vec": {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 4}}})
    op.s.insert("items", rows=[row(i) for i in range(40)], batch_size=10)
''',
    "change": '''
def upgrade(op):
    op.s.add_field("items", "lang", "VARCHAR", max_length=8, nullable=True,
                   fill=lambda r: "de" if r["id"] % 3 == 0 else "en")
    op.s.expect_count("items", 14, filter='lang == "de"')
''',
    "trash": '''
def upgrade(op):
    op.s.drop_collection("items")
''',
    "slow": _SLOW_ROWS + '''
def row(i):
    return {"id": i, "text": f"passage {i}", "vec": [float(i % 7), 1.0, float(i % 3), 0.5]}

def upgrade(op):
    op.s.create_collection("more", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 64},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4},
    ])
    op.s.insert("more", rows=lambda: slow_rows(row), batch_size=10)
''',
    "bad": ['''
def upgrade(op):  # a wrong vector dimension
    op.s.create_collection("fresh", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4},
    ])
    op.s.insert("fresh", rows=[{"id": 1, "vec": [0.0] * 5}])
''', '''
def upgrade(op):  # a missing collection
    op.s.create_collection("fresh", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4},
    ])
    op.s.create_index("missing", "vec", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 4})
''', '''
def upgrade(op):  # a filter on a field the collection does not have
    op.s.create_collection("fresh", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4},
    ])
    op.s.expect_count("items", 0, filter="nope == 1")
'''],
}

DOCUMENT = {
    "base": '''
def docs():
    return [{"_id": i, "title": f"passage {i}", "n": i} for i in range(40)]

def upgrade(op):
    op.s.create_collection("items")
    op.s.insert("items", docs, batch_size=10)
''',
    "change": '''
def upgrade(op):
    op.s.add_field("items", "lang", fill=lambda d: "de" if d["n"] % 3 == 0 else "en", batch_size=10)
    op.s.create_index("items", "lang")
    op.s.drop_field("items", "n")
''',
    "trash": '''
def upgrade(op):
    op.s.drop_collection("items")
''',
    "slow": _SLOW_ROWS + '''
def upgrade(op):
    op.s.create_collection("more")
    op.s.insert("more", lambda: slow_rows(lambda i: {"_id": i, "title": f"passage {i}", "n": i}), batch_size=10)
''',
    "bad": ['''
def upgrade(op):  # an index on a missing collection
    op.s.create_collection("fresh")
    op.s.create_index("missing", "title")
''', '''
def upgrade(op):  # a field added to a missing collection
    op.s.create_collection("fresh")
    op.s.add_field("missing", "lang", default="en")
'''],
}

SQL = {
    "base": '''
def upgrade(op):
    op.s.create_table("items", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                      sa.Column("title", sa.String(40)),
                      sa.Column("n", sa.Integer))
    op.s.bulk_insert(sa.table("items", sa.column("id"), sa.column("title"), sa.column("n")),
                     [{"id": i, "title": f"passage {i}", "n": i} for i in range(40)])

def downgrade(op):
    op.s.drop_table("items")
''',
    "change": '''
def upgrade(op):
    op.s.add_column("items", sa.Column("lang", sa.String(8)))
    op.s.execute("UPDATE items SET lang = CASE WHEN n % 3 = 0 THEN 'de' ELSE 'en' END")
    op.s.create_index("ix_items_lang", "items", ["lang"])
    op.s.drop_column("items", "n")

def downgrade(op):
    op.s.add_column("items", sa.Column("n", sa.Integer))
    op.s.execute("UPDATE items SET n = id")
    op.s.drop_index("ix_items_lang", table_name="items")
    op.s.drop_column("items", "lang")
''',
    "trash": '''
def upgrade(op):
    op.s.drop_table("items")
''',
    # SQL's data steps are statements (the kill lands between them: RAGREV_FAULTS=applied=N); SLOW is a
    # statement of the dialect that takes COMPLIANCE_SLOW seconds (set by the test: sql_slow)
    "slow": '''
def upgrade(op):
    op.s.create_table("more", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                      sa.Column("title", sa.String(40)))
    for batch in range(6):
        op.s.execute(SLOW)
        values = ", ".join(f"({i}, 'passage {i}')" for i in range(100 + 10 * batch, 110 + 10 * batch))
        op.s.execute(f"INSERT INTO more (id, title) VALUES {values}")

def downgrade(op):
    op.s.drop_table("more")
''',
    "bad": ['''
def upgrade(op):  # a column added to a missing table
    op.s.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
    op.s.add_column("missing", sa.Column("x", sa.Integer))
''', '''
def upgrade(op):  # an index on a missing table
    op.s.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
    op.s.create_index("ix_missing", "missing", ["x"])
'''],
}

FAMILIES = {"vector": VECTOR, "document": DOCUMENT, "sql": SQL}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


# --- readers: the store's content (ragrev's own objects and the trash aside), its trash, its lease ----------

def sql_content(url: str) -> dict:
    return {t: {"columns": cols, "indexes": idx,
                "rows": sorted(json.dumps(dict(r), sort_keys=True, default=str) for r in rows)}
            for t, cols, idx, rows in user_tables(url)}


def sql_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        names = sa.inspect(c).get_table_names()
    engine.dispose()
    return sorted(names)


def sql_lock(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(sa.text("SELECT * FROM ragrev_lock")).mappings()]
    engine.dispose()
    return rows


def sql_slow(url: str, seconds: float) -> str:
    """The line that defines ``SLOW`` for the SQL ``slow`` revision."""
    from tests.helpers.sql import slow_sql

    return f"SLOW = {slow_sql(url, seconds)!r}\n"


def pg_content(root) -> dict:
    """A pgvector store's tables (columns, indexes, rows as JSON) and views, on its embedded server."""
    from psycopg import sql as psql

    from tests.helpers.pgvector import sql

    out = {}
    tables = [r[0] for r in sql(root, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                      "AND tablename NOT LIKE 'ragrev%%' ORDER BY 1")]
    for t in tables:
        cols = sql(root, "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                         "WHERE table_schema = current_schema() AND table_name = %s ORDER BY 1", (t,))
        idx = sql(root, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                        "AND tablename = %s ORDER BY 1", (t,))
        rows = sql(root, psql.SQL("SELECT to_jsonb(x)::text FROM {} x").format(psql.Identifier(t)))
        out[t] = {"columns": cols, "indexes": idx, "rows": sorted(r[0] for r in rows)}
    for name, definition in sql(root, "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema() "
                                      "AND viewname NOT LIKE 'ragrev%%'"):
        out[name] = {"view": definition}
    return out


def pg_names(root) -> list[str]:
    from tests.helpers.pgvector import sql

    return sorted(r[0] for r in sql(root, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))


def pg_lock(root) -> list[dict]:
    from tests.helpers.pgvector import sql

    return [{"owner": o, "token": t, "expires": e}
            for o, t, e in sql(root, "SELECT owner, token, expires FROM ragrev_lock")]


def mongo_content(db) -> dict:
    from tests.helpers.mongo import indexes_of, raw_docs, validator_of

    return {n: {"validator": validator_of(db, n), "indexes": indexes_of(db, n), "docs": raw_docs(db[n])}
            for n in sorted(db.list_collection_names()) if not n.startswith("ragrev_")}


def mongo_lock(db) -> list[dict]:
    return [{k: d.get(k) for k in ("owner", "token", "expires")} for d in db["ragrev_lock"].find()]


def milvus_open(config_path):
    from ragrev.config import load_config
    from ragrev.stores import open_store

    store = open_store(load_config(config_path).store("s"))
    store.connect()
    return store


def milvus_content(config_path) -> dict:
    from tests.helpers.milvus import rows_of

    store = milvus_open(config_path)
    try:
        out = {}
        for name in sorted(store.c.list_collections()):
            if name.startswith("ragrev_"):
                continue
            cs = store.collection_state(name)
            vectors = {n for n, f in cs.fields.items() if f.get("dim")}
            rows = rows_of(store, name)
            out[name] = {"fields": {n: (f["type"], f.get("dim")) for n, f in cs.fields.items()},
                         "indexes": cs.indexes, "n": len(rows),  # n: a key written twice counts twice
                         "rows": {r[cs.pk]: {k: (digest([round(x, 5) for x in v]) if k in vectors else v)
                                             for k, v in sorted(r.items())} for r in rows}}
        aliases = sorted((a, store.resolve(a)) for a in store.aliases())
        if aliases:
            out["aliases"] = aliases
        return out
    finally:
        store.close()


def milvus_names(config_path) -> list[str]:
    store = milvus_open(config_path)
    try:
        return sorted(store.c.list_collections())
    finally:
        store.close()


def milvus_lock(config_path) -> list[dict]:
    store = milvus_open(config_path)
    try:
        row = store._lock_row()
        return [row] if row else []
    finally:
        store.close()
