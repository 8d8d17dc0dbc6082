"""Import hygiene: ``ragrev --help`` and the graph commands start fast because
they import no driver.

Each command runs as ``python -X importtime -m ragrev ...`` in a project that
configures a Milvus, a MongoDB and a SQL store, and the modules the process
imported (read from the ``-X importtime`` report on stderr) must include none
of the drivers, Alembic, SQLAlchemy, gRPC or numpy. The revision files import
sqlalchemy at their top, as SQL revisions do: graph commands read only their
headers, so that import never runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

FORBIDDEN = {"pymilvus", "milvus_lite", "pymongo", "bson", "gridfs", "secantusdb", "sqlalchemy", "alembic", "grpc",
             "numpy", "pyarrow", "fsspec", "git", "jsonschema"}


#: a project with one store of each embedded kind
CONFIG = textwrap.dedent("""\
    [ragrev]
    script_location = "revisions"

    [stores.vectors]
    url = "milvus-lite:///./var/vectors.db"

    [stores.docs]
    url = "secantus:///./var/docs"
    database = "rag"

    [stores.meta]
    url = "sqlite:///./var/meta.db"
    """)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("imports")
    (root / "ragrev.toml").write_text(CONFIG)
    revs = root / "revisions"
    revs.mkdir()
    prev = None
    for i, rid in enumerate(["1a2b3c4d5e6f", "2b3c4d5e6f70", "3c4d5e6f7081"]):
        (revs / f"{rid}_step_{i}.py").write_text(
            f'"""step {i}"""\nimport sqlalchemy as sa\n\nrevision = {rid!r}\ndown_revision = {prev!r}\n'
            f"branch_labels = None\ndepends_on = None\n\n\ndef upgrade(op):\n"
            f"    op.meta.add_column('t', sa.Column('c{i}', sa.Integer()))\n")
        prev = rid
    return root


def imported_by(args, cwd) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAGREV_CONFIG"}
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "ragrev", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    names = set()
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "ragrev" in names
    return names


@pytest.mark.parametrize("args", [
    ["--help"], ["heads"], ["heads", "-v", "--json"], ["history"], ["history", "-v", "-r", "base:2b3c"],
    ["branches"], ["show", "head"], ["show", "1a2b"], ["revision", "--help"], ["upgrade", "--help"],
], ids=" ".join)
def test_graph_commands_import_no_driver(project, args):
    assert imported_by(args, project) & FORBIDDEN == set()


def test_revision_and_merge_import_no_driver(project, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    assert imported_by(["revision", "-m", "fork", "--head", "1a2b", "--rev-id", "4d5e6f708192"], copy) & FORBIDDEN \
        == set()
    assert imported_by(["merge", "-m", "join", "heads"], copy) & FORBIDDEN == set()


def test_the_check_sees_a_driver_import(project):
    """The same measurement does see a driver when one is imported: a revision
    whose header is not literal is imported, and it imports sqlalchemy."""
    odd = project / "revisions" / "9f8e7d6c5b4a_computed.py"
    odd.write_text('"""computed"""\nimport sqlalchemy as sa\n\nrevision = "9f8e7d6c5b4a"\n'
                   'down_revision = "3c4d5e6f" + "7081"\n\n\ndef upgrade(op):\n    pass\n')
    try:
        assert "sqlalchemy" in imported_by(["heads"], project)
    finally:
        odd.unlink()


CURRENT_FREE = {"pymongo", "alembic", "sqlalchemy", "pymilvus", "grpc", "milvus_lite", "pandas", "faiss"}


def test_current_reads_embedded_stores_without_their_clients(tmp_path):
    """``current`` on embedded stores that exist reads Milvus Lite and
    SecantusDB in process (no pymilvus, no pymongo: see ``ragrev.commands.current``;
    a flushed Lite directory from its files, without milvus-lite's engine and
    the pandas it imports) and SQLite with ``sqlite3``, without SQLAlchemy
    and Alembic."""
    (tmp_path / "ragrev.toml").write_text(CONFIG)
    (tmp_path / "revisions").mkdir()
    (tmp_path / "revisions" / "1a2b3c4d5e6f_create.py").write_text(textwrap.dedent('''\
        """create"""
        import sqlalchemy as sa

        revision = "1a2b3c4d5e6f"
        down_revision = None
        branch_labels = None
        depends_on = None


        def upgrade(op):
            op.vectors.create_collection("items", fields=[
                {"name": "id", "type": "INT64", "primary": True},
                {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],
                indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
            op.docs.create_collection("items")
            op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))
        '''))
    env = {k: v for k, v in os.environ.items() if k != "RAGREV_CONFIG"}
    p = subprocess.run([sys.executable, "-m", "ragrev", "upgrade", "head"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert imported_by(["current"], tmp_path) & CURRENT_FREE == set()
