"""Shared fixtures: a project builder (``ragrev.toml`` + revision files in a
temporary directory), a CLI runner, and SQL store URLs (SQLite, and the
PostgreSQL that runs on the machine; each test gets its own database)."""
from __future__ import annotations

import inspect
import os
import re
import uuid

import pytest

from tests.helpers.milvus import MILVUS_SERVER, drop_server_database
from tests.helpers.project import PG_ADMIN_URL, REAL_MONGO, Project

#: a MariaDB/MySQL server database the SQL tests also run on (each test gets its own database)
MYSQL_ADMIN_URL = os.environ.get("RAGREV_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

# --- markers (registered in setup.cfg) ----------------------------------------------------

#: directories whose tests run against a store engine
ENGINE_DIRS = {"chats", "compliance", "milvus", "mongo", "reliability", "sql"}
#: fixtures that give a test a store engine
ENGINE_FIXTURES = {"mongo_url", "pg_url", "sql_url", "lite", "harness", "chat_env", "make_env", "mongo_project"}
#: what in a test's source starts a process: ragrev or Python in a subprocess, the reliability harness
PROCESS = re.compile(r"subprocess|Popen|\b(?:p|project|proj|env\.project|\w+_project)\.run\(|harness\.|\.ragrev\(")


def pytest_collection_modifyitems(config, items):
    """``engine`` and ``process`` follow from what a test uses; a test that runs
    an engine in another process is ``slow`` as well (it pays the engine's
    start-up in every process). Other slow tests carry ``@pytest.mark.slow``."""
    sources: dict = {}
    for item in items:
        fn = getattr(item, "function", None)
        parts = item.path.relative_to(config.rootpath).parts
        engine = (len(parts) > 2 and parts[1] in ENGINE_DIRS) or parts[-1] == "test_sample.py" \
            or bool(ENGINE_FIXTURES & set(item.fixturenames))
        if fn not in sources:
            try:
                sources[fn] = inspect.getsource(fn) if fn else ""
            except (OSError, TypeError):
                sources[fn] = ""
        process = bool(PROCESS.search(sources[fn])) or "harness" in item.fixturenames
        if engine:
            item.add_marker(pytest.mark.engine)
        if process:
            item.add_marker(pytest.mark.process)
        if engine and process:
            item.add_marker(pytest.mark.slow)
        if MILVUS_SERVER and "lite_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="Milvus Lite only (RAGREV_TEST_MILVUS_URI selects a server)"))


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
    from ragrev.drivers.mongo import secantus

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
    drop_server_database(MILVUS_SERVER, name)
