"""Store adapters: one module per store kind, behind one small protocol.

- :class:`Store` is the protocol: connect/close, the version (heads), the log,
  the lease lock, transactions, ``apply(op, ctx)``, and one generic
  ``preflight(ops)`` that drivers adapt through hooks (``schema_state()``,
  ``preflight_check(op, state)``, ``preflight_filter(op, state, touched)``).
- Implementations of operations are looked up by (operation class, store
  kind) through :func:`implementation` — the adapter modules register them.
- :func:`open_store` imports the adapter of a kind (named by its driver in
  :mod:`ragrev.drivers`) on first use, so drivers are imported only when a
  store of that kind is opened.
"""
from __future__ import annotations

import importlib
import json
import time
from contextlib import contextmanager, nullcontext
from typing import Callable

from ragrev.config import StoreConfig
from ragrev.errors import OperationError


def chunks(items, size: int):
    """``items`` (any iterable, read lazily) as lists of at most ``size``."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

VERSION_TABLE = "ragrev_version"
LOG_TABLE = "ragrev_log"
LOCK_TABLE = "ragrev_lock"
#: names ragrev keeps for itself; never listed among a user's tables/collections
RESERVED_PREFIX = "ragrev_"
#: what a soft drop is renamed to: see :func:`trash_name`
TRASH_PREFIX = "ragrev_trash_"


def trash_name(name: str, suffix: str = "", taken=(), limit: int = 63) -> str:
    """The one trash name of every driver: ``ragrev_trash_<unix time>_<name>[_<suffix>]``
    (cut to ``limit`` characters, the store's longest name), with ``_2``,
    ``_3``... when that is ``taken`` (the same thing dropped twice in one
    second). The time lets ``ragrev purge --older-than`` age it."""
    base = f"{TRASH_PREFIX}{int(time.time())}_{name}" + (f"_{suffix}" if suffix else "")
    candidate, n = base[:limit], 1
    while candidate in taken:
        n += 1
        candidate = base[:limit - len(str(n)) - 1] + f"_{n}"
    return candidate


def trash_age(name: str, now: float | None = None) -> float | None:
    """Seconds since a trash object was made (None when ``name`` is not a trash name)."""
    if not name.startswith(TRASH_PREFIX):
        return None
    stamp = name[len(TRASH_PREFIX):].split("_", 1)[0]
    return (now or time.time()) - int(stamp) if stamp.isdigit() else None

#: the fields of a log record (run and step records share one table)
LOG_FIELDS = (
    "id", "seq", "type", "run_id", "revision", "direction", "step_index", "digest", "description",
    "checksum", "outcome", "started", "finished", "rows_done", "resume_token", "captured",
    "git_commit", "username", "hostname", "owner", "error",
)
#: fields holding JSON values (stored as text where the store has no documents)
LOG_JSON_FIELDS = ("resume_token", "captured")


def decode_log_text(record: dict) -> dict:
    """``record`` (a journal row of a store keeping :data:`LOG_JSON_FIELDS` as
    text) with those fields parsed, in place."""
    for k in LOG_JSON_FIELDS:
        if record.get(k) is not None:
            record[k] = json.loads(record[k])
    return record

_IMPLS: dict[tuple[type, str], Callable] = {}
_ESTIMATORS: dict[tuple[type, str], Callable] = {}


def implementation(op_cls: type, kind: str):
    """Register ``fn(store, op, ctx) -> rows | None`` as how a store of ``kind``
    applies ``op_cls``."""

    def deco(fn):
        _IMPLS[(op_cls, kind)] = fn
        return fn

    return deco


def estimator(op_cls: type, kind: str):
    """Register ``fn(store, op) -> rows | None``: the rows ``op`` would touch (for ``--plan``)."""

    def deco(fn):
        _ESTIMATORS[(op_cls, kind)] = fn
        return fn

    return deco


def _lookup(table, op, kind):
    key = (type(op), kind)
    if key not in table:
        module = getattr(type(op), "impl_modules", {}).get(kind) or _driver_module(kind)
        if module:
            importlib.import_module(module)
    return table.get(key)


def find_implementation(op, kind: str) -> Callable:
    fn = _lookup(_IMPLS, op, kind)
    if fn is None:
        raise OperationError(f"{op.where()}{op.name}: not supported on a {kind} store ({op.store!r})")
    return fn


def _driver_module(kind: str) -> str | None:
    from ragrev.drivers import for_kind

    driver = for_kind(kind)
    return driver.store.partition(":")[0] if driver else None


def open_store(config: StoreConfig) -> "Store":
    """An (unconnected) adapter for a configured store: the ``store`` class of
    the driver registered for its kind (:mod:`ragrev.drivers`)."""
    from ragrev.drivers import for_kind

    module, _, cls = for_kind(config.kind).store.partition(":")
    return getattr(importlib.import_module(module), cls)(config)


#: URL schemes of stores opened and closed by the main thread (the runner opens the others in parallel):
#: an embedded SecantusDB's last flush on close needs a session of the thread that opened it
_MAIN_THREAD_SCHEMES = ("secantus",)


def connects_in_main_thread(config: StoreConfig) -> bool:
    return config.url.split("://", 1)[0].lower() in _MAIN_THREAD_SCHEMES


class Store:
    """The protocol every adapter implements. Records are plain dicts with the
    keys of :data:`LOG_FIELDS`; heads are tuples of revision ids."""

    kind = ""

    def __init__(self, config: StoreConfig):
        self.config = config
        self.name = config.name

    # --- lifecycle -------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection; raise :class:`~ragrev.errors.StoreUnreachable`."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- version and log -------------------------------------------------------------
    def has_meta(self) -> bool:
        """True when the version table exists (the store has been migrated before)."""
        raise NotImplementedError

    def ensure_meta(self) -> None:
        """Create the version, log and lock tables if missing."""
        raise NotImplementedError

    def read_heads(self) -> tuple[str, ...]:
        raise NotImplementedError

    def write_heads(self, heads: tuple[str, ...]) -> None:
        raise NotImplementedError

    def log_append(self, record: dict) -> None:
        raise NotImplementedError

    def log_update(self, record_id: str, fields: dict) -> None:
        raise NotImplementedError

    def log_records(self, revision: str | None = None) -> list[dict]:
        """Log records (of one revision, or all), oldest first (by ``seq``)."""
        raise NotImplementedError

    def log_clear(self) -> None:
        """Forget the step journal (``stamp --purge``)."""
        raise NotImplementedError

    # --- lock (see ragrev.lock) ----------------------------------------------------------
    #: the fencing token of the lease this process took last (:meth:`lock_try`)
    lock_token: int = 0
    #: a :class:`ragrev.lock.Fence` while a runner holds this store's lease
    fence = None
    #: every write transaction verifies the fence before it commits (SQL)
    commits_fenced = False
    #: a checkpoint asks the store about the lease unless it was confirmed less than this
    #: fraction of ``lock_lease`` ago (0: always; see :meth:`ragrev.lock.Leases.fence`)
    checkpoint_fresh = 0.0

    def lock_try(self, owner: str, lease: float) -> str | None:
        """Take or renew the lease for ``owner``. None when ``owner`` holds it
        now (its fencing token in :attr:`lock_token`: bumped when the lease
        changes hands); otherwise a description of the holder (owner and
        expiry). An expired lease is free; on SQL and Milvus stores so is
        the lease of a process on this host that no longer exists."""
        raise NotImplementedError

    def lock_renew(self, fence) -> str | None:
        """Extend the lease while ``fence.owner`` and ``fence.token`` still
        hold it (never take it back). None when renewed; otherwise who took it
        over and when (:func:`ragrev.lock.took_over`)."""
        raise NotImplementedError

    def lock_fence(self, fence) -> str | None:
        """Verify (and renew) the lease where this store writes next: as
        :meth:`lock_renew`, inside the current transaction where that matters."""
        return self.lock_renew(fence)

    def renewal_blocked(self) -> bool:
        """True while a renewal from another connection cannot succeed and
        need not (SQLite, while this store's own write transaction is open:
        no other runner can write the lease either)."""
        return False

    def lock_release(self, owner: str) -> None:
        """Free the lease if ``owner`` holds it (its fencing token is kept)."""
        raise NotImplementedError

    # --- transactions -----------------------------------------------------------------
    def revision_scope(self):
        """Wraps one revision's steps and its stamp (a transaction where the
        store has one that covers them)."""
        return nullcontext()

    def step_scope(self):
        """Wraps one step and its journal record."""
        return nullcontext()

    @contextmanager
    def failure_scope(self):
        """Where the runner writes a failed outcome after a scope was rolled back."""
        yield

    # --- operations --------------------------------------------------------------------
    def apply(self, op, ctx):
        """Run one operation; returns the rows it touched, when known."""
        return find_implementation(op, self.kind)(self, op, ctx)

    def estimate_rows(self, op) -> int | None:
        fn = _lookup(_ESTIMATORS, op, self.kind)
        return fn(self, op) if fn else None

    # --- preflight: one simulation for every driver, with three hooks ----------------------------
    #: parameters naming collections (or tables, aliases): what ``touched`` collects
    NAME_PARAMS = frozenset({"collection", "source", "target", "old", "new", "new_name", "alias", "against",
                             "expected"})

    def preflight(self, ops: list) -> None:
        """Check a run's operations against the store before anything changes
        (dimensions, fields, supported index types...); raise
        :class:`~ragrev.errors.OperationError`. For each operation, in order:

        1. an operation this driver has no implementation for is refused
           ("not supported on a <kind> store");
        2. :meth:`preflight_check` (driver hook): parameters it does not support;
        3. ``op.simulate(state)`` on the state of :meth:`schema_state`, when the
           driver gives one (None: no simulation) and the operation has a
           ``simulate`` method: the step is checked against the schema the
           earlier steps leave and applies its own effect there. A step that
           was interrupted (its journal record not done) may have done its
           work already (killed after a drop, before it was journaled): when
           its simulation fails, the state is read again from the store and
           the later steps are simulated on the store as it is;
        4. :meth:`preflight_filter` (driver hook): its filter, with the names
           the earlier steps touched (``touched``: values of
           :data:`NAME_PARAMS`)."""
        state, touched, interrupted = self.schema_state(), set(), None
        for op in ops:
            find_implementation(op, self.kind)
            self.preflight_check(op, state)
            if state is not None and callable(getattr(op, "simulate", None)):
                try:
                    op.simulate(state)
                except OperationError:
                    if interrupted is None:
                        interrupted = self.interrupted_steps()
                    if interrupted.isdisjoint(op.digests()):
                        raise
                    state = self.schema_state()
            self.preflight_filter(op, state, touched)
            touched |= {v for k, v in vars(op).items() if isinstance(v, str) and k in self.NAME_PARAMS}

    def schema_state(self):
        """Preflight hook: the store's schema as the operations' ``simulate(state)``
        methods read and change it (the vector family's
        :class:`~ragrev.ops.vector_schema.SchemaState`), read lazily from the
        store; None (the default): no simulation."""
        return None

    def preflight_check(self, op, state) -> None:
        """Preflight hook, before ``op`` is simulated: refuse what this driver
        does not support beyond a missing implementation (parameters,
        types); raise ``op.fail(...)`` / :class:`~ragrev.errors.OperationError`."""

    def preflight_filter(self, op, state, touched: set) -> None:
        """Preflight hook, after ``op`` is simulated: check its filter (if it has
        one) against the store; ``state`` is the simulated schema (None
        without simulation), ``touched`` the names the earlier steps of the
        run create, change or drop (their fields may differ by then)."""

    def interrupted_steps(self) -> set:
        """Digests of the steps whose journal record is not done."""
        return {r.get("digest") for r in self.log_records() if r.get("type") == "step" and r.get("outcome") != "done"}

    def purge(self, older_than: float | None = None) -> list[str]:
        """Delete soft-dropped objects (older than ``older_than`` seconds); their names."""
        return []

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, {self.config.display_url})"
