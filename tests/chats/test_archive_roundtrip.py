"""archive → restore through the CLI on SQLite and MongoDB (SecantusDB), in
jsonl.gz and Parquet: 140 messages over 28 sessions spread over 14 months go
to cold storage (month partitions, SHA-256 manifests, one pointer per session)
and come back byte-identical (raw SQLite rows / raw BSON documents hashed one
by one). Byte identity is per message, so a few per month prove it as well as
thousands would (10,000 made this test 15x slower on SecantusDB than on
SQLite); batching is exercised by tests/chats/test_archive_kill.py."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pytest

from tests.helpers.chats import CHATS, archive_revision, messages

#: the old conversations: a session every 15 days from 2024-01-01, 14 months in all
SESSIONS, PER_SESSION, STEP_HOURS = 28, 5, 360.0
OLD = SESSIONS * PER_SESSION


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_archive_then_restore_is_byte_identical(chat_env, fmt):
    env = chat_env
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    old = messages(SESSIONS, PER_SESSION, step_hours=STEP_HOURS)  # 2024-01-01 .. 2025-02: 14 months
    recent = messages(3, 5, start=now - dt.timedelta(days=1), prefix="r", first_id=20001)
    env.seed(old + recent)
    before = env.raw()
    assert len(before) == OLD + 15
    env.project.add("a1", None, archive_revision(fmt))
    env.project.cli("upgrade", "head")

    # the store keeps the recent sessions and one pointer per archived session
    remaining = env.raw()
    assert len(remaining) == 15 and all(remaining[k] == before[k] for k in remaining)
    pointers = env.rows("conversations_archive")
    assert len(pointers) == SESSIONS
    assert sum(p["messages"] for p in pointers) == OLD
    assert {p["format"] for p in pointers} == {fmt} and {p["root"] for p in pointers} == {"file://./var/cold"}

    # month partitions, each data file with a manifest whose SHA-256 matches
    data = [p for p in env.files("part-*") if not p.name.endswith(".manifest.json")]
    months = {p.parent.name for p in data}
    assert len(months) == 14 and all(len(m) == 7 and m[4] == "-" for m in months)
    total = 0
    for path in data:
        manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["format"] == fmt
        total += manifest["messages"]
    assert total == OLD
    assert {p["file_sha256"] for p in pointers} <= {
        json.loads(p.with_name(p.name + ".manifest.json").read_text())["sha256"] for p in data}

    env.project.cli("downgrade", "base")
    assert env.raw() == before  # every message, byte for byte
    assert "conversations_archive" not in env.tables()
    assert data[0].exists()  # cold storage is never deleted by ragrev


def test_archive_content_and_rerun_without_changes(chat_env):
    """The jsonl.gz lines are the messages in session/order; a second archive
    with nothing old enough changes nothing; restore of named sessions, whose
    inverse re-archives them so that the first archive's inverse finds them."""
    env = chat_env
    env.seed(messages(6, 4, start=dt.datetime(2024, 1, 30), step_hours=24))
    before = env.raw()
    env.project.add("a1", None, archive_revision("jsonl.gz"))
    env.project.add("a2", "a1", archive_revision("jsonl.gz", older_than="3000d"))
    env.project.add("a3", "a2", f'''
        def upgrade(op):
            {CHATS}.restore(sessions=["s0001", "s0004"])
    ''')
    env.project.cli("upgrade", "a2")
    files = [p for p in env.files("*.jsonl.gz")]
    assert {p.parent.name for p in files} == {"2024-01", "2024-02"}
    lines = [json.loads(x) for p in files for x in gzip.decompress(p.read_bytes()).decode().splitlines()]
    assert len(lines) == 24
    first = min(files)  # 2024-01: sessions s0000, s0001
    sessions = [json.loads(x)["session_id"] for x in gzip.decompress(first.read_bytes()).decode().splitlines()]
    assert sessions == ["s0000"] * 4 + ["s0001"] * 4
    assert env.raw() == {}

    env.project.cli("upgrade", "a3")
    assert sorted({r["session_id"] for r in env.rows()}) == ["s0001", "s0004"]
    assert len(env.rows("conversations_archive")) == 4
    env.project.cli("downgrade", "a2")  # re-archives exactly those two sessions, as a1's
    assert env.raw() == {} and len(env.rows("conversations_archive")) == 6
    env.project.cli("downgrade", "base")  # a1's inverse finds all six again
    assert env.raw() == before
