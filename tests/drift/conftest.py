"""Fixtures for the state, drift and autogenerate tests."""
from __future__ import annotations

import pymongo
import pytest


@pytest.fixture(scope="module")
def mongo_client(mongo_url):
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    yield client
    client.close()
