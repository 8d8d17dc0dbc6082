"""``ragrev revision --template chat-archive`` writes a revision that runs as
it is (on the first document or SQL store), and whose derived downgrade
restores what it archived."""
from __future__ import annotations

import datetime as dt

from tests.helpers.chats import messages


def test_chat_archive_template_runs_as_written(chat_env):
    env = chat_env
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    env.seed(messages(12, 3, start=dt.datetime(2024, 1, 1), step_hours=24 * 20)
             + messages(2, 3, start=now - dt.timedelta(days=2), prefix="new", first_id=500))
    before = env.raw()
    env.project.cli("revision", "-m", "archive old chats", "--template", "chat-archive", "--rev-id", "c0ffee")
    (path,) = env.project.revisions.glob("*.py")
    text = path.read_text()
    assert 'op.chat.chats("conversations"' in text and "def downgrade" not in text
    plan = env.project.cli("upgrade", "head", "--plan").output
    assert "check_sequence()" in plan and "(~36 rows)" in plan
    env.project.cli("upgrade", "head")
    assert len(env.raw()) == 6 and len(env.rows("conversations_archive")) == 12
    assert {p.parent.parent.name for p in env.files("*.jsonl.gz")} == {"conversations"}
    env.project.cli("downgrade", "base")
    assert env.raw() == before


def test_template_picks_a_chat_capable_store(make_project):
    project = make_project({"vectors": "milvus-lite:///./var/v.db", "meta": "sqlite:///./var/meta.db"})
    project.cli("revision", "-m", "archive", "--template", "chat-archive")
    (path,) = project.revisions.glob("*.py")
    assert "op.meta.chats(" in path.read_text()
