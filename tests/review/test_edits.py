"""Edits to revisions that already reached the base branch (``review``), or
a store (``check --stores``)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("git")

TABLE = """
def upgrade(op):
    op.meta.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
"""
TABLE_AND_INDEX = TABLE + '    op.meta.create_index("ix_t_id", "t", ["id"])\n'


@pytest.fixture
def on_branch(git_project):
    p = git_project
    p.add("a1", None, TABLE)
    p.add("b2", "a1")
    p.cli("hash")
    p.commit("base")
    p.git("checkout", "-q", "-b", "feature")
    return p


def review(p, expect):
    return json.loads(p.cli("review", "--base", "main", "--format", "json", expect=expect).stdout)


def test_editing_operations_of_a_base_revision_is_reported(on_branch):
    p = on_branch
    p.add("a1", None, TABLE_AND_INDEX)
    p.cli("hash")
    p.commit("edit a1")
    data = review(p, 4)
    assert [(r["status"], r["revision"], r["note"]) for r in data["revisions"]] == [("changed", "a1", None)]
    assert [(f["rule"], f["message"], f["path"]) for f in data["findings"]] == [
        ("edited-after-base", "revision a1 is on main and its operations were edited", "revisions/a1.py")]
    assert data["after_merge"]["multiple_heads"] is False


def test_a_text_only_edit_passes(on_branch):
    p = on_branch
    p.add("a1", None, "# a comment that changes no operation\n" + TABLE, message="a better message")
    p.cli("hash")
    data = review(p, 0)  # uncommitted changes count: the working tree is reviewed
    assert [(r["status"], r["revision"], r["note"]) for r in data["revisions"]] == [
        ("changed", "a1", "text only: operations unchanged")]
    assert data["findings"] == []


def test_an_edit_can_be_allowed_and_a_deletion_cannot(on_branch):
    p = on_branch
    p.add("a1", None, "# ragrev: allow edited-after-base\n" + TABLE_AND_INDEX)
    (p.revisions / "b2.py").unlink()
    p.cli("hash")
    data = review(p, 4)
    assert [(r["status"], r["revision"]) for r in data["revisions"]] == [("changed", "a1"), ("deleted", "b2")]
    assert [f["rule"] for f in data["allowed"]] == ["edited-after-base"]
    assert [(f["rule"], f["message"]) for f in data["findings"]] == [
        ("edited-after-base", "revision b2 (b2.py) is on main and was deleted")]


def test_review_needs_a_repository_and_a_known_ref(on_branch, tmp_path):
    p = on_branch
    result = p.cli("review", "--base", "no-such-branch", expect=2)
    assert "unknown git ref 'no-such-branch'" in result.output
    assert json.loads(p.cli("review", "--format", "json").stdout)["base"] == "main"  # the default base

    (tmp_path / "plain" / "revisions").mkdir(parents=True)
    (tmp_path / "plain" / "ragrev.toml").write_text((p.root / "ragrev.toml").read_text())
    from click.testing import CliRunner
    from ragrev.cli import cli

    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "plain" / "ragrev.toml"), "review"])
    assert result.exit_code == 2 and "is not in a git repository" in result.output


def test_check_with_stores_finds_applied_revisions_that_changed(git_project):
    p = git_project
    p.add("a1", None, TABLE)
    p.cli("hash")
    p.cli("upgrade", "head", "-q")
    assert p.cli("check", "--stores").stdout.strip() == "No problems found in 1 revision(s)."

    p.add("a1", None, TABLE_AND_INDEX)
    p.cli("hash")
    assert p.cli("check").exit_code == 0  # without --stores, nothing connects
    data = json.loads(p.cli("check", "--stores", "--json", expect=4).stdout)
    assert [(f["rule"], f["store"], f["message"]) for f in data["findings"]] == [
        ("edited-applied", "meta", "revision a1 was edited after it was applied to store 'meta': its operations changed")]
    assert data["stores_checked"] is True


def test_review_of_a_branch_whose_graph_is_broken(on_branch):
    p = on_branch
    p.add("c3", "nope")
    data = review(p, 4)
    assert [(r["status"], r["revision"]) for r in data["revisions"]] == [("added", "c3")]
    assert [(f["rule"], f["message"]) for f in data["findings"]] == [
        ("graph", "revision 'c3' names unknown down_revision 'nope'")]
    assert data["after_merge"]["error"] == "revision 'c3' names unknown down_revision 'nope'"
    md = p.cli("review", "--base", "main", expect=4).stdout
    assert ":x: the merged revision graph does not load: revision 'c3' names unknown down_revision 'nope'" in md
