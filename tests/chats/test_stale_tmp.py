"""A runner SIGKILLed while writing an archive part leaves its temporary file
(``.part-<id>.jsonl.gz.<pid>.tmp``) in cold storage; the next archive into
that month removes it, so cold storage ends as after an uninterrupted run
(found by the reliability harness, issue 9). A live writer's file is kept."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.chats import CHATS, messages


def test_an_archive_removes_temporary_files_of_dead_writers(chat_env):
    chat_env.seed(messages(20, 5))
    month = chat_env.cold / "conversations" / "2024-01"
    month.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = month / f".part-0123456789abcdef0123.jsonl.gz.{dead}.tmp"
    live = month / f".part-fedcba9876543210fedc.jsonl.gz.{os.getpid()}.tmp"
    stale.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    chat_env.project.add("a1", None, f'''
        def upgrade(op):
            {CHATS}.archive(older_than="30d", to="file://./var/cold")
    ''')
    chat_env.project.cli("upgrade", "head", "-q")
    assert not stale.exists() and live.exists()
    assert list(month.glob("part-*.jsonl.gz"))
