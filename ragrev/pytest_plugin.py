"""pytest plugin: test a project's own revisions.

Installed with ragrev (``pip install "ragrev[test]"`` brings pytest), it is
registered through the ``pytest11`` entry point; without installing, load it
with ``pytest -p ragrev.pytest_plugin``. It does nothing until a test asks
for it:

- the built-in tests, turned on by one line in a test file::

      from ragrev.testing import *  # noqa: F401,F403

- the ``ragrev_project`` fixture: a fresh copy of the project's stores
  (see :class:`RagrevProject`), to write data-migration tests.

The project is the ``ragrev.toml`` given by ``--ragrev-config``, the
``ragrev_config`` ini option, ``$RAGREV_CONFIG``, else ``ragrev.toml`` in
pytest's root directory. Its ``[test]`` table chooses the stores:

.. code-block:: toml

    [test]
    stores = "embedded"   # default: each store a fresh embedded engine under tmp_path
    # stores = "configured"  # the [stores.*] URLs as they are (test servers only!)

    [test.urls]           # per store, a URL of its own (e.g. a PostgreSQL for SQL only it runs)
    meta = "postgresql+psycopg://postgres@127.0.0.1/test"

Embedded engines: SQL stores become SQLite files, MongoDB stores a
SecantusDB directory (stores that shared a server share it; their
``database`` options are kept), Milvus stores Milvus Lite files.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("ragrev")
    group.addoption("--ragrev-config", default=None, metavar="PATH",
                    help="ragrev.toml of the project whose revisions the ragrev tests check")
    parser.addini("ragrev_config", "ragrev.toml of the project whose revisions the ragrev tests check", default="")


def _config_path(pytestconfig) -> Path:
    chosen = (pytestconfig.getoption("ragrev_config") or pytestconfig.getini("ragrev_config")
              or os.environ.get("RAGREV_CONFIG"))
    path = Path(chosen) if chosen else Path(pytestconfig.rootpath) / "ragrev.toml"
    if chosen and not path.is_absolute():
        path = Path(pytestconfig.rootpath) / path
    if path.is_dir():
        path = path / "ragrev.toml"
    return path


_EMBEDDED = {"sql": "sqlite:///{dir}/{name}.db", "mongo": "secantus:///{dir}/mongo-{n}",
             "milvus": "milvus-lite:///{dir}/milvus-{n}.db"}


def config_for_tests(config_path, directory):
    """The project's configuration with each store's URL replaced as its
    ``[test]`` table says, embedded stores under ``directory``, which also
    stands for the project's directory at run time (so relative paths a
    revision writes to, such as a chat archive's ``file://./var/cold``, land
    there and not in the project)."""
    from dataclasses import replace

    from ragrev.config import ConfigError, load_config, store_kind

    config = load_config(config_path)
    table = config.test
    mode = table.get("stores", "embedded")
    if mode not in ("embedded", "configured"):
        raise ConfigError(f"{config.path}: [test] stores must be \"embedded\" or \"configured\", not {mode!r}")
    urls = table.get("urls", {})
    unknown = set(urls) - set(config.stores)
    if unknown:
        raise ConfigError(f"{config.path}: [test.urls] names unknown store(s) {', '.join(sorted(unknown))}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shared: dict[str, str] = {}
    stores = {}
    for name, store in config.stores.items():
        if name in urls:
            url = urls[name]
            store = replace(store, url=url, kind=store_kind(url))
        elif mode == "embedded":
            if store.url not in shared:
                shared[store.url] = _EMBEDDED[store.kind].format(dir=directory, name=name, n=len(shared))
            store = replace(store, url=shared[store.url])
        stores[name] = store
    return replace(config, stores=stores, path=directory / config.path.name)


class RagrevProject:
    """The project with stores of its own (fresh, at base, when built by the
    ``ragrev_project`` fixture).

    ``upgrade``/``downgrade`` run the revisions as ``ragrev upgrade``/
    ``downgrade`` would; ``client(name)`` gives a store's driver object
    (SQL: a SQLAlchemy ``Connection``; MongoDB: a pymongo ``Database``;
    Milvus: a ``MilvusClient``), valid until the next upgrade or downgrade
    (embedded engines belong to one opener at a time; ask again after).
    """

    def __init__(self, config, source_path=None):
        self.config = config
        #: the project's own ragrev.toml (``config`` is its copy for tests)
        self.source_path = Path(source_path) if source_path else config.path
        self._open: dict = {}

    @property
    def source_config(self):
        """The project's configuration as written (for checks that read files only)."""
        from ragrev.config import load_config

        return load_config(self.source_path)

    # --- running ---------------------------------------------------------------------
    def upgrade(self, target: str = "heads") -> "RagrevProject":
        return self._migrate("up", target)

    def downgrade(self, target: str) -> "RagrevProject":
        return self._migrate("down", target)

    def _migrate(self, direction, target):
        """Run; a failure fails the test with ragrev's one-line message (the
        revision file and line of a user's function included), not the
        driver's traceback."""
        from ragrev import commands
        from ragrev.errors import RagrevError

        self.close()
        try:
            commands.migrate(self.config, direction, target)
        except RagrevError as e:
            verb = "upgrade" if direction == "up" else "downgrade"
            pytest.fail(f"ragrev {verb} {target}: {e}", pytrace=False)
        return self

    @property
    def graph(self):
        from ragrev.script import ScriptDirectory

        return ScriptDirectory(self.config.script_location).revision_map

    def heads(self) -> dict[str, tuple[str, ...]]:
        """Each store's heads (``()`` at base)."""
        return {name: self.store(name).read_heads() for name in self.config.stores}

    # --- looking ---------------------------------------------------------------------
    def store(self, name: str):
        """ragrev's adapter of store ``name``, connected."""
        from ragrev.stores import open_store

        if name not in self._open:
            store = open_store(self.config.store(name))
            store.connect()
            self._open[name] = store
        return self._open[name]

    def client(self, name: str):
        store = self.store(name)
        return {"sql": lambda: store.conn, "mongo": lambda: store.db, "milvus": lambda: store.client}[store.kind]()

    def fingerprint(self, name: str | None = None) -> dict:
        """:func:`ragrev.fingerprint.fingerprint` of one store, or ``{store: fingerprint}`` of all."""
        from ragrev.fingerprint import fingerprint

        if name is not None:
            return fingerprint(self.store(name))
        return {n: fingerprint(self.store(n)) for n in self.config.stores}

    def close(self) -> None:
        for store in self._open.values():
            try:
                store.close()
            except Exception:
                pass
        self._open.clear()


@pytest.fixture
def ragrev_config(pytestconfig, tmp_path):
    """The project's configuration, its stores fresh (see the module docstring)."""
    path = _config_path(pytestconfig)
    if not path.is_file():
        pytest.fail(f"ragrev: no configuration at {path}; pass --ragrev-config or set the ragrev_config ini option",
                    pytrace=False)
    return config_for_tests(path, tmp_path / f"ragrev-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def ragrev_project(ragrev_config, pytestconfig):
    """A :class:`RagrevProject` at base; ``ragrev_project.upgrade("REV")``
    brings it to any revision."""
    project = RagrevProject(ragrev_config, _config_path(pytestconfig))
    yield project
    project.close()
