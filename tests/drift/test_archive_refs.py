"""``check_references(pointers, "archive")``: every archive pointer's file and
manifest exist (SecantusDB, local cold storage); drift reports a file removed
by hand; and bad arguments are one line, exit 2."""
from __future__ import annotations

import json
import uuid

import pytest


REV = '''
import datetime as dt


def upgrade(op):
    op.docs.create_collection("conversations")
    old = dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc)
    op.docs.insert("conversations", [
        {"_id": f"m{s}-{i}", "session_id": f"s{s}", "seq": i, "ts": old + dt.timedelta(days=s, minutes=i),
         "role": "user", "content": f"hello {s} {i}"} for s in range(6) for i in range(3)])
    op.docs.chats("conversations", seq_key="seq").archive(older_than="30d", to="file://./cold")
    op.check_references("docs.conversations_archive", "archive")
'''


@pytest.fixture
def project(make_project, mongo_url, mongo_client):  # noqa: F811
    dbname = "ragrev_t_" + uuid.uuid4().hex[:10]
    p = make_project({"docs": {"url": mongo_url, "database": dbname}})
    p.add("a1", None, REV)
    p.cli("upgrade", "head", "-q")
    yield p
    mongo_client.drop_database(dbname)


def test_archive_pointers_are_checked_by_drift(project):
    out = json.loads(project.cli("drift", "--json").output)["stores"][0]
    assert not out["drift"] and not out["unmanaged"]
    manifests = sorted((project.root / "cold").rglob("*.manifest.json"))
    assert manifests
    manifests[0].unlink()
    out = json.loads(project.cli("drift", "--json", expect=4).output)["stores"][0]
    [d] = out["drift"]
    assert d["object"] == "references docs.conversations_archive -> archive"
    assert d["what"].startswith("1 of ") and d["actual"][0].endswith("(manifest)")


@pytest.mark.parametrize("call, message", [
    ('op.check_references("docs.conversations", "docs.x._id")', "source='docs.conversations': write store.collection.field"),
    ('op.check_references("nope.a.b", "docs.x._id")', "unknown store 'nope'"),
    ('op.check_references("docs.a.b", "docs.x._id", batch_size=0)', "batch_size must be a positive integer"),
])
def test_bad_references_are_one_line_exit_2(project, call, message):
    project.add("a2", "a1", f"def upgrade(op):\n    {call}\n")
    r = project.cli("upgrade", "head", expect=2)
    assert message in r.output and "Traceback" not in r.output


def test_bad_input_of_state_and_drift(project):
    assert "unknown store 'nope'" in project.cli("state", "--store", "nope", expect=2).output
    assert "--count-tolerance" in project.cli("drift", "--count-tolerance", "-1", expect=2).output
    assert project.cli("state", "nope", expect=2).output.startswith("ragrev: error:")
