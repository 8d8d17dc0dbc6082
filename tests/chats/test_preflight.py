"""Chat archive operations are checked before a run changes anything (found
by the reliability harness, issue 9): an archive of a table/collection the
store does not have, after a valid step of the same revision, was noticed only
when it ran — the earlier steps were applied first; chat operations on a
vector store were refused only when they ran. Both are now exit 2, with one
line naming the file and line, and nothing changed."""
from __future__ import annotations

import re

from tests.helpers.chats import messages


def test_an_archive_of_a_missing_collection_is_exit_2_before_anything(chat_env):
    chat_env.seed(messages(5, 3))
    before, tables = chat_env.raw(), chat_env.tables()
    create = ("op.chat.create_table('later', sa.Column('id', sa.Integer, primary_key=True))"
              if chat_env.kind == "sqlite" else "op.chat.create_collection('later')")
    path = chat_env.project.add("p1", None, f'''
        def upgrade(op):
            {create}
            op.chat.chats("conversations", order_key="seq").check_sequence()
            op.chat.chats("nope").archive(older_than="30d", to="file://./var/cold")
    ''')
    result = chat_env.project.cli("upgrade", "head", expect=2)
    line = result.output.strip().splitlines()[-1]
    assert re.search(rf"{re.escape(str(path))}:\d+: archive: store 'chat' has no (table|collection) 'nope'", line), line
    assert chat_env.raw() == before and chat_env.tables() == tables


def test_chat_operations_on_a_vector_store_are_exit_2_when_recorded(make_project):
    p = make_project({"vectors": "milvus-lite:///./var/vectors.db"})
    path = p.add("p1", None, "def upgrade(op):\n    op.vectors.chats('chunks').check_sequence()\n")
    line = p.cli("upgrade", "head", expect=2).output.strip().splitlines()[-1]
    assert f"{path}:" in line and "store 'vectors' (milvus) holds no chat archives" in line, line
