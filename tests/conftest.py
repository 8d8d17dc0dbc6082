"""Shared fixtures: a project builder (``ragrev.toml`` + revision files in a
temporary directory), a CLI runner, and SQL store URLs (SQLite, and the
PostgreSQL that runs on the machine; each test gets its own database)."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers.project import PG_ADMIN_URL, REAL_MONGO, Project


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


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request, tmp_path):
    """Each SQL test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~5 s")
