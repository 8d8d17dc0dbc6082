"""Turning a revision's ``upgrade(op)`` / ``downgrade(op)`` into operations.

The ``op`` a revision receives is a :class:`Recorder`: ``op.<store>`` is a
namespace of that store kind's operations, and each call records an
:class:`~ragrev.ops.Operation` (with the file and line it came from) instead
of running anything. That is what makes ``--plan``, checksums, derived
downgrades and lint possible without touching a store.
"""
from __future__ import annotations

import functools
import gc
import inspect
import sys
from contextlib import contextmanager
from pathlib import Path

from ragrev.config import StoreConfig
from ragrev.errors import OperationError, RagrevError, RevisionFileError, StepFailed
from ragrev.ops import Operation, deprecated, family_of, former_names, offered, operations_for, sha256_plan
from ragrev.script import Script, line_in


#: code file name -> its Path, made once per process (every revision's recorder compares the same frames' files)
_PATHS: dict[str, Path] = {}


def _path_of(name: str) -> Path:
    path = _PATHS.get(name)
    if path is None:
        path = _PATHS[name] = Path(name)
    return path


class Recorder:
    """The ``op`` argument of ``upgrade``/``downgrade``: ``op.<store>`` is the
    store's namespace of operations (:class:`~ragrev.ops.namespaces.VectorOps`,
    :class:`~ragrev.ops.namespaces.DocumentOps`, Alembic's operations for SQL).
    Its own attributes are underscored, so no store name can shadow them; its
    one public method, :meth:`check_references`, cannot be a store name
    (:data:`ragrev.config.RESERVED_STORE_NAMES`, checked when the configuration is loaded)."""

    def __init__(self, stores: dict[str, StoreConfig], path: str | None = None):
        self._stores = stores
        self._path = path
        self._namespaces: dict[str, object] = {}
        self._ops: list[Operation] = []
        self._is_revision_file: dict[str, bool] = {}  # code file name -> is it ``path`` (compared once per name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._namespaces:
            if name not in self._stores:
                raise OperationError(
                    f"{self._caller()}unknown store {name!r}; the configuration defines: {', '.join(self._stores) or 'none'}"
                )
            self._namespaces[name] = self._namespace(self._stores[name])
        return self._namespaces[name]

    def check_references(self, source: str, target: str, **options):
        """A check across stores (see :mod:`ragrev.references`); a step of the source store."""
        from ragrev.references import CheckReferences, parse_ref

        op = CheckReferences(source, target, **options)
        name = parse_ref(op, source, "source", field_required=False)[0]
        if name not in self._stores:
            raise OperationError(f"{self._caller()}check_references: unknown store {name!r}; the configuration "
                                 f"defines: {', '.join(self._stores) or 'none'}")
        if target != "archive" and parse_ref(op, target, "target")[0] not in self._stores:
            raise OperationError(f"{self._caller()}check_references: unknown store in target={target!r}; the "
                                 f"configuration defines: {', '.join(self._stores) or 'none'}")
        return self._emitter(name)(op)

    def _namespace(self, store: StoreConfig):
        emit = self._emitter(store.name)
        if store.kind == "sql":
            from ragrev.ops.sql import SqlRecorder

            dialect = store.url.split("://", 1)[0].split("+", 1)[0]
            return SqlRecorder(emit, "postgresql" if dialect == "postgres" else dialect)
        from ragrev.ops.namespaces import FAMILY_NAMESPACES

        return FAMILY_NAMESPACES.get(family_of(store.kind), StoreNamespace)(store, emit, self._caller)

    def _emitter(self, store_name):
        def emit(operation: Operation):
            operation.store = store_name
            loc = self._caller_location()
            if loc:
                operation.location = loc
            operation.validate()
            self._ops.append(operation)
            return operation

        return emit

    def _caller_location(self):
        if not self._path:
            return None
        f = sys._getframe(1)
        known = self._is_revision_file
        while f is not None:
            name = f.f_code.co_filename
            mine = known.get(name)
            if mine is None:
                mine = known[name] = name == self._path or _path_of(name) == _path_of(self._path)
            if mine:
                return (self._path, f.f_lineno)
            f = f.f_back
        return None

    def _caller(self) -> str:
        loc = self._caller_location()
        return f"{loc[0]}:{loc[1]}: " if loc else ""


class StoreNamespace:
    """``op.<store>`` for a store of a family with ragrev's own operations: the
    base of the generated :mod:`ragrev.ops.namespaces` classes (one method per
    operation, with its signature and docstring). An operation missing from the
    generated class (a plugin's) and the former names of renamed operations are
    found by :meth:`__getattr__`."""

    def __init__(self, store: StoreConfig, emit, where):
        self._store = store
        self._emit = emit
        self._where = where
        self._notes: list[str] = []  # former spellings of the call being recorded (lint: former-spelling)

    def _former(self, note: str) -> None:
        """A former spelling in the call being recorded: a deprecation warning now, a lint finding later."""
        deprecated(note, self._where())
        self._notes.append(note)

    def _operation(self, name: str):
        """The operation class ``name`` of this store's family."""
        cls = operations_for(self._store.kind).get(name)
        if cls is None or cls.inverse_only:
            self._no_operation(name)
        return cls

    def _no_operation(self, name: str):
        raise OperationError(
            f"{self._where()}store {self._store.name!r} ({self._store.kind}) has no operation {name!r}; "
            f"it has: {', '.join(sorted(offered(self._store.kind)))}"
        )

    def _op(self, name: str, given: dict, *args):
        """Record operation ``name`` from a generated method's arguments
        (``given``: parameter -> value; those left at their default are left out)."""
        cls = self._operation(name)
        defaults = _defaults(cls)
        kwargs = {k: v for k, v in given.items() if k not in defaults or not _same(v, defaults[k])}
        return builder(cls, self._emit, self._where, self._notes)(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        ops = offered(self._store.kind)
        cls = ops.get(name)
        if cls is None and name in (former := former_names(self._store.kind)):
            cls = former[name]
            self._former(f"{name}() is deprecated: write {cls.name}()")
            method = getattr(type(self), cls.name, None)
            if method is not None:
                return method.__get__(self)
        if cls is None:
            if name == "chats":
                raise OperationError(f"{self._where()}store {self._store.name!r} ({self._store.kind}) holds no chat "
                                     f"archives; they live in a document or SQL store")
            self._no_operation(name)
        return builder(cls, self._emit, self._where, self._notes)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(offered(self._store.kind)))


class ChatArchives:
    """Mixin of the namespaces of families that hold chat archives."""

    def chats(self, collection, **options):
        """Chat-archive operations on a collection of this store (docs/chat-archives.md)."""
        from ragrev.ops.chats import ChatNamespace, ChatOp

        if self._store.kind not in ChatOp.impl_modules:
            raise OperationError(f"{self._where()}store {self._store.name!r} ({self._store.kind}) holds no chat "
                                 f"archives; they live in a document or SQL store")
        return ChatNamespace(self._emit, collection, options)


def operation_method(fn):
    """Decorator of the generated namespace methods: former keyword spellings
    (``Operation.renamed``) are turned into the current ones, with a deprecation
    warning, before the call (the method's signature has only the current ones)."""
    name = fn.__name__
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        cls = self._operation(name)
        if any(k in kwargs for k in cls.renamed):
            try:
                kwargs, notes = cls.current_spelling(kwargs)
            except ValueError as e:
                raise OperationError(f"{self._where()}{name}: {e}") from None
            for note in notes:
                self._former(note)
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as e:  # wrong arguments: one line naming the operation, as for any bad input
            raise OperationError(f"{self._where()}{name}: {e}") from None
        return fn(self, *args, **kwargs)

    return call


def _defaults(cls) -> dict:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not p.empty}


def _same(value, default) -> bool:
    if value is default:
        return True
    if type(value) is not type(default) or callable(value):
        return False
    try:
        return bool(value == default)
    except Exception:
        return False


def builder(cls, emit, where, pending: list | None = None):
    """A function that builds ``cls`` from a revision's arguments and records it
    (former keyword spellings turned into current ones, with a deprecation warning).
    The former spellings of the call (``pending``, said already, and its own) are
    kept on the operation as ``former_spellings`` (lint: ``former-spelling``)."""

    def build(*args, **kwargs):
        said = list(pending or ())
        if pending is not None:
            pending.clear()
        try:
            kwargs, notes = cls.current_spelling(kwargs)
            operation = cls(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise OperationError(f"{where()}{cls.name}: {e}") from None
        own = list(operation.former_spellings)  # a former spelling only the operation can tell (a value's type)
        for note in notes + own:
            deprecated(note, where())
        if said or notes:
            operation.former_spellings = tuple(said + notes + own)
        return emit(operation)

    build.__name__ = cls.name
    build.__doc__ = cls.__doc__
    return build


def record(script: Script, stores: dict[str, StoreConfig], direction: str = "up") -> list[Operation] | None:
    """The operations of ``script``'s upgrade (``"up"``) or downgrade (``"down"``);
    None for ``"down"`` when the file defines no downgrade."""
    fn = script.upgrade if direction == "up" else script.downgrade
    if fn is None:
        return None
    rec = Recorder(stores, str(script.path))
    try:
        fn(rec)
    except RagrevError:
        raise
    except Exception as e:
        line = line_in(e, script.path)
        raise RevisionFileError(
            f"{'upgrade' if direction == 'up' else 'downgrade'}() failed while planning: {type(e).__name__}: {e}",
            str(script.path), line,
        ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit, GeneratorExit...: the revision failed; never a silent exit
        line = line_in(e, script.path)
        loc = f"{script.path}:{line}: " if line else f"{script.path}: "
        raise StepFailed(
            f"{loc}revision {script.revision} failed: {'upgrade' if direction == 'up' else 'downgrade'}() raised "
            f"{type(e).__name__}({', '.join(map(repr, e.args))}) while planning; nothing was changed"
        ) from None
    return rec._ops


@contextmanager
def _gc_paused():
    """Python's cycle collector off while a revision is recorded and its
    operations rendered: both mostly add objects the plan keeps (rendering a
    SQL operation builds SQLAlchemy tables and indexes), so the collector's
    passes over the growing heap found almost nothing (67 objects in its six
    full passes) and cost a third of the CPU of planning a 20,000-operation
    revision.
    Reference counting still frees what is dropped; cycles made meanwhile
    are collected after."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def checksum_matches(plan, checksum: str | None) -> bool:
    """True when a journaled ``checksum`` is ``plan``'s (anything with ``checksum``
    and, optionally, ``former_checksum``)."""
    return checksum == plan.checksum or (checksum is not None and checksum == getattr(plan, "former_checksum", None))


class RevisionPlan:
    """A revision's recorded operations, split by store, and its checksum."""

    def __init__(self, script: Script, stores: dict[str, StoreConfig]):
        self.script = script
        self.revision = script.revision
        with _gc_paused():
            self.up = record(script, stores, "up")
            self.down = record(script, stores, "down")
            self.checksum = sha256_plan([o.canonical_json() for o in self.up],
                                        None if self.down is None else [o.canonical_json() for o in self.down])
        #: the checksum the previous release computed for these operations (None when the same):
        #: a revision applied then is not "edited" because its operations were renamed since
        self.former_checksum = None
        if any(o.has_former for o in self.up + (self.down or [])):
            former = sha256_plan([o.former_json() for o in self.up],
                                 None if self.down is None else [o.former_json() for o in self.down])
            self.former_checksum = former if former != self.checksum else None

    def matches(self, checksum: str | None) -> bool:
        """True when ``checksum`` (a journal's) is this plan's, now or as the previous release computed it."""
        return checksum_matches(self, checksum)

    def up_for(self, store: str) -> list[Operation]:
        return [o for o in self.up if o.store == store]

    def down_for(self, store: str) -> list[Operation] | None:
        if self.down is None:
            return None
        return [o for o in self.down if o.store == store]

    def stores(self) -> list[str]:
        """Stores touched, in order of first appearance."""
        seen = []
        for o in self.up + (self.down or []):
            if o.store not in seen:
                seen.append(o.store)
        # a store whose steps check references into another store of the revision
        # runs after it (so the check sees what that store's steps made)
        for o in self.up:
            dst = getattr(o, "dst", None)
            if getattr(o, "name", "") == "check_references" and dst and dst[0] in seen and o.store in seen \
                    and seen.index(o.store) < seen.index(dst[0]):
                seen.remove(o.store)
                seen.insert(seen.index(dst[0]) + 1, o.store)
        return seen
