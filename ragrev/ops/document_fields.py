"""Document operations on fields: ``add_field``, ``rename_field``,
``drop_field`` and their inverse-only ``remove_added_field`` and
``restore_field``; see :mod:`ragrev.ops.document`.

Their state effect: MongoDB keeps no field list, so preflight knows fields
only where a collection's validator names them; a step is refused when
the validator (level strict, action error) would refuse its writes: a
required field renamed or dropped, a field added or renamed to a name that
``additionalProperties: false`` forbids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from ragrev.errors import Irreversible
from ragrev.ops import register
from ragrev.ops.document_base import (KIND, MISSING, DocumentOp, _check_batch, _check_collection, _check_field,
                                      _check_filter, _fail)


def _kept(op, coll, path: str) -> None:
    if coll.requires(path):
        raise op.fail(f"the validator of {op.collection!r} requires {path!r}: every document would fail it "
                      "(set_schema first)")


# --- fields ------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class AddField(DocumentOp):
    """Give ``field`` to the documents that lack it: ``default=`` a constant
    (set on the server, in one update), or ``fill=`` a function of the document
    (batched, in ``_id`` order). Existing values are never overwritten, and the
    inverse removes the field only where this step added it: with ``default=``,
    a read that stops at the first document (matching ``filter``) already
    having the field comes first; when there is none (the usual case) that
    fact is recorded and the inverse unsets the field from the documents
    matching ``filter``, keeping in a trash collection any value that differs
    from ``default`` (written by the application since); otherwise the ids of
    the documents changed are recorded first (one more pass), as they are per
    batch with ``fill=``. (Former spelling: ``fn=``.)"""

    name: ClassVar[str] = "add_field"
    data_step: ClassVar[bool] = True
    renamed: ClassVar[dict] = {"fn": "fill"}
    collection: str
    field: str
    default: Any = MISSING
    fill: Callable | None = None
    filter: dict | None = None
    batch_size: int = 1000

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)
        _check_filter(self, self.filter)
        _check_batch(self, self.batch_size)
        if (self.default is MISSING) == (self.fill is None):
            _fail(self, "give exactly one of default=VALUE or fill=FUNCTION")
        if self.fill is not None and not callable(self.fill):
            _fail(self, "fill must be a function of the document")

    def simulate(self, state):
        if self.need(state).refuses(self.field):
            raise self.fail(f"the validator of {self.collection!r} allows no field {self.field!r} "
                            "(additionalProperties: false): set_schema first")

    def describe(self) -> str:
        text = super().describe()
        if self.default is None:  # a real default, which describe() would hide
            text = text.replace(f"field={self.field!r}", f"field={self.field!r}, default=None", 1)
        return text

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"add_field {self.collection}.{self.field}: the changed documents were not recorded")
        if captured.get("shape") == "all":  # no document had the field: all those matching filter got it
            return self.inverse(RemoveAddedField(self.collection, self.field, captured["trash"], default=self.default,
                                                 filter=self.filter))
        return self.inverse(RemoveAddedField(self.collection, self.field, captured["trash"]))


@dataclass(repr=False)
class _FieldFromTrash(DocumentOp):
    """An inverse that reads, from the trash collection ``trash``, what its
    step kept of ``collection.field``."""

    data_step: ClassVar[bool] = True
    rows_only: ClassVar[bool] = True
    collection: str
    field: str
    trash: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)
        _check_collection(self, self.trash, "trash", internal=True)

    def simulate(self, state):
        self.need(state)
        self.need_trash(state, self.trash)


@register(KIND)
@dataclass(repr=False)
class RemoveAddedField(_FieldFromTrash):
    """Inverse of ``add_field``: unset ``field`` on the documents listed in
    ``trash``; or, given ``default`` (the step found no document with the
    field), on the documents matching ``filter``, first keeping in ``trash``
    (as ``drop_field`` does) the values that differ from ``default``."""

    name: ClassVar[str] = "remove_added_field"
    inverse_only: ClassVar[bool] = True
    added: ClassVar[tuple] = ("default", "filter")
    default: Any = MISSING
    filter: dict | None = None


@register(KIND)
@dataclass(repr=False)
class RenameField(DocumentOp):
    """Rename a field in every document that has it, with MongoDB's
    ``$rename`` (one update on the server): the field moves to the end of its
    object, as ``$rename`` moves it; the default, as MongoDB's own rename
    behaves (field order matters only to an exact match on a whole embedded
    object). ``keep_order=True``
    keeps its position instead (when old and new names share a parent), with
    an update pipeline that rewrites each document (slower); the inverse then
    restores documents byte for byte. Documents with an array on the way to
    the field are left alone. Fails, changing nothing, when a document
    already has ``new_name`` (a read that stops at the first such document
    comes first)."""

    name: ClassVar[str] = "rename_field"
    data_step: ClassVar[bool] = True
    added: ClassVar[tuple] = ("keep_order",)
    collection: str
    field: str
    new_name: str
    keep_order: bool = False

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)
        _check_field(self, self.new_name, "new_name")
        if self.field == self.new_name:
            _fail(self, "field and new_name are the same")
        if self.new_name.startswith(self.field + ".") or self.field.startswith(self.new_name + "."):
            _fail(self, "cannot rename a field into its own sub-field or parent")

    def simulate(self, state):
        coll = self.need(state)
        _kept(self, coll, self.field)
        if coll.refuses(self.new_name):
            raise self.fail(f"the validator of {self.collection!r} allows no field {self.new_name!r} "
                            "(additionalProperties: false): set_schema first")

    def former_normalized(self) -> dict:
        # the previous release had no keep_order and always kept the order: either value was its form
        # (a revision it applied keeps its checksum; a downgrade step it started is this inverse)
        former = super().former_normalized()
        former["params"].pop("keep_order", None)
        return former

    def reverse(self, captured):
        # a run without the record (journaled by a release before keep_order) used the order-keeping form
        keep = (captured or {}).get("keep_order", True)
        return self.inverse(RenameField(self.collection, self.new_name, self.field, keep_order=keep))


@register(KIND)
@dataclass(repr=False)
class DropField(DocumentOp):
    """Unset a field everywhere; its values and positions are kept in a trash
    collection (``ragrev_trash_...``) so the inverse restores them exactly."""

    name: ClassVar[str] = "drop_field"
    destructive: ClassVar[bool] = True
    data_step: ClassVar[bool] = True
    collection: str
    field: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)

    def simulate(self, state):
        _kept(self, self.need(state), self.field)

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"drop_field {self.collection}.{self.field}: no trash collection recorded")
        return self.inverse(RestoreField(self.collection, self.field, captured["trash"]))


@register(KIND)
@dataclass(repr=False)
class RestoreField(_FieldFromTrash):
    """Inverse of ``drop_field``: put the kept values back at their positions."""

    name: ClassVar[str] = "restore_field"
    inverse_only: ClassVar[bool] = True

    def reverse(self, captured):
        return self.inverse(DropField(self.collection, self.field))
