"""Test helpers (review), imported by the test modules and conftest files."""
from __future__ import annotations

import textwrap
from pathlib import Path

import git
from click.testing import CliRunner

from ragrev.cli import cli

FIXTURES = Path(__file__).resolve().parent.parent / "review" / "fixtures"


_ENV = {
    "GIT_AUTHOR_NAME": "Reviewer", "GIT_AUTHOR_EMAIL": "reviewer@example.org",
    "GIT_COMMITTER_NAME": "Reviewer", "GIT_COMMITTER_EMAIL": "reviewer@example.org",
    "GIT_AUTHOR_DATE": "2026-01-01T12:00:00+00:00", "GIT_COMMITTER_DATE": "2026-01-01T12:00:00+00:00",
}


CONFIG = """\
[ragrev]
script_location = "revisions"

[stores.meta]
url = "sqlite:///./var/meta.db"
"""


def revision_text(rev: str, down, body: str = "", message: str | None = None) -> str:
    """A revision file: docstring, header, and ``body`` (upgrade/downgrade)."""
    body = textwrap.dedent(body).strip() or "def upgrade(op):\n    pass"
    return (f'"""{message or "revision " + rev}\n\nRevision ID: {rev}\nRevises: {down}\n"""\n'
            f"import sqlalchemy as sa  # noqa: F401\n\nrevision = {rev!r}\ndown_revision = {down!r}\n"
            f"branch_labels = None\ndepends_on = None\n\n\n{body}\n")


class GitProject:
    """A ragrev project at the root of a git repository."""

    def __init__(self, root: Path, config: str = CONFIG):
        self.root = root
        self.revisions = root / "revisions"
        self.revisions.mkdir(parents=True)
        (root / "ragrev.toml").write_text(config)
        (root / ".gitignore").write_text("var/\n__pycache__/\n")
        self.repo = git.Repo.init(root, initial_branch="main")
        with self.repo.config_writer() as cw:
            cw.set_value("commit", "gpgsign", "false")
            cw.set_value("merge", "conflictstyle", "merge")

    def add(self, rev: str, down, body: str = "", message: str | None = None, name: str | None = None) -> Path:
        path = self.revisions / f"{name or rev}.py"
        path.write_text(revision_text(rev, down, body, message))
        return path

    def cli(self, *args, expect: int | None = 0):
        result = CliRunner().invoke(cli, ["-c", str(self.root / "ragrev.toml"), *args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code} != {expect}:\n{result.output}"
        return result

    def git(self, *args, **kw):
        with self.repo.git.custom_environment(**_ENV):
            return getattr(self.repo.git, args[0].replace("-", "_"))(*args[1:], **kw)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.repo.head.commit.hexsha
