"""Two branches that each add a revision on the same head, in a real git
repository::

    main:     a <-- m1
               \\
    feature:    <-- f1

``review --base main`` on ``feature`` reports two heads after the merge and
the ``ragrev merge`` that fixes them; ``git merge main`` conflicts in
``revisions/ragrev.sum`` (the point of the file); after the fix, ``check``
and ``review`` pass.
"""
from __future__ import annotations

import json

import pytest

git = pytest.importorskip("git")


@pytest.fixture
def diverged(git_project):
    p = git_project
    p.add("a0a0a0a0a0a0", None, message="base revision")
    p.cli("hash")
    p.commit("base")
    p.git("checkout", "-q", "-b", "feature")
    p.cli("revision", "-m", "feature one", "--rev-id", "f1f1f1f1f1f1")
    p.commit("feature one")
    p.git("checkout", "-q", "main")
    p.cli("revision", "-m", "main one", "--rev-id", "e1e1e1e1e1e1")
    p.commit("main one")
    p.git("checkout", "-q", "feature")
    return p


def test_review_reports_two_heads_after_merge_and_the_fix(diverged):
    result = diverged.cli("review", "--base", "main", expect=4)
    md = result.output
    assert "merging `main` leaves 2 heads: `e1e1e1e1e1e1`, `f1f1f1f1f1f1`" in md
    assert 'ragrev merge -m "merge main" e1e1e1e1e1e1 f1f1f1f1f1f1' in md
    assert "| added | `f1f1f1f1f1f1` | feature one | `revisions/f1f1f1f1f1f1_feature_one.py` |" in md

    data = json.loads(diverged.cli("review", "--base", "main", "--format", "json", expect=4).stdout)
    assert data["after_merge"]["multiple_heads"] is True
    assert data["after_merge"]["heads"] == ["e1e1e1e1e1e1", "f1f1f1f1f1f1"]
    assert data["after_merge"]["fix"] == 'git merge main && ragrev merge -m "merge main" e1e1e1e1e1e1 f1f1f1f1f1f1'
    assert [(r["status"], r["revision"]) for r in data["revisions"]] == [("added", "f1f1f1f1f1f1")]
    assert data["findings"] == []  # the branch alone is fine: only the merge is not


def test_sum_file_conflicts_in_a_real_git_merge(diverged):
    p = diverged
    with pytest.raises(git.GitCommandError):
        p.git("merge", "main", "--no-edit")
    unmerged = set(p.repo.index.unmerged_blobs())
    assert unmerged == {"revisions/ragrev.sum"}  # the revision files themselves merged cleanly
    assert "<<<<<<<" in (p.revisions / "ragrev.sum").read_text()

    out = p.cli("check", expect=4).output
    assert "[sum-file] ragrev.sum has an unresolved git merge conflict" in out
    assert "[multiple-heads] the revision graph has 2 heads: e1e1e1e1e1e1, f1f1f1f1f1f1" in out
    assert 'fix: ragrev merge -m "merge heads" e1e1e1e1e1e1 f1f1f1f1f1f1' in out

    # the fix named by review: a merge revision, which rewrites the sum file
    p.cli("merge", "-m", "merge main", "--rev-id", "d0d0d0d0d0d0", "heads")
    assert "<<<<<<<" not in (p.revisions / "ragrev.sum").read_text()
    assert p.cli("check").output.strip() == "No problems found in 4 revision(s)."
    p.commit("merge main")
    data = json.loads(p.cli("review", "--base", "main", "--format", "json").stdout)
    assert data["ok"] and data["after_merge"]["heads"] == ["d0d0d0d0d0d0"]
    assert [(r["status"], r["revision"]) for r in data["revisions"]] == [("added", "f1f1f1f1f1f1"), ("added", "d0d0d0d0d0d0")]


def test_sum_file_lines_are_chained_in_graph_order(git_project):
    from ragrev import integrity

    p = git_project
    p.add("a0", None)
    p.add("b0", "a0")
    path = integrity.write_sum(p.revisions)
    total, lines, errors = integrity.parse(path.read_text())
    assert not errors and [x.revision for x in lines] == ["a0", "b0"] and total == lines[-1].chain
    assert integrity.verify_sum(p.revisions).ok

    # editing an earlier file changes its line and every chain after it
    p.add("a0", None, message="edited")
    check = integrity.verify_sum(p.revisions)
    assert check.revisions == ["a0"] and "revision a0 (a0.py) changed since ragrev.sum was written" in check.problems
    _, relined, _ = integrity.parse(integrity.render(integrity.compute(p.revisions)))
    assert all(new.chain != old.chain for new, old in zip(relined, lines))

    # CRLF checkouts hash the same
    (p.revisions / "b0.py").write_bytes((p.revisions / "b0.py").read_bytes().replace(b"\n", b"\r\n"))
    assert "b0" not in integrity.verify_sum(p.revisions).revisions


@pytest.mark.parametrize("template", ["generic", "multistore"])
def test_init_writes_an_empty_sum_file_that_check_accepts(tmp_path, template):
    from click.testing import CliRunner

    from ragrev.cli import cli

    root = tmp_path / "new"
    assert CliRunner().invoke(cli, ["init", str(root), "-t", template]).exit_code == 0
    assert (root / "revisions" / "ragrev.sum").is_file()
    result = CliRunner().invoke(cli, ["-c", str(root / "ragrev.toml"), "check"])
    assert result.exit_code == 0 and result.stdout.strip() == "No problems found in 0 revision(s)."
    CliRunner().invoke(cli, ["-c", str(root / "ragrev.toml"), "revision", "-m", "one"])
    assert CliRunner().invoke(cli, ["-c", str(root / "ragrev.toml"), "check"]).exit_code == 0


def test_check_asks_for_a_missing_sum_file_and_hash_writes_it(git_project):
    p = git_project
    p.add("a0", None)
    out = p.cli("check", expect=4).stdout
    assert "revisions/ragrev.sum: error [sum-file] ragrev.sum is missing: run 'ragrev hash' and commit it" in out
    assert p.cli("hash").stdout.strip() == f"Wrote {p.revisions / 'ragrev.sum'} (1 revision(s))"
    p.cli("check")
