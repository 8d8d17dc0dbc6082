"""merge_from two instances with overlapping session ids, overlapping
message ids and duplicate messages, and its inverse; check_sequence catching
a message moved out of order, a repeated and a missing sequence number."""
from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tests.helpers.chats import CHATS, add_store, messages


def instance_b():
    """Sessions s0005..s0014 (s0005..s0009 also exist in A, as other
    conversations); a copy of A's s0001 plus two new messages (a replica that
    went on); one message repeated inside B. Message ids overlap A's."""
    b1 = messages(10, 5, start=dt.datetime(2024, 3, 1))
    for m in b1:
        m["session_id"] = f"s{int(m['session_id'][1:]) + 5:04d}"
    copy = [dict(m, id=100 + m["seq"]) for m in messages(10, 5) if m["session_id"] == "s0001"]
    more = [dict(copy[-1], id=105 + k, seq=5 + k, content=f"later {k}",
                 ts=copy[-1]["ts"] + dt.timedelta(minutes=1 + k)) for k in range(2)]
    repeated = dict(b1[7], id=108)
    return b1 + copy + more + [repeated]


@pytest.mark.parametrize("on_conflict", ["prefix", "skip"])
def test_merge_two_instances(chat_env, make_env, on_conflict):
    a = chat_env
    a.seed(messages(10, 5))
    b = make_env(a.kind, sub="b")
    b.seed(instance_b())
    add_store(a, "other", b)
    before = a.raw()
    a.project.add("m1", None, f'''
        def upgrade(op):
            chats = {CHATS}
            chats.merge_from("other.conversations", on_conflict="{on_conflict}")
            chats.check_sequence()
    ''')
    a.project.cli("upgrade", "head")
    rows = a.rows()
    by_session = {}
    for r in rows:
        by_session.setdefault(r["session_id"], []).append(r)
    conflicting = [f"s{k:04d}" for k in range(5, 10)]
    if on_conflict == "prefix":
        assert len(rows) == 50 + 50 + 2
        for s in conflicting:
            assert len(by_session[s]) == 5 and len(by_session[f"other.conversations:{s}"]) == 5
    else:
        assert len(rows) == 50 + 25 + 2
        assert not any(s.startswith("other.") for s in by_session)
    for k in range(10, 15):
        assert len(by_session[f"s{k:04d}"]) == 5
    # the replica of s0001 joined it: its 5 duplicates dropped, 2 new messages added
    assert sorted(r["seq"] for r in by_session["s0001"]) == list(range(7))
    later = sorted(r["content"] for r in by_session["s0001"] if r["content"].startswith("later"))
    assert later == ["later 0", "later 1"]
    ids = [str(r["id"] if a.kind == "sqlite" else r["_id"]) for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(before[k] == h for k, h in a.raw().items() if k in before)  # A's own messages untouched
    assert len(b.raw()) == 58  # the source is unchanged

    a.project.cli("downgrade", "base")
    assert a.raw() == before


def test_merge_from_a_collection_of_the_same_store(chat_env):
    env = chat_env
    env.seed(messages(3, 4))
    env.seed(messages(3, 4) + messages(2, 4, prefix="n", first_id=50), collection="imported")
    env.project.add("m1", None, f'''
        def upgrade(op):
            {CHATS}.merge_from(collection="imported")
    ''')
    env.project.cli("upgrade", "head")
    assert len(env.rows()) == 12 + 8  # the 12 copies are duplicates of the same sessions
    env.project.cli("downgrade", "base")
    assert len(env.rows()) == 12


def move(env, session, at_seq, **changes):
    if env.kind == "sqlite":
        sets = ", ".join(f"{k} = ?" for k in changes)
        env.execute(lambda c: c.execute(f"UPDATE conversations SET {sets} WHERE session_id = ? AND seq = ?",
                                        [*(str(v) if isinstance(v, dt.datetime) else v for v in changes.values()),
                                         session, at_seq]))
    else:
        env.execute(lambda db: db.conversations.update_one({"session_id": session, "seq": at_seq}, {"$set": changes}))


@pytest.mark.parametrize("problem", ["moved", "duplicate", "gap"])
def test_check_sequence_catches(chat_env, problem):
    env = chat_env
    env.seed(messages(20, 6))
    env.project.add("c1", None, f'''
        def upgrade(op):
            {CHATS}.check_sequence()
    ''')
    env.project.add("c2", "c1", '''
        def upgrade(op):
            op.chat.chats("conversations", order_key="ts", seq_key="seq").check_sequence()
    ''')
    env.project.cli("upgrade", "head")
    env.project.cli("downgrade", "base")
    m = next(r for r in env.rows(session_id="s0007") if r["seq"] == 2)
    when = m["ts"] if isinstance(m["ts"], dt.datetime) else dt.datetime.fromisoformat(m["ts"])
    if problem == "moved":  # its time now says it came after seq 4
        move(env, "s0007", 2, ts=when + dt.timedelta(minutes=2, seconds=30))
    elif problem == "duplicate":
        move(env, "s0007", 2, seq=1)
    else:
        move(env, "s0007", 2, seq=9)
    result = env.project.cli("upgrade", "c1", expect=1)
    assert "check_sequence 'conversations'" in result.output and "session \"s0007\"" in result.output
    expected = {"moved": "goes back", "duplicate": "repeats", "gap": "a gap"}[problem]
    assert expected in result.output
    if problem == "moved":  # ordered by time instead, the sequence numbers are what is out of order
        env.project.cli("stamp", "c1")
        result = env.project.cli("upgrade", "c2", expect=1)
        assert 'session "s0007", message' in result.output and "seq 3 follows 1" in result.output


def test_merge_from_a_sql_table_into_mongodb(make_env):
    target = make_env("mongo")
    target.seed(messages(4, 3))
    source = make_env("sqlite", sub="legacy")
    source.seed(messages(4, 3) + messages(3, 3, prefix="old", first_id=100))
    add_store(target, "legacy", source)
    target.project.add("x1", None, f'''
        def upgrade(op):
            {CHATS}.merge_from("legacy")
    ''')
    target.project.cli("upgrade", "head", "--store", "chat")  # legacy is not selected: opened for the step
    rows = target.rows()
    # s0000..s0003 exist on both sides with other content (BSON fields the SQL rows lack): prefixed
    assert len(rows) == 12 + 12 + 9
    assert sum(r["session_id"].startswith("legacy.conversations:s000") for r in rows) == 12
    merged = [r for r in rows if r["session_id"].startswith("old")]
    assert sorted(r["_id"] for r in merged) == list(range(100, 109))  # integer ids kept, free here
    assert merged[0]["meta"] == {"n": merged[0]["_id"], "tags": ["a", merged[0]["seq"]]}
    target.project.cli("downgrade", "base", "--store", "chat")
    assert len(target.rows()) == 12
    con = sqlite3.connect(source.db_path)
    assert "ragrev_version" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}  # only read
    con.close()
