"""Fixtures for the chat-archive tests: a ragrev project whose store ``chat``
is SQLite or MongoDB (SecantusDB started once for the test session in this
process, a fresh database per test; ``$RAGREV_TEST_MONGO_URI`` for a real
MongoDB), a conversations table/collection to seed, and byte-level views of
the stored messages (raw SQLite rows, raw BSON documents)."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers.chats import KINDS, ChatEnv


@pytest.fixture(params=KINDS)
def chat_env(request, make_project, tmp_path):
    """A ChatEnv on SQLite and on MongoDB (SecantusDB)."""
    return _env(request, request.param, make_project, tmp_path)


def _env(request, kind, make_project, tmp_path, sub="proj"):
    if kind in ("sqlite", "secantus"):
        return ChatEnv(kind, make_project, tmp_path, sub=sub)
    if kind == "postgresql":
        return ChatEnv(kind, make_project, tmp_path, request.getfixturevalue("pg_url"), sub=sub)
    url = request.getfixturevalue("mongo_url")
    name = "chats_" + uuid.uuid4().hex[:10]

    def drop():
        import pymongo

        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        client.drop_database(name)
        client.close()

    request.addfinalizer(drop)
    return ChatEnv(kind, make_project, tmp_path, url, name, sub=sub)


@pytest.fixture
def make_env(request, make_project, tmp_path):
    """``make_env(kind, sub)``: more ChatEnvs in one test (e.g. two instances to merge)."""
    return lambda kind, sub="proj": _env(request, kind, make_project, tmp_path, sub=sub)


