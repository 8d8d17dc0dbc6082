"""Test helpers (sql), imported by the test modules and conftest files."""
from __future__ import annotations

import hashlib
import json
import time

import sqlalchemy as sa


def user_tables(url: str):
    """``(table, columns, indexes, rows)`` for each of the user's tables (ragrev's own
    left out), reflected: columns and indexes sorted, rows as mappings in the
    database's order. Column order does not count: a restored column comes back
    at the end of its table (as in Alembic)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            insp = sa.inspect(c)
            for t in sorted(insp.get_table_names()):
                if t.startswith("ragrev_"):
                    continue
                cols = sorted((col["name"], str(col["type"]), col["nullable"]) for col in insp.get_columns(t))
                idx = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t))
                table = sa.table(t, *[sa.column(col["name"]) for col in insp.get_columns(t)])
                yield t, cols, idx, list(c.execute(sa.select(table)).mappings())
    finally:
        engine.dispose()


def snapshot(url: str) -> dict:
    """The user's schema (reflected) and a hash of every table's rows; ragrev's own tables excluded
    (see :func:`user_tables`)."""
    out = {}
    for t, cols, idx, mappings in user_tables(url):
        rows = [sorted(r.items()) for r in mappings]
        digest = hashlib.sha256(json.dumps(sorted(map(repr, rows))).encode()).hexdigest()
        out[t] = {"columns": cols, "indexes": idx, "rows": digest, "count": len(rows)}
    return out


def heads(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        if not sa.inspect(c).has_table("ragrev_version"):
            return set()
        h = {r[0] for r in c.execute(sa.text("SELECT version_num FROM ragrev_version"))}
    engine.dispose()
    return h


def scalar(url, sql):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        v = c.execute(sa.text(sql)).scalar()
    engine.dispose()
    return v


def slow_sql(url: str, seconds: float) -> str:
    if url.startswith("postgresql"):
        return f"SELECT pg_sleep({seconds})"
    if url.startswith("mysql"):
        return f"SELECT SLEEP({seconds})"
    n = int(seconds * 5_000_000)  # a CPU-bound recursive count: ~0.2 us a row on this machine
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT count(*) FROM c"


def slow_project(make_project, url, seconds=0.3, steps=4, revisions=3, mode="revision", sub="proj"):
    """revisions q1..qN, each: create a table, then ``steps`` slow steps that each insert a counter row."""
    p = make_project({"meta": {"url": url, "transaction": mode}}, sub=sub)
    p.add("q0", None, "def upgrade(op):\n    op.meta.create_table('counter', sa.Column('rev', sa.String(8)), sa.Column('step', sa.Integer))\n"
                      "\ndef downgrade(op):\n    op.meta.drop_table('counter')\n")
    down = "q0"
    for r in range(1, revisions + 1):
        lines = [f"    op.meta.create_table('t{r}', sa.Column('id', sa.Integer, primary_key=True))"]
        for s in range(steps):
            lines.append(f"    op.meta.execute({slow_sql(url, seconds)!r})")
            lines.append(f"    op.meta.execute(\"INSERT INTO counter (rev, step) VALUES ('q{r}', {s})\")")
        body = "def upgrade(op):\n" + "\n".join(lines) + "\n\ndef downgrade(op):\n" \
               f"    op.meta.execute(\"DELETE FROM counter WHERE rev = 'q{r}'\")\n    op.meta.drop_table('t{r}')\n"
        p.add(f"q{r}", down, body)
        down = f"q{r}"
    return p


def wait_for_lock(url, timeout=30.0):
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as c:
                    row = c.execute(sa.text("SELECT owner FROM ragrev_lock WHERE expires > 0")).first()
                    if row:
                        return row[0]
            except sa.exc.SQLAlchemyError:
                pass
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the first runner never took the lock")
