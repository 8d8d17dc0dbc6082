"""What ragrev prints in CI (issue 16): human lines by default outside a
terminal, ``--format json`` versioned documents and JSON lines, ``--format
github`` annotations and step summary, Ctrl-C (exit 130, resumable), the
revision file and line of an error raised by a user's function, and logging
under ``ragrev.*``. Runs are subprocesses with stderr on a pipe (not a
terminal), as in a CI job."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ragrev import output

LOAD = '''
def upgrade(op):
    op.docs.create_collection("documents")
    op.docs.insert("documents", [{"_id": i, "text": f"doc {i}"} for i in range(N)])
'''

SHOUT = '''
import os
import time


def shout(doc):
    if os.environ.get("SLOW"):
        time.sleep(0.01)
    if str(doc["_id"]) == os.environ.get("BAD_DOC"):
        raise ValueError(f"document {doc['_id']} has no text")
    return {**doc, "text": doc["text"].upper()}


def whisper(doc):
    return {**doc, "text": doc["text"].lower()}


def upgrade(op):
    op.docs.transform("documents", shout, inverse=whisper, batch_size=50)
'''


@pytest.fixture
def docs(make_project, mongo_url):
    db = "ci_" + uuid.uuid4().hex[:8]
    p = make_project({"docs": {"url": mongo_url, "database": db}})
    p.add("a1", None, LOAD.replace("N)", "600)"), message="load documents")
    p.add("b2", "a1", SHOUT, message="upper-case the text")

    def texts():
        import pymongo

        with pymongo.MongoClient(mongo_url) as c:
            return [d["text"] for d in c[db].documents.find({}, sort=[("_id", 1)])]

    p.texts = texts
    return p


def run(p, *args, env=None, timeout=120):
    proc = p.run(*args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def raise_line(p) -> int:
    lines = (p.revisions / "b2.py").read_text().splitlines()
    return next(i for i, ln in enumerate(lines, 1) if "raise ValueError" in ln)


def test_a_failed_then_resumed_upgrade_reads_as_lines_of_text(docs):
    code, out, err = run(docs, "upgrade", env={"BAD_DOC": "420"})
    assert code == 1, err
    lines = err.splitlines()
    assert not any(ln.lstrip().startswith("{") for ln in lines), err
    assert lines[0] == "docs: upgrade a1, load documents"
    assert "docs: upgrade b2, upper-case the text" in lines
    assert any(ln.strip().startswith("1/1 transform(collection='documents', fn=shout") for ln in lines), err
    assert lines[-1] == (f"ragrev: error: revisions/b2.py:{raise_line(docs)}: store 'docs': revision b2 failed "
                         "at step 1/1: ValueError: document 420 has no text"), err
    assert out == ""

    code, out, err = run(docs, "upgrade")
    assert code == 0, err
    assert err.splitlines()[0] == "docs: resume upgrade b2, upper-case the text"
    assert out == "Upgraded: 1 revision(s) over 1 store(s).\n"
    assert docs.texts() == [f"DOC {i}" for i in range(600)]


def test_github_format_annotates_the_failing_line(docs):
    code, out, err = run(docs, "upgrade", "--format", "github", env={"BAD_DOC": "7"})
    assert code == 1, err
    assert out.splitlines() == [f"::error file=revisions/b2.py,line={raise_line(docs)},title=ragrev::store 'docs': "
                                "revision b2 failed at step 1/1: ValueError: document 7 has no text"]


def test_json_format_versions_every_line_and_document(docs):
    code, out, err = run(docs, "upgrade", "--format", "json")
    assert code == 0, err
    events = [json.loads(ln) for ln in err.splitlines()]
    assert {e["schema_version"] for e in events} == {output.SCHEMA_VERSION}
    assert [e["event"] for e in events if e["event"] != "progress"] == [
        "revision", "step", "step_done", "step", "step_done", "revision", "step", "step_done"]
    doc = json.loads(out)
    assert doc["schema_version"] == output.SCHEMA_VERSION and doc["kind"] == "upgrade"
    assert [a["revision"] for a in doc["revisions"]] == ["a1", "b2"]
    assert json.loads(run(docs, "current", "--json")[1])["stores"][0]["heads"] == ["b2"]


@pytest.mark.slow
def test_ctrl_c_leaves_the_step_resumable_and_exits_130(docs):
    assert run(docs, "upgrade", "a1", "-q")[0] == 0
    proc = docs.run("upgrade", env={"SLOW": "1"},
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while sum(t.isupper() for t in docs.texts()) < 100:  # some batches done
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.splitlines()[-1]
    assert last.startswith("ragrev: error: interrupted (Ctrl-C) at step 1/1 of store 'docs', revision b2"), err
    assert "run 'ragrev upgrade heads' again to resume it, or 'ragrev downgrade a1' to revert it" in last
    assert "Traceback" not in err and "Aborted" not in err
    done = sum(t.isupper() for t in docs.texts())
    assert 100 <= done < 600

    code, out, err = run(docs, "upgrade")
    assert code == 0, err
    assert docs.texts() == [f"DOC {i}" for i in range(600)]


def test_the_runner_logs_under_ragrev(docs, monkeypatch):
    from ragrev import commands
    from ragrev.config import load_config

    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("ragrev.runner")
    logger.addHandler(handler)
    # setLevel, not the attribute: it also clears the loggers' isEnabledFor() caches,
    # which an earlier CLI run in this process (WARNING on "ragrev") may have filled
    level = logger.level
    logger.setLevel(logging.DEBUG)
    monkeypatch.setattr(logger, "disabled", False)  # a logging.config call elsewhere may have disabled it
    try:
        commands.migrate(load_config(docs.config), "up", "a1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    messages = [r.getMessage() for r in records]
    assert messages[0] == "docs: up a1 (apply), load documents"
    assert "docs: a1 step 2 done (600 rows)" in messages and messages[-1] == "docs: up a1 done"


# --- check / review / plan on GitHub ---------------------------------------------------------

def test_check_findings_become_annotations(make_project, tmp_path):
    p = make_project({"meta": f"sqlite:///{tmp_path}/m.db"})
    p.add("r1", None, '''
        def upgrade(op):
            op.meta.execute("-- tidy up\\nDELETE FROM sources")
        ''')
    p.cli("hash")
    result = p.cli("check", "--format", "github", expect=4)
    notes = [ln for ln in result.stdout.splitlines() if ln.startswith("::")]
    assert notes and all(ln.split(" ", 1)[1].startswith("file=revisions/r1.py,line=9,title=ragrev ")
                         for ln in notes), notes
    assert any(ln.startswith("::error ") and "title=ragrev destructive-no-way-back::" in ln for ln in notes), notes
    assert any(ln.startswith("::warning ") and "title=ragrev unbatched-full-scan::" in ln for ln in notes), notes


def test_plan_goes_to_the_step_summary(make_project, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    p = make_project({"meta": f"sqlite:///{tmp_path}/m.db"})
    p.add("r1", None, '''
        def upgrade(op):
            op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True))
        ''', message="the sources")
    p.cli("upgrade", "--plan", "--format", "github")
    text = summary.read_text()
    assert text.startswith("## ragrev upgrade plan to `heads`\n")
    assert "#### `r1` the sources — **meta** (apply)" in text and "1. `op.create_table('sources'" in text


def test_annotation_escapes_what_github_would_misread():
    line = output.annotation("warning", "100% done\nnext", "a,b:c.py", 3, "t")
    assert line == "::warning file=a%2Cb%3Ac.py,line=3,title=t::100%25 done%0Anext"


def test_drift_becomes_annotations_and_a_summary(make_project, tmp_path, monkeypatch):
    import sqlite3

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    db = tmp_path / "m.db"
    p = make_project({"meta": f"sqlite:///{db}"})
    p.add("r1", None, '''
        def upgrade(op):
            op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
        ''')
    p.cli("upgrade", "-q")
    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE sources ADD COLUMN extra TEXT")  # a change no revision made
    result = p.cli("drift", "--format", "github", expect=4)
    notes = [ln for ln in result.stdout.splitlines() if ln.startswith("::error ")]
    assert notes and all(ln.startswith("::error file=ragrev.toml,title=ragrev drift::store 'meta': ") for ln in notes)
    assert any("extra" in ln for ln in notes), notes
    assert summary.read_text().startswith("## ragrev drift: ")
