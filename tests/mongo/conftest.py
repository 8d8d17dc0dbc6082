"""Fixtures for the MongoDB adapter's tests.

``mongo_url`` (tests/conftest.py): ``$RAGREV_TEST_MONGO_URI`` when set (a real
MongoDB), else a SecantusDB server started once for the test session. ``mongo_db_name`` is a fresh
database per test, dropped afterwards; ``store`` is a connected
:class:`~ragrev.drivers.mongo.store.MongoStore` on it, and ``mongo_project`` a ragrev
project whose store ``docs`` points at it.
"""
from __future__ import annotations

import uuid

import pymongo
import pytest

from ragrev.stores import open_store
from tests.helpers.mongo import store_config
from tests.helpers.project import REAL_MONGO  # noqa: F401 - re-exported for the test modules


@pytest.fixture(scope="session")
def mongo_client(mongo_url):
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def mongo_db_name(mongo_client):
    name = "ragrev_t_" + uuid.uuid4().hex[:10]
    yield name
    mongo_client.drop_database(name)


@pytest.fixture
def db(mongo_client, mongo_db_name):
    """The test's database, seen by pymongo directly."""
    return mongo_client[mongo_db_name]


@pytest.fixture
def store(mongo_url, mongo_db_name):
    s = open_store(store_config(mongo_url, mongo_db_name))
    s.connect()
    yield s
    s.close()


@pytest.fixture
def mongo_project(make_project, mongo_url, mongo_db_name):
    def make(sub: str = "proj", options: str = ""):
        return make_project({"docs": {"url": mongo_url, "database": mongo_db_name}}, options=options, sub=sub)

    return make


# --- helpers ---------------------------------------------------------------------------------


