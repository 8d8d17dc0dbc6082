"""The driver registry: which store kind a URL scheme names, and where its code lives.

A driver is described by a :class:`Driver` (no driver library is imported to
read one). Drivers register themselves in the ``ragrev.drivers`` entry-point
group (``setup.cfg``: ``[options.entry_points] ragrev.drivers = NAME =
module:DESCRIPTOR``), so a third party can ship a driver as its own package.
The built-in drivers are registered the same way and are also listed in
:data:`BUILTIN`, so they are found when ragrev runs from a source tree
(``PYTHONPATH``) without being installed. On a scheme claimed twice, the
built-in driver wins, then the first entry point by name.

The core consults the registry instead of tables of its own: the scheme ->
kind mapping of :mod:`ragrev.config`, the adapter class of
:func:`ragrev.stores.open_store`, and the operation vocabulary a kind offers
(its family's: :func:`ragrev.ops.operations_for`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

GROUP = "ragrev.drivers"
FAMILIES = ("vector", "document", "sql", "chat")


@dataclass(frozen=True)
class Driver:
    """What the core needs to know about a driver, without importing it.

    - ``kind``: the store kind (``StoreConfig.kind``); ``family``: one of :data:`FAMILIES`.
    - ``schemes``: URL schemes it owns exactly; ``dialects``: scheme bases it owns
      with any ``+suffix`` (SQLAlchemy style: ``postgresql+psycopg``).
    - ``path_schemes``: embedded schemes whose URL carries a file system path
      (made absolute against the configuration's directory).
    - ``store``: ``"module:Class"`` of its :class:`~ragrev.stores.Store`; importing
      that module registers the implementations of its operations.
    - ``operations``: the family whose operation vocabulary ``op.<store>`` offers
      (default: ``family``; a store kind stands for its driver's family).
    - ``capabilities``: free-form facts (index types, metrics...) for tools and docs.
    """

    name: str
    kind: str
    family: str
    store: str
    schemes: tuple = ()
    dialects: tuple = ()
    path_schemes: tuple = ()
    operations: str = ""
    capabilities: dict = field(default_factory=dict, hash=False, compare=False)

    def owns(self, scheme: str) -> bool:
        return scheme in self.schemes or scheme.split("+", 1)[0] in self.dialects

    def carries_path(self, scheme: str) -> bool:
        return scheme in self.path_schemes or (scheme.split("+", 1)[0] in self.path_schemes and bool(self.dialects))

    @property
    def vocabulary(self) -> str:
        """The family (or a kind standing for its family) whose operations ``op.<store>`` offers."""
        return self.operations or self.family


#: the drivers that ship with ragrev: ``ragrev.drivers.<name>`` packages, each
#: describing itself in a ``DRIVER`` (their setup.cfg entry points name the same)
BUILTIN = ("milvus", "mongo", "sql", "pgvector")

_loaded: list[Driver] | None = None
_builtin: list[Driver] | None = None


def _builtins() -> list[Driver]:
    global _builtin
    if _builtin is None:
        from importlib import import_module

        _builtin = [import_module(f"ragrev.drivers.{name}").DRIVER for name in BUILTIN]
    return _builtin


def _entry_point_drivers() -> list[Driver]:
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception:  # a broken third-party driver must not break the others
            continue
        obj = obj() if callable(obj) and not isinstance(obj, Driver) else obj
        if isinstance(obj, Driver):
            found.append(obj)
    return found


def drivers() -> list[Driver]:
    """Every registered driver: built-ins first, then entry points (deduplicated by name)."""
    global _loaded
    if _loaded is None:
        out, names = [], set()
        for d in (*_builtins(), *_entry_point_drivers()):
            if d.name not in names:
                names.add(d.name)
                out.append(d)
        _loaded = out
    return _loaded


def register(driver: Driver) -> Driver:
    """Register a driver at run time (tests, plugins loaded by hand)."""
    drivers()
    if all(d.name != driver.name for d in _loaded):
        _loaded.append(driver)
    return driver


def for_scheme(scheme: str) -> Driver | None:
    """The driver owning a URL scheme: exact schemes before dialect bases.
    A scheme a built-in driver names (a scheme or a dialect) is its own
    whatever entry points claim: found without reading them (which costs
    every command some tens of milliseconds)."""
    scheme = scheme.lower()
    for d in _builtins():
        if scheme in d.schemes or scheme in d.dialects:
            return d
    for d in drivers():
        if scheme in d.schemes:
            return d
    return next((d for d in drivers() if d.owns(scheme)), None)


def for_kind(kind: str) -> Driver | None:
    return next((d for d in _builtins() if d.kind == kind), None) or next((d for d in drivers() if d.kind == kind),
                                                                          None)


def known_schemes() -> list[str]:
    out = []
    for d in drivers():
        out += list(d.schemes) + [f"{x}[+driver]" for x in d.dialects]
    return out
