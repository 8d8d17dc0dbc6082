"""What every document operation shares: argument checks, the ``MISSING``
marker (:data:`ragrev.ops.MISSING`), and :class:`DocumentOp`, the base class with its state effect
(:meth:`DocumentOp.simulate` over :class:`ragrev.ops.document_schema.DocState`).

Pure data: no driver is imported here.
"""
from __future__ import annotations

from typing import ClassVar

from ragrev.errors import OperationError
from ragrev.ops import MISSING, Operation  # noqa: F401 - re-exported: the document operations' marker
from ragrev.stores import TRASH_PREFIX
from ragrev.ops.document_schema import DocState, check_schema, to_mongo_schema

KIND = "mongo"
LEVELS = ("strict", "moderate", "off")
ACTIONS = ("error", "warn", "errorAndLog")


# --- argument checks -------------------------------------------------------------------

def _fail(op: Operation, message: str):
    raise OperationError(f"{op.where()}{op.name}: {message}")


def _check_collection(op: Operation, name, what: str = "collection", internal: bool = False) -> None:
    if not isinstance(name, str) or not name:
        _fail(op, f"{what} must be a non-empty string, got {name!r}")
    if "$" in name or "\0" in name or name.startswith("system."):
        _fail(op, f"invalid {what} name {name!r}")
    if name.startswith("ragrev_") and not internal:
        _fail(op, f"{what} {name!r}: names starting with 'ragrev_' are reserved for ragrev")


def _check_field(op: Operation, path, what: str = "field") -> None:
    if not isinstance(path, str) or not path:
        _fail(op, f"{what} must be a non-empty string, got {path!r}")
    parts = path.split(".")
    if any(not p or p.startswith("$") for p in parts):
        _fail(op, f"invalid {what} path {path!r}")
    if parts[0] == "_id":
        _fail(op, f"{what} {path!r}: _id cannot be changed")


def _check_filter(op: Operation, value, what: str = "filter") -> None:
    if value is not None and not isinstance(value, dict):
        _fail(op, f"{what} must be a dict (a MongoDB query), got {type(value).__name__}")


def _check_batch(op: Operation, size) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        _fail(op, f"batch_size must be a positive integer, got {size!r}")


def _check_update(op: Operation, update, what: str = "update") -> None:
    if isinstance(update, list):
        if not update or not all(isinstance(s, dict) and len(s) == 1 for s in update):
            _fail(op, f"{what} as a pipeline must be a non-empty list of stages like {{'$set': ...}}")
    elif isinstance(update, dict):
        if not update or not all(isinstance(k, str) and k.startswith("$") for k in update):
            _fail(op, f"{what} must use update operators ({{'$set': {{...}}}}); to replace documents use transform")
    else:
        _fail(op, f"{what} must be a dict of update operators or a pipeline (list), got {type(update).__name__}")


def parent_of(path: str) -> str:
    """``"a.b.c"`` -> ``"a.b"``; a top-level field's parent is ``""``."""
    return path.rsplit(".", 1)[0] if "." in path else ""


class _SchemaMixin:
    def _check_schema(self, schema) -> dict:
        check_schema(schema, f"{self.where()}{self.name}: ")
        translated, dropped = to_mongo_schema(schema, f"{self.where()}{self.name}: ")
        self.dropped_keywords = dropped
        return translated


class DocumentOp(Operation):
    """Base of the document operations: where their implementations live and
    their effect on a :class:`DocState` (what preflight simulates)."""

    impl_modules: ClassVar[dict] = {KIND: "ragrev.drivers.mongo.steps"}

    def fail(self, message: str) -> OperationError:
        return OperationError(f"{self.where()}{self.name}: {message}")

    def need(self, state: DocState, name: str | None = None):
        """The collection ``name`` (default: the op's) as the earlier steps leave it."""
        name = name or self.collection
        coll = state.get(name)
        if coll is None:
            raise self.fail(f"store {state.store!r} has no collection {name!r}")
        return coll

    def need_trash(self, state: DocState, name: str) -> None:
        if state.get(name) is None:
            raise self.fail(f"trash collection {name!r} is gone (purged?)")

    def simulate(self, state: DocState) -> None:
        """Check this step against ``state`` (raise :class:`OperationError`) and
        apply its effect there. Default: the step needs its collection."""
        self.need(state)
