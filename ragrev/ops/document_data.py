"""Document operations on documents: ``update_many``, ``transform``,
``insert`` (and its inverse-only ``delete_inserted``), and the checks
``expect_count`` and ``validate_all``; see :mod:`ragrev.ops.document`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from ragrev.errors import Irreversible
from ragrev.ops import Operation, register
from ragrev.ops.document_base import (KIND, DocumentOp, _check_batch, _check_collection, _check_filter, _check_update,
                                      _fail)
from ragrev.ops.document_schema import check_schema


# --- data ---------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class UpdateMany(DocumentOp):
    """``update_many(collection, filter, update, inverse=(filter, update))`` on
    the server. ``inverse`` may also be ``{"filter": ..., "update": ...}``. On a
    rerun after a crash the update runs again: use idempotent updates
    (``$set``/``$unset``), or ``transform`` for the others."""

    name: ClassVar[str] = "update_many"
    data_step: ClassVar[bool] = True
    collection: str
    filter: dict
    update: Any
    inverse: Any = None

    def validate(self):
        _check_collection(self, self.collection)
        _check_filter(self, self.filter)
        if self.filter is None:
            _fail(self, "filter is required ({} for every document)")
        _check_update(self, self.update)
        if self.inverse is not None:
            f, u = self._inverse_pair()
            _check_filter(self, f, "inverse filter")
            _check_update(self, u, "inverse update")

    def _inverse_pair(self):
        inv = self.inverse
        if isinstance(inv, dict) and set(inv) == {"filter", "update"}:
            return inv["filter"], inv["update"]
        if isinstance(inv, (list, tuple)) and len(inv) == 2:
            return inv[0], inv[1]
        _fail(self, "inverse must be (filter, update) or {'filter': ..., 'update': ...}")

    @property
    def reversible(self) -> bool:
        return self.inverse is not None

    def reverse(self, captured):
        if self.inverse is None:
            return super().reverse(captured)
        f, u = self._inverse_pair()
        return self.inverse_ops(UpdateMany(self.collection, f, u, inverse=(self.filter, self.update)))

    inverse_ops = Operation.inverse  # ``inverse`` is a parameter here


@register(KIND)
@dataclass(repr=False)
class Transform(DocumentOp):
    """Rewrite documents with ``fn(doc) -> new doc | None`` (None: unchanged),
    in ``_id`` order, ``batch_size`` at a time, resumable: each batch's new
    documents are saved before they are written, so a crash anywhere replays
    the writes instead of calling ``fn`` on a document twice. The ids of the
    changed documents are kept; the inverse runs ``inverse`` on exactly those."""

    name: ClassVar[str] = "transform"
    data_step: ClassVar[bool] = True
    collection: str
    fn: Callable
    inverse: Callable | None = None
    batch_size: int = 1000
    filter: dict | None = None
    ids_from: str | None = None  # set by reverse(): rewrite the documents listed in this trash

    def validate(self):
        _check_collection(self, self.collection)
        if not callable(self.fn):
            _fail(self, "fn must be a function of the document")
        if self.inverse is not None and not callable(self.inverse):
            _fail(self, "inverse must be a function of the document")
        _check_batch(self, self.batch_size)
        _check_filter(self, self.filter)
        if self.ids_from is not None:
            _check_collection(self, self.ids_from, "ids_from", internal=True)

    def simulate(self, state):
        self.need(state)
        if self.ids_from is not None:
            self.need_trash(state, self.ids_from)

    @property
    def reversible(self) -> bool:
        return self.inverse is not None

    def reverse(self, captured):
        if self.inverse is None:
            return super().reverse(captured)
        if not captured or "trash" not in captured:
            raise Irreversible(f"transform {self.collection!r}: the changed documents were not recorded")
        return self.inverse_ops(Transform(self.collection, self.inverse, self.fn, self.batch_size,
                                          ids_from=captured["trash"]))

    inverse_ops = Operation.inverse


@register(KIND)
@dataclass(repr=False)
class Insert(DocumentOp):
    """Insert ``rows`` (documents): a list of dicts, or a function returning
    an iterable of them (a generator) — called again when the step resumes,
    so it must yield the same documents in the same order.

    ``batch_size`` documents at a time, each batch checkpointed. The ids of
    the documents inserted are kept (a trash collection) so the inverse
    deletes exactly those. A document whose ``_id`` is already in the
    collection with the same content (after a BSON round trip, key order
    ignored) is left alone and not counted as inserted; with other content
    the step fails before writing that batch. Documents without ``_id`` get
    an ObjectId derived from the step and their position, so a rerun writes
    the same ids and never duplicates them. (Former spelling:
    ``insert_many(collection, documents=...)``.)"""

    name: ClassVar[str] = "insert"
    data_step: ClassVar[bool] = True
    old_names: ClassVar[tuple] = ("insert_many",)
    renamed: ClassVar[dict] = {"documents": "rows"}
    collection: str
    rows: Any
    batch_size: int = 1000

    def validate(self):
        _check_collection(self, self.collection)
        _check_batch(self, self.batch_size)
        if isinstance(self.rows, (list, tuple)):
            bad = next((d for d in self.rows if not isinstance(d, dict)), None)
            if bad is not None:
                _fail(self, f"documents must be dicts, got {type(bad).__name__}: {bad!r:.60}")
        elif not callable(self.rows):
            _fail(self, "rows (the documents) must be a list of dicts or a function returning an iterable of dicts")

    def describe(self) -> str:
        if isinstance(self.rows, (list, tuple)):
            n = len(self.rows)
            what = f"{n} document{'' if n == 1 else 's'}"
        else:
            what = f"{getattr(self.rows, '__name__', 'rows')}()"
        return f"insert({self.collection!r}, {what}, batch_size={self.batch_size})"

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"insert {self.collection!r}: the inserted documents were not recorded")
        return self.inverse(DeleteInserted(self.collection, captured["trash"]))


#: the former name (``insert_many``), for code that builds the operation directly
InsertMany = Insert


@register(KIND)
@dataclass(repr=False)
class DeleteInserted(DocumentOp):
    """Inverse of ``insert``: delete the documents whose ids are listed in ``trash``."""

    name: ClassVar[str] = "delete_inserted"
    inverse_only: ClassVar[bool] = True
    data_step: ClassVar[bool] = True
    rows_only: ClassVar[bool] = True
    collection: str
    trash: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_collection(self, self.trash, "trash", internal=True)

    def simulate(self, state):
        self.need(state)
        self.need_trash(state, self.trash)


# --- checks ----------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class ExpectCount(DocumentOp):
    """Fail the run unless the number of documents (matching ``filter``) is
    ``count``, within ``at_least``..``at_most``, and equal to the number of
    documents of the collection ``same_as``, for those given."""

    name: ClassVar[str] = "expect_count"
    is_check: ClassVar[bool] = True
    added: ClassVar[tuple] = ("same_as",)
    collection: str
    count: int | None = None
    filter: dict | None = None
    at_least: int | None = None
    at_most: int | None = None
    same_as: str | None = None

    def validate(self):
        _check_collection(self, self.collection)
        _check_filter(self, self.filter)
        if self.count is None and self.at_least is None and self.at_most is None and self.same_as is None:
            _fail(self, "give count=, at_least=, at_most= or same_as=")
        for key in ("count", "at_least", "at_most"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                _fail(self, f"{key}= must be a number of documents, got {value!r}")
        if self.same_as is not None:
            _check_collection(self, self.same_as, "same_as")

    def simulate(self, state):
        self.need(state)
        if self.same_as is not None:
            self.need(state, self.same_as)


@register(KIND)
@dataclass(repr=False)
class ValidateAll(DocumentOp):
    """Fail the run unless every document (matching ``filter``) is valid
    against ``schema``, checked in Python with ``jsonschema`` (``bsonType`` is
    understood too)."""

    name: ClassVar[str] = "validate_all"
    is_check: ClassVar[bool] = True
    collection: str
    schema: dict
    filter: dict | None = None
    sample: int = 5
    batch_size: int = 1000

    def validate(self):
        _check_collection(self, self.collection)
        _check_filter(self, self.filter)
        _check_batch(self, self.batch_size)
        check_schema(self.schema, f"{self.where()}{self.name}: ")
