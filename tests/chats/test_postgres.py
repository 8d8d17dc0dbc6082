"""The SQL side on PostgreSQL (skipped when it is not reachable): archive and
restore in both formats, merge from another table, remap, check_sequence."""
from __future__ import annotations

import pytest

from tests.helpers.chats import CHATS, messages
from tests.helpers.chats import archive_revision


@pytest.fixture
def pg_env(make_env):
    return make_env("postgresql")


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_archive_restore_on_postgresql(pg_env, fmt):
    env = pg_env
    env.seed(messages(100, 20))
    before = env.raw()
    env.project.add("p1", None, archive_revision(fmt))
    env.project.cli("upgrade", "head")
    assert env.raw() == {} and len(env.rows("conversations_archive")) == 100
    env.project.cli("downgrade", "base")
    assert env.raw() == before and "conversations_archive" not in env.tables()


def test_merge_remap_and_check_on_postgresql(pg_env):
    env = pg_env
    env.seed(messages(10, 4))
    env.seed(messages(10, 4, first_id=1)[:20] + messages(5, 4, prefix="b", first_id=21), collection="imported")
    before = env.raw()
    env.project.add("p1", None, f'''
        def upgrade(op):
            chats = {CHATS}
            chats.merge_from(collection="imported")
            chats.remap_sessions(lambda s: "pg:" + s)
            chats.check_sequence()
    ''')
    env.project.cli("upgrade", "head")
    rows = env.rows()
    assert len(rows) == 40 + 20 and all(r["session_id"].startswith("pg:") for r in rows)
    assert len({r["id"] for r in rows}) == 60
    env.project.cli("downgrade", "base")
    assert env.raw() == before
