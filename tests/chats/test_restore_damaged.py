"""A damaged archive makes ``restore`` fail (exit 1) naming the file, with the
store unchanged — messages and pointers — on SQLite and MongoDB; once the
file is put back, the same downgrade restores everything."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import pytest

from tests.helpers.chats import CHATS, messages


def damage_flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_remove(path):
    path.unlink()


def damage_consistently(path):
    """Alter one message and rewrite the manifest's file checksum to match:
    only the pointer (kept in the store) can tell."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    lines[3] = lines[3].replace("message", "massage", 1)
    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    path.write_bytes(data)
    mpath = path.with_name(path.name + ".manifest.json")
    manifest = json.loads(mpath.read_text())
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    mpath.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", [damage_flip, damage_remove, damage_consistently])
def test_damaged_file_fails_restore_and_changes_nothing(chat_env, damage, tmp_path):
    env = chat_env
    env.seed(messages(40, 5, step_hours=24 * 9))
    before = env.raw()
    env.project.add("d1", None, f'''
        def upgrade(op):
            {CHATS}.archive(older_than="30d", to="file://./var/cold", batch_size=50)
    ''')
    env.project.cli("upgrade", "head")
    files = [p for p in env.files("*.jsonl.gz")]
    assert len(files) > 3
    victim = files[len(files) // 2]
    backup = tmp_path / "backup.bin"
    shutil.copyfile(victim, backup)
    archived_state, pointers = env.raw(), env.rows("conversations_archive")
    assert archived_state == {} and len(pointers) == 40

    damage(victim)
    result = env.project.cli("downgrade", "base", expect=1)
    assert str(victim) in result.output and "nothing was restored" in result.output
    assert env.raw() == archived_state
    assert sorted(map(str, env.rows("conversations_archive"))) == sorted(map(str, pointers))

    shutil.copyfile(backup, victim)
    if damage is damage_consistently:  # put the manifest back too
        manifest = json.loads(victim.with_name(victim.name + ".manifest.json").read_text())
        manifest["sha256"] = hashlib.sha256(backup.read_bytes()).hexdigest()
        victim.with_name(victim.name + ".manifest.json").write_text(json.dumps(manifest))
    env.project.cli("downgrade", "base")
    assert env.raw() == before


def test_restore_refuses_an_id_taken_by_other_content(chat_env):
    env = chat_env
    env.seed(messages(4, 3, step_hours=24 * 40))
    env.project.add("d1", None, f'''
        def upgrade(op):
            {CHATS}.archive(older_than="30d", to="file://./var/cold")
    ''')
    env.project.cli("upgrade", "head")
    assert env.raw() == {}
    intruder = messages(1, 1, prefix="x")[0]  # id 1, as the first archived message
    if env.kind == "mongo":
        env.seed([intruder])
    else:
        env.execute(lambda con: con.execute(
            "INSERT INTO conversations (id, session_id, seq, content) VALUES (1, 'x0000', 0, 'hi')"))
    result = env.project.cli("downgrade", "base", expect=1)
    assert "exists in 'conversations' with different content" in result.output
    assert len(env.raw()) == 1 and len(env.rows("conversations_archive")) == 4
