"""Shared fixtures: a project builder (``ragrev.toml`` + revision files in a
temporary directory), a CLI runner, and SQL store URLs (SQLite, and the
PostgreSQL that runs on the machine; each test gets its own database)."""
from __future__ import annotations

import os
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragrev.cli import cli

PG_ADMIN_URL = os.environ.get("RAGREV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: a real MongoDB for the document-store tests; else an embedded SecantusDB
REAL_MONGO = os.environ.get("RAGREV_TEST_MONGO_URI")
#: a Milvus server (``milvus://127.0.0.1:PORT``) for the vector-store tests; else Milvus Lite
MILVUS_SERVER = os.environ.get("RAGREV_TEST_MILVUS_URI")
#: a MariaDB/MySQL server database the SQL tests also run on (each test gets its own database)
MYSQL_ADMIN_URL = os.environ.get("RAGREV_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


class Project:
    """A ragrev project in a temporary directory."""

    def __init__(self, root: Path, stores: dict[str, str], options: str = ""):
        self.root = root
        self.revisions = root / "revisions"
        self.revisions.mkdir(parents=True, exist_ok=True)
        self.stores = stores
        lines = ["[ragrev]", 'script_location = "revisions"', 'lock_timeout = "1s"', 'lock_lease = "2s"', options, ""]
        for name, spec in stores.items():
            lines.append(f"[stores.{name}]")
            if isinstance(spec, dict):
                lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in spec.items()]
            else:
                lines.append(f'url = "{spec}"')
            lines.append("")
        self.config = root / "ragrev.toml"
        self.config.write_text("\n".join(lines))

    def add(self, rev: str, down, body: str, message: str | None = None, name: str | None = None, **header) -> Path:
        """Write a revision file; ``body`` holds upgrade()/downgrade() (dedented)."""
        extra = "".join(f"{k} = {v!r}\n" for k, v in header.items())
        text = (f'"""{message or "revision " + rev}"""\nimport sqlalchemy as sa\n\n'
                f"revision = {rev!r}\ndown_revision = {down!r}\n{extra}\n\n" + textwrap.dedent(body).strip() + "\n")
        path = self.revisions / f"{name or rev}.py"
        path.write_text(text)
        return path

    def cli(self, *args, expect: int | None = 0):
        result = CliRunner().invoke(cli, ["-c", str(self.config), *args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code} != {expect}:\n{result.output}"
        return result

    def run(self, *args, env=None, **kw):
        """ragrev in a subprocess (for kill and concurrency tests)."""
        import subprocess

        return subprocess.Popen([sys.executable, "-m", "ragrev", "-c", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})}, **kw)


@pytest.fixture
def make_project(tmp_path):
    def make(stores, options: str = "", sub: str = "proj") -> Project:
        return Project(tmp_path / sub, stores, options)

    return make


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory):
    """``RAGREV_TEST_MONGO_URI`` if set, else one SecantusDB server for the session."""
    if REAL_MONGO:
        yield REAL_MONGO
        return
    from ragrev.stores import secantus

    path = str(tmp_path_factory.mktemp("secantus"))
    uri, owned = secantus.acquire(path, "tests")
    yield uri
    secantus.release(path, owned)


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    sa = pytest.importorskip("sqlalchemy")
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            name = "ragrev_t_" + uuid.uuid4().hex[:10]
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as e:  # pragma: no cover - CI starts PostgreSQL
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def mysql_url():
    """A fresh MariaDB/MySQL database for one test, dropped afterwards."""
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("pymysql")
    try:
        admin = sa.create_engine(MYSQL_ADMIN_URL, connect_args={"connect_timeout": 3})
        name = "ragrev_t_" + uuid.uuid4().hex[:10]
        with admin.begin() as c:
            c.exec_driver_sql(f"CREATE DATABASE `{name}`")
    except Exception as e:  # pragma: no cover - CI starts MariaDB
        pytest.skip(f"MariaDB/MySQL not reachable at {MYSQL_ADMIN_URL}: {e}")
    yield MYSQL_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.begin() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_url(request, tmp_path):
    """Each SQL test runs on SQLite, PostgreSQL and MariaDB/MySQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    if request.param == "mariadb":
        return request.getfixturevalue("mysql_url")
    return request.getfixturevalue("pg_url")


def _milvus_drop_database(uri: str, name: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri.replace("milvus://", "http://"), db_name=name)
    try:
        for alias in client.list_aliases(db_name=name).get("aliases", []):
            client.drop_alias(alias)
        for coll in client.list_collections():
            client.drop_collection(coll)
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture
def milvus_url(request):
    """Where a test's vector store lives: a database of its own on the Milvus
    server ``RAGREV_TEST_MILVUS_URI`` names (dropped afterwards), else a
    Milvus Lite file under the project (``./var/vectors.db``)."""
    if not MILVUS_SERVER:
        yield "milvus-lite:///./var/vectors.db"
        return
    from pymilvus import MilvusClient

    name = "t_" + uuid.uuid4().hex[:12]
    client = MilvusClient(uri=MILVUS_SERVER.replace("milvus://", "http://"))
    client.create_database(name)
    client.close()
    yield f"{MILVUS_SERVER.rstrip('/')}/{name}"
    _milvus_drop_database(MILVUS_SERVER, name)


def pytest_collection_modifyitems(config, items):
    """On a Milvus server (``RAGREV_TEST_MILVUS_URI``), tests marked ``lite_only`` are skipped."""
    if MILVUS_SERVER:
        skip = pytest.mark.skip(reason="Milvus Lite only (RAGREV_TEST_MILVUS_URI selects a server)")
        for item in items:
            if "lite_only" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~5 s")
    config.addinivalue_line("markers", "lite_only: a Milvus test that only makes sense on Milvus Lite")
    config.addinivalue_line("markers", "milvus_feature(*names): skipped on a Milvus server lacking one of them")
