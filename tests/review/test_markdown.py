"""The Markdown of ``ragrev review`` for a fixture repository, checked
against ``fixtures/review.md`` (``RAGREV_REGEN=1`` rewrites it).

The fixture (``fixtures/project``)::

    main:     1a2b <-- 2b3c <-- 3c4d <-- 4d5e (tags)
                                    \\
    feature:                         <-- 5e6f (drop lang) <-- 6f7a (source kinds) <-- 7a8b (HNSW)

and ``feature`` also edits 2b3c's operations and 3c4d's comments.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.helpers.review import FIXTURES, GitProject

pytest.importorskip("git")
PROJECT = FIXTURES / "project"
EXPECTED = FIXTURES / "review.md"


def build(root) -> GitProject:
    p = GitProject(root, (PROJECT / "ragrev.toml").read_text())

    def put(folder):
        for f in sorted((PROJECT / folder).glob("*.py")):
            shutil.copyfile(f, p.revisions / f.name)
        p.cli("hash")

    put("base")
    p.commit("base")
    p.git("checkout", "-q", "-b", "feature")
    put("feature")
    p.commit("feature")
    p.git("checkout", "-q", "main")
    put("main")
    p.commit("tags")
    p.git("checkout", "-q", "feature")
    return p


def test_review_markdown_matches_the_expected_file(tmp_path):
    p = build(tmp_path / "repo")
    result = p.cli("review", "--base", "main", expect=4)
    if os.environ.get("RAGREV_REGEN"):
        EXPECTED.write_text(result.stdout)
    assert result.stdout == EXPECTED.read_text()

    data = json.loads(p.cli("review", "--base", "main", "--format", "json", expect=4).stdout)
    assert {f["rule"] for f in data["findings"]} == {
        "edited-after-base", "drop-required-field", "destructive-no-way-back", "no-inverse", "unbatched-full-scan",
        "index-without-recall"}
    assert [f["rule"] for f in data["allowed"]] == ["unbatched-full-scan"]
