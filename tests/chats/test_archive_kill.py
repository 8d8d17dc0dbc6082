"""A runner SIGKILLed during ``archive`` (four times, at different points) on
SQLite and on an embedded SecantusDB owned by the killed process: after each
kill every message is still in the store or in a verified file that a pointer
references; after the rerun each message is in exactly one place, and a
restore gives back every message byte for byte."""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import signal
import time

import pytest

from tests.helpers.chats import CHATS, messages


LEASE = 2.0  # lock_lease of the test projects (tests/conftest.py)


def archived_ids(env) -> collections.Counter:
    """Ids of the messages that pointers reference, each checked independently
    of ragrev's own reader: file SHA-256 against pointer and manifest, lines
    against the manifest's per-session count."""
    seen = collections.Counter()
    for p in env.rows("conversations_archive"):
        session = json.loads(p["session"]) if env.kind == "sqlite" else p["session"]
        path = env.project.root / "var" / "cold" / p["path"]
        data = path.read_bytes()
        manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
        assert hashlib.sha256(data).hexdigest() == p["file_sha256"] == manifest["sha256"]
        lines = gzip.decompress(data).decode().splitlines()
        entry = next(e for e in manifest["sessions"] if json.loads(e["session"]) == session)
        chunk = [json.loads(x) for x in lines[entry["offset"]: entry["offset"] + entry["count"]]]
        assert len(chunk) == p["messages"] and {m["session_id"] for m in chunk} == {session}
        for m in chunk:
            seen[str(m["id"]) if env.kind == "sqlite" else m["_id"]["$oid"]] += 1
    return seen


def kill_when(proc, condition, timeout=120.0) -> bool:
    """SIGKILL ``proc`` as soon as ``condition()`` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError("the archive did not get going in time")


@pytest.mark.parametrize("kind", ["sqlite", "secantus"])
def test_sigkill_during_archive_loses_and_duplicates_nothing(make_env, kind):
    env = make_env(kind)
    env.seed(messages(100, 10))  # 1,000 messages in 40 part files: room for every kill point
    before = env.raw()
    env.project.add("k1", None, f'''
        def upgrade(op):
            {CHATS}.archive(older_than="30d", to="file://./var/cold", batch_size=25)
    ''')

    def manifests(n):  # n more part files than now
        start = len(env.files("*.manifest.json"))
        return lambda: len(env.files("*.manifest.json")) >= start + n

    # kill points: after the 3rd part's checkpoint (ragrev.faults), at a random point once one /
    # twenty more part files are written, and after the whole step ran but before it was journaled
    points = [{"RAGREV_FAULTS": "checkpoint=3"}, 1, 20, {"RAGREV_FAULTS": "applied=1"}]
    kills, partial = 0, False
    for point in points:
        if isinstance(point, dict):
            proc = env.project.run("upgrade", "head", env=point)
            proc.wait(timeout=120)
            killed = proc.returncode == -signal.SIGKILL
        else:
            proc = env.project.run("upgrade", "head")
            killed = kill_when(proc, manifests(point))
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read()
        if killed:
            kills += 1
            time.sleep(LEASE + 0.3)  # the killed runner's lock lease runs out
        stored, in_files = env.raw(), archived_ids(env)
        assert set(before) <= set(stored) | set(in_files), f"a message was lost (kill point {point})"
        assert all(before[k] == h for k, h in stored.items())
        partial |= bool(stored) and bool(in_files)
    assert kills >= 3
    if kind == "secantus":  # no transaction: a kill left some sessions archived, others not
        assert partial

    env.project.cli("upgrade", "head")
    in_store, in_files = set(env.raw()), archived_ids(env)
    assert in_store == set()
    assert set(in_files) == set(before) and max(in_files.values()) == 1, "a message is archived twice"
    env.project.cli("downgrade", "base")
    assert env.raw() == before
