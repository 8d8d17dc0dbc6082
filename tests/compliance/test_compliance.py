"""The driver compliance suite: the same checks on every driver (the
``driver`` fixture, tests/compliance/conftest.py), each family with its own
revision set (tests/helpers/compliance.py) — the vector family (Milvus Lite,
pgvector) in one vocabulary, the document store in its own, SQL in Alembic's
operations.

- round trip: ``upgrade head`` then ``downgrade base`` leaves the store's schema
  and data as they were, and so does a downgrade to the first revision;
- resume after kill: a runner SIGKILLed in the middle of a data step is rerun
  and the step is finished exactly once, with the right data;
- preflight: a revision the store cannot take is refused with exit 2 and one
  line before anything changes;
- trash: a soft drop is renamed ``ragrev_trash_<unix time>_<name>``, a downgrade
  brings it back, ``ragrev purge`` empties the trash;
- lease: while one runner works a second gets exit 3 naming the holder; the
  lease row carries the fencing token.
"""
from __future__ import annotations

import signal
import time

from tests.helpers.compliance import TRASH, sql_slow


def _add(driver, *names, slow: float = 0.0):
    """Write the family's revisions ``names`` as r1, r2... (each after the one before)."""
    down = None
    for i, name in enumerate(names, 1):
        body = driver.revisions[name]
        if name == "slow" and driver.family == "sql":
            body = sql_slow(driver.url, slow) + body
        driver.project.add(f"r{i}", down, body)
        down = f"r{i}"


def _count(entry: dict) -> int:
    return entry.get("n", len(entry.get("rows", entry.get("docs", []))))


def test_round_trip(driver):
    p = driver.project
    _add(driver, "base", "change")
    before = driver.content()
    p.cli("upgrade", "r1", "-q")
    first = driver.content()
    assert _count(first["items"]) == 40
    p.cli("upgrade", "head", "-q")
    changed = driver.content()
    assert changed != first
    p.cli("downgrade", "r1", "-q")
    assert driver.content() == first
    p.cli("upgrade", "head", "-q")  # again (a rebuild may take a new physical name: not compared)
    p.cli("downgrade", "base", "-q")
    assert driver.content() == before == {}
    assert _version(p) == "<base>"


def _version(p) -> str:
    """The store's version as ``ragrev current`` shows it (``s  r1 (...)``); ``<base>`` for none."""
    words = p.cli("current").output.split()
    return words[1] if len(words) > 1 and words[0] == "s" else "?"


def _fault(driver) -> str:
    # vector and document data steps journal each batch (a checkpoint): killed after the third of six;
    # SQL's are statements: killed after the fifth step ran, before it was journaled
    return "applied=5" if driver.family == "sql" else "checkpoint=3"


def test_resume_after_kill(driver):
    p = driver.project
    _add(driver, "base", "slow")
    p.cli("upgrade", "r1", "-q")
    killed = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": _fault(driver)})
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err
    assert _version(p) == "r1"
    # the killed runner's lease (lock_lease, 2 s) lapses by itself on a document store;
    # a rerun that waits for it must not give up first
    p.set_options(lock_timeout="10s")
    rerun = p.run("upgrade", "head", "-q")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    more = driver.content()["more"]
    assert _count(more) == 60  # each row once: no batch written twice
    text = repr(more)
    assert all(f"passage {i}" in text for i in range(100, 160)), text  # every row, each once
    assert _version(p) == "r2"
    again = p.run("upgrade", "head", "-q")
    assert again.communicate(timeout=300) and again.returncode == 0
    assert _count(driver.content()["more"]) == 60


def test_preflight_refuses_and_changes_nothing(driver):
    p = driver.project
    _add(driver, "base")
    p.cli("upgrade", "r1", "-q")
    before, names = driver.content(), driver.names()
    for body in driver.revisions["bad"]:
        p.add("r2", "r1", body)
        res = p.cli("upgrade", "head", expect=None)
        assert res.exit_code == 2, (body, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in res.output, (body, res.output)
        assert driver.content() == before and driver.names() == names, body
        assert _version(p) == "r1"


def test_trash_and_purge(driver):
    p = driver.project
    _add(driver, "base", "trash")
    p.cli("upgrade", "r1", "-q")
    first = driver.content()
    p.cli("upgrade", "head", "-q")
    assert "items" not in driver.content()
    trash = [n for n in driver.names() if n.startswith("ragrev_trash_")]
    assert all(TRASH.fullmatch(n) for n in trash), trash  # ragrev_trash_<unix time>_<what>
    dropped = [n for n in trash if TRASH.fullmatch(n).group(1).endswith("items")]
    assert len(dropped) == 1, trash
    p.cli("downgrade", "r1", "-q")
    assert driver.content() == first  # back from the trash, with its data
    p.cli("upgrade", "head", "-q")
    out = p.cli("purge").output
    assert "purged ragrev_trash_" in out, out
    assert not [n for n in driver.names() if n.startswith("ragrev_trash_")]
    assert "items" not in driver.content()
    # the dropped collection/table is named ragrev_trash_<unix time>_items (docs/operations.md, docs/store-kinds.md)
    driver.deviation("trash_name", TRASH.fullmatch(dropped[0]).group(1) == "items", dropped)


def _wait(driver, mark, proc, timeout=120.0):
    """Until the first runner holds the lease and is inside its data step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if mark.exists():
            return
        if driver.family == "sql":
            try:
                if any(r["expires"] and str(proc.pid) in r["owner"] for r in driver.lock()):
                    return
            except Exception:  # the table may not be there yet, or locked for a moment (SQLite)
                pass
        time.sleep(0.1)
    raise AssertionError("the first runner never started its data step")


def test_lease(driver, tmp_path):
    p = driver.project
    _add(driver, "base", "slow", slow=2.0)  # SQL: 6 statements of 2 s; the others wait for the file go
    p.cli("upgrade", "r1", "-q")
    mark, go = tmp_path / "started", tmp_path / "go"
    first = p.run("upgrade", "head", "-q", env={"COMPLIANCE_MARK": str(mark), "COMPLIANCE_GO": str(go)})
    try:
        _wait(driver, mark, first)
        if driver.shared:
            (row,) = driver.lock()
            assert str(first.pid) in row["owner"] and row["token"] >= 1, row
        second = p.run("upgrade", "head", "-q")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 3, err
        # it waits lock_timeout (1 s), then fails with one error line naming the holder (docs/repair.md)
        errors = [line for line in err.splitlines() if line.startswith("ragrev: error:")]
        assert len(errors) == 1 and "locked by" in errors[0] and "Traceback" not in err, err
        assert first.poll() is None  # the second runner changed nothing under the first
    finally:
        go.touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _count(driver.content()["more"]) == 60
    (row,) = driver.lock()
    assert row["token"] >= 1, row
