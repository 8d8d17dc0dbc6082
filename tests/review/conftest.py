"""Fixtures for ``check``/``review``/``hash``: projects in real git
repositories (GitPython over the ``git`` binary) in a temporary directory.

Commits use a fixed author, committer and date, so the same files make the
same commit ids on every machine (the expected Markdown names a merge base).
"""
from __future__ import annotations

import pytest

pytest.importorskip("git")

from tests.helpers.review import CONFIG, GitProject  # noqa: E402 - after the skip when GitPython is missing


@pytest.fixture
def git_project(tmp_path):
    return GitProject(tmp_path / "repo")


@pytest.fixture
def make_git_project(tmp_path):
    """``make_git_project(config_text)``: a project with its own ``ragrev.toml``."""
    return lambda config=CONFIG, sub="repo": GitProject(tmp_path / sub, config)
