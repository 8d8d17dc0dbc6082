"""remap_sessions with a dict and with a function, their derived inverses,
and the refusals that come before any change."""
from __future__ import annotations

from tests.helpers.chats import CHATS, messages


def sessions(env) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in env.rows():
        out[r["session_id"]] = out.get(r["session_id"], 0) + 1
    return out


def test_remap_with_dict_and_function_and_back(chat_env):
    env = chat_env
    env.seed(messages(30, 4))
    before = env.raw()
    env.project.add("r1", None, f'''
        def upgrade(op):
            {CHATS}.remap_sessions({{"s0001": "user-1", "s0002": "user-2", "nope": "x"}})
    ''')
    env.project.add("r2", "r1", f'''
        def upgrade(op):
            {CHATS}.remap_sessions(lambda s: "legacy:" + s if s.startswith("s00") else None)
    ''')
    env.project.cli("upgrade", "r1")
    got = sessions(env)
    assert got["user-1"] == got["user-2"] == 4 and "s0001" not in got and len(got) == 30
    env.project.cli("upgrade", "r2")
    got = sessions(env)
    assert sorted(got)[:2] == ["legacy:s0000", "legacy:s0003"] and got["user-1"] == 4
    assert sum(1 for s in got if s.startswith("legacy:")) == 28
    env.project.cli("downgrade", "r1")
    assert sessions(env).keys() == {f"s{k:04d}" for k in range(30) if k not in (1, 2)} | {"user-1", "user-2"}
    env.project.cli("downgrade", "base")
    assert env.raw() == before  # field order and types kept (BSON bytes / SQLite rows)


def test_remap_onto_an_existing_session_is_refused(chat_env):
    env = chat_env
    env.seed(messages(3, 2))
    before = env.raw()
    env.project.add("r1", None, f'''
        def upgrade(op):
            {CHATS}.remap_sessions(lambda s: "s0002" if s == "s0000" else None)
    ''')
    result = env.project.cli("upgrade", "head", expect=1)
    assert "new session id \"s0002\" (for \"s0000\") already exists; nothing was changed" in result.output
    assert env.raw() == before


def test_remap_chain_is_bad_input(chat_env):
    env = chat_env
    env.seed(messages(3, 2))
    env.project.add("r1", None, f'''
        def upgrade(op):
            {CHATS}.remap_sessions({{"s0000": "s0001", "s0001": "s0009"}})
    ''')
    result = env.project.cli("upgrade", "head", expect=2)
    assert "r1.py:" in result.output and "chains and swaps need two steps" in result.output
