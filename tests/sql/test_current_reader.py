"""``ragrev current`` on a SQLite store reads it with Python's ``sqlite3``
(:class:`ragrev.drivers.sql.sqlite_read.SqliteReader`), without SQLAlchemy,
as its own process and in this one: both must say what the store says (the
heads, a half-applied revision with its step count), and reading changes
nothing (a file that does not exist yet is left to the store)."""
from __future__ import annotations

import json

from ragrev.config import StoreConfig
from ragrev.drivers.sql.sqlite_read import SqliteReader
from ragrev.stores import open_store

C1 = '''
def upgrade(op):
    op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))
'''

C2 = '''
def upgrade(op):
    op.meta.add_column("notes", sa.Column("body", sa.Text))
    op.meta.execute("INSERT INTO no_such_table VALUES (1)")
'''


def _config(p) -> StoreConfig:
    return StoreConfig("meta", f"sqlite:///{p.root}/var/meta.db", "sql", {"transaction": "step"})


def test_heads_and_half_applied_revision_read_alike_by_sqlite3_and_the_store(make_project):
    p = make_project({"meta": {"url": "sqlite:///./var/meta.db", "transaction": "step"},
                      "other": "sqlite:///./var/other.db"})
    p.add("c1", None, C1)
    p.add("c2", "c1", C2)
    p.cli("upgrade", "c1")
    p.cli("upgrade", "head", expect=1)                 # the execute fails after add_column committed
    proc = p.run("current")
    out, err = proc.communicate(timeout=120)
    here = p.cli("current", expect=None)
    assert proc.returncode == here.exit_code == 0, err
    assert out == here.output
    assert out.splitlines()[0].split()[:3] == ["meta", "c1", "(1"]
    assert "revision c2 half-applied (1/2 steps)" in out
    proc = p.run("current", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and json.loads(out) == json.loads(p.cli("current", "--json").output)

    before = (p.root / "var" / "meta.db").read_bytes()
    reader = SqliteReader.open(_config(p))
    try:
        answers = reader.read_heads(), reader.log_records(), reader.log_records("c2"), reader.log_records("zz")
    finally:
        reader.close()
    assert (p.root / "var" / "meta.db").read_bytes() == before
    store = open_store(_config(p))
    store.connect()
    try:
        assert answers == (store.read_heads(), store.log_records(), store.log_records("c2"), [])
        assert answers[0] == ("c1",) and answers[2]
    finally:
        store.close()


def test_a_fresh_or_in_memory_store_is_left_to_the_store(tmp_path):
    assert SqliteReader.open(StoreConfig("m", f"sqlite:///{tmp_path}/none.db", "sql", {})) is None
    assert not (tmp_path / "none.db").exists()
    assert SqliteReader.open(StoreConfig("m", "sqlite:///:memory:", "sql", {})) is None
    assert SqliteReader.open(StoreConfig("m", f"sqlite:///{tmp_path}/x.db?timeout=5", "sql", {})) is None
