"""Document store operations: ``op.<mongo store>.<name>(...)`` (docs/store-kinds.md).

Pure data: no driver is imported here. The MongoDB implementations live in
:mod:`ragrev.drivers.mongo.steps`; JSON Schema checking and translation to
MongoDB's ``$jsonSchema`` in :mod:`ragrev.ops.document_schema` (a schema is
checked when the revision is read, so a bad one is exit 2 before anything runs).

Operations, and the inverse a derived downgrade uses:

- ``create_collection(c, schema=None, validation_level="strict", validation_action="error", options={})``
  -> ``drop_collection(c)``.
- ``drop_collection(c)``: soft, renamed ``ragrev_trash_<time>_<c>`` with its
  documents, indexes and validator -> ``restore_collection`` (renamed back).
- ``rename_collection(c, new_name)`` -> ``rename_collection(new_name, c)``.
- ``set_schema(c, schema, on_violation="fail"|"warn", validation_level=None, validation_action=None)``:
  existing violators counted first -> ``set_validator`` with the validator,
  level and action captured when it ran.
- ``set_validator(c, validator, validation_level=None, validation_action=None)``:
  a raw MongoDB validator -> ``set_validator`` with the captured one.
- ``add_field(c, field, default=... | fn=..., filter=None, batch_size=1000)``:
  never overwrites a value -> ``remove_added_field``, which unsets the field
  on the documents it was added to, and only those.
- ``rename_field(c, field, new_name)`` -> ``rename_field(c, new_name, field)``.
- ``drop_field(c, field)``: values and positions kept in a trash collection
  -> ``restore_field``, which puts them back where they were.
- ``create_index(c, keys, name=None, unique=False, **options)`` -> ``drop_index(c, name)``.
- ``drop_index(c, name)`` -> ``create_index`` from the spec captured when it ran.
- ``insert_many(c, documents=list | fn, batch_size=1000)``: resumable, never
  duplicates, leaves documents that were there alone -> ``delete_inserted``,
  which deletes exactly the documents it inserted (their ids are kept in a
  trash collection).
- ``update_many(c, filter, update, inverse=(filter, update))`` -> the ``inverse``
  pair; none given: irreversible.
- ``transform(c, fn, inverse=g, batch_size=1000, filter=None)`` -> ``transform``
  with ``g`` over exactly the documents ``fn`` changed; no ``inverse``: irreversible.
- ``aggregate_into(c, pipeline, into, filter=None)`` (:mod:`ragrev.ops.document_pipeline`):
  the pipeline runs on the server into a new collection (``$merge``) -> a
  soft ``drop_collection(into)``.
- checks: ``expect_count(c, count=None, filter=None, at_least=None, at_most=None)``,
  ``validate_all(c, schema, filter=None)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, ClassVar

from ragrev.errors import Irreversible, OperationError
from ragrev.ops import Operation, register
from ragrev.ops.document_schema import check_schema, to_mongo_schema

KIND = "mongo"
TRASH_PREFIX = "ragrev_trash_"
LEVELS = ("strict", "moderate", "off")
ACTIONS = ("error", "warn", "errorAndLog")


class _Missing:
    """No value given (``add_field`` without ``default=``)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


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


# --- collections -------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class CreateCollection(_SchemaMixin, Operation):
    """Create a collection, optionally with a JSON Schema validator."""

    name: ClassVar[str] = "create_collection"
    collection: str
    schema: dict | None = None
    validation_level: str = "strict"
    validation_action: str = "error"
    options: dict = dc_field(default_factory=dict)

    def validate(self):
        _check_collection(self, self.collection)
        if self.validation_level not in LEVELS:
            _fail(self, f"validation_level must be one of {', '.join(LEVELS)}")
        if self.validation_action not in ACTIONS:
            _fail(self, f"validation_action must be one of {', '.join(ACTIONS)}")
        if not isinstance(self.options, dict):
            _fail(self, "options must be a dict of createCollection options")
        self.mongo_schema = None if self.schema is None else self._check_schema(self.schema)

    def reverse(self, captured):
        return self.inverse(DropCollection(self.collection))


@register(KIND)
@dataclass(repr=False)
class DropCollection(Operation):
    """Soft drop: the collection is renamed into ``ragrev_trash_<time>_<name>``
    (with its documents, indexes and validator); ``ragrev purge`` deletes it."""

    name: ClassVar[str] = "drop_collection"
    destructive: ClassVar[bool] = True
    drops_collection: ClassVar[bool] = True
    collection: str

    def validate(self):
        _check_collection(self, self.collection)

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"drop_collection {self.collection!r}: no trash collection recorded")
        return self.inverse(RestoreCollection(captured["trash"], self.collection, captured.get("options")))


@register(KIND)
@dataclass(repr=False)
class RestoreCollection(Operation):
    """Inverse of ``drop_collection``: rename the trash collection back."""

    name: ClassVar[str] = "restore_collection"
    trash: str
    collection: str
    options: dict | None = None

    def validate(self):
        _check_collection(self, self.trash, "trash", internal=True)
        _check_collection(self, self.collection)

    def reverse(self, captured):
        return self.inverse(DropCollection(self.collection))


@register(KIND)
@dataclass(repr=False)
class RenameCollection(Operation):
    """Rename a collection (documents, indexes and validator go with it).
    Inverse: the rename back."""

    name: ClassVar[str] = "rename_collection"
    collection: str
    new_name: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_collection(self, self.new_name, "new_name")

    def reverse(self, captured):
        return self.inverse(RenameCollection(self.new_name, self.collection))


# --- validators ------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class SetSchema(_SchemaMixin, Operation):
    """Replace a collection's JSON Schema validator. Existing documents are
    checked first: with ``on_violation="fail"`` violators fail the step (their
    count and sample ``_id``s in the message) and nothing changes; with
    ``"warn"`` the schema is set anyway and the violators are reported.
    ``validation_level`` / ``validation_action``: None keeps the current ones."""

    name: ClassVar[str] = "set_schema"
    collection: str
    schema: dict
    on_violation: str = "fail"
    validation_level: str | None = None
    validation_action: str | None = None

    def validate(self):
        _check_collection(self, self.collection)
        if self.on_violation not in ("fail", "warn"):
            _fail(self, "on_violation must be 'fail' or 'warn'")
        if self.validation_level not in (None, *LEVELS):
            _fail(self, f"validation_level must be one of {', '.join(LEVELS)}")
        if self.validation_action not in (None, *ACTIONS):
            _fail(self, f"validation_action must be one of {', '.join(ACTIONS)}")
        self.mongo_schema = self._check_schema(self.schema)

    def reverse(self, captured):
        return _restore_validator(self, captured)


@register(KIND)
@dataclass(repr=False)
class SetValidator(Operation):
    """Set a raw MongoDB validator (any query document, or None for none);
    ``validation_level``/``validation_action`` None keep the current ones.
    ``ejson=True``: ``validator`` is canonical extended JSON (as captured)."""

    name: ClassVar[str] = "set_validator"
    collection: str
    validator: dict | None
    validation_level: str | None = None
    validation_action: str | None = None
    ejson: bool = False

    def validate(self):
        _check_collection(self, self.collection)
        if self.validator is not None and not isinstance(self.validator, dict):
            _fail(self, "validator must be a query document (dict) or None")
        if self.validation_level not in (None, *LEVELS):
            _fail(self, f"validation_level must be one of {', '.join(LEVELS)}")
        if self.validation_action not in (None, *ACTIONS):
            _fail(self, f"validation_action must be one of {', '.join(ACTIONS)}")

    def reverse(self, captured):
        return _restore_validator(self, captured)


def _restore_validator(op, captured):
    if not captured or "previous" not in captured:
        raise Irreversible(f"{op.name} {op.collection!r}: the previous validator was not captured")
    prev = captured["previous"]
    return op.inverse(SetValidator(op.collection, prev.get("validator"), prev.get("validationLevel") or "strict",
                                   prev.get("validationAction") or "error", ejson=True))


# --- fields ------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class AddField(Operation):
    """Give ``field`` to the documents that lack it: ``default=`` a constant
    (set on the server, in one update), or ``fn=`` a function of the document
    (batched, in ``_id`` order). Existing values are never overwritten; the ids
    of the documents changed are kept so the inverse removes only those."""

    name: ClassVar[str] = "add_field"
    data_step: ClassVar[bool] = True
    collection: str
    field: str
    default: Any = MISSING
    fn: Callable | None = None
    filter: dict | None = None
    batch_size: int = 1000

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)
        _check_filter(self, self.filter)
        _check_batch(self, self.batch_size)
        if (self.default is MISSING) == (self.fn is None):
            _fail(self, "give exactly one of default=VALUE or fn=FUNCTION")
        if self.fn is not None and not callable(self.fn):
            _fail(self, "fn must be a function of the document")

    def describe(self) -> str:
        text = super().describe().replace(", default=MISSING", "")
        if self.default is None:  # a real default, which describe() would hide
            text = text.replace(f"field={self.field!r}", f"field={self.field!r}, default=None", 1)
        return text

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"add_field {self.collection}.{self.field}: the changed documents were not recorded")
        return self.inverse(RemoveAddedField(self.collection, self.field, captured["trash"]))


@dataclass(repr=False)
class _FieldFromTrash(Operation):
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


@register(KIND)
@dataclass(repr=False)
class RemoveAddedField(_FieldFromTrash):
    """Inverse of ``add_field``: unset ``field`` on the documents listed in ``trash``."""

    name: ClassVar[str] = "remove_added_field"


@register(KIND)
@dataclass(repr=False)
class RenameField(Operation):
    """Rename a field in every document that has it, keeping its position
    (when old and new names share a parent). Fails, changing nothing, when a
    document already has ``new_name``."""

    name: ClassVar[str] = "rename_field"
    data_step: ClassVar[bool] = True
    collection: str
    field: str
    new_name: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_field(self, self.field)
        _check_field(self, self.new_name, "new_name")
        if self.field == self.new_name:
            _fail(self, "field and new_name are the same")
        if self.new_name.startswith(self.field + ".") or self.field.startswith(self.new_name + "."):
            _fail(self, "cannot rename a field into its own sub-field or parent")

    def reverse(self, captured):
        return self.inverse(RenameField(self.collection, self.new_name, self.field))


@register(KIND)
@dataclass(repr=False)
class DropField(Operation):
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

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"drop_field {self.collection}.{self.field}: no trash collection recorded")
        return self.inverse(RestoreField(self.collection, self.field, captured["trash"]))


@register(KIND)
@dataclass(repr=False)
class RestoreField(_FieldFromTrash):
    """Inverse of ``drop_field``: put the kept values back at their positions."""

    name: ClassVar[str] = "restore_field"

    def reverse(self, captured):
        return self.inverse(DropField(self.collection, self.field))


# --- indexes -------------------------------------------------------------------------------------

_DIRECTIONS = (1, -1, "text", "2d", "2dsphere", "hashed", "geoHaystack")


def index_keys(op, keys) -> list[list]:
    """``"title"``, ``["a", "b"]``, ``[("a", 1), ("b", -1)]`` or ``{"a": 1}`` -> ``[[field, dir], ...]``."""
    if isinstance(keys, str):
        keys = [keys]
    if isinstance(keys, dict):
        keys = list(keys.items())
    out = []
    if not isinstance(keys, (list, tuple)) or not keys:
        _fail(op, f"keys must be a field name, a list of fields or of (field, direction), got {keys!r}")
    for k in keys:
        if isinstance(k, str):
            k = (k, 1)
        if not isinstance(k, (list, tuple)) or len(k) != 2 or not isinstance(k[0], str):
            _fail(op, f"bad index key {k!r}: use (field, direction)")
        if k[1] not in _DIRECTIONS:
            _fail(op, f"unsupported index direction {k[1]!r} for {k[0]!r}: use one of {_DIRECTIONS}")
        out.append([k[0], k[1]])
    return out


@register(KIND)
@dataclass(init=False, repr=False)
class CreateIndex(Operation):
    """``create_index(collection, keys, name=None, unique=False, **options)``;
    ``options`` are MongoDB index options (sparse, partialFilterExpression,
    expireAfterSeconds, collation...)."""

    name: ClassVar[str] = "create_index"
    collection: str
    keys: list
    index_name: str | None
    unique: bool
    options: dict

    def __init__(self, collection, keys, name=None, unique=False, **options):
        self.collection = collection
        self.keys = keys
        self.index_name = name
        self.unique = unique
        self.options = options.pop("options", None) or options

    def validate(self):
        _check_collection(self, self.collection)
        self.keys = index_keys(self, self.keys)
        if self.index_name is None:  # MongoDB's default name
            self.index_name = "_".join(f"{f}_{d}" for f, d in self.keys)
        for bad in ("key", "name", "v", "ns"):
            if bad in self.options:
                _fail(self, f"option {bad!r} is not allowed here")

    def reverse(self, captured):
        return self.inverse(DropIndex(self.collection, self.index_name))


@register(KIND)
@dataclass(init=False, repr=False)
class DropIndex(Operation):
    """``drop_index(collection, name)``: the index's spec is captured for the inverse."""

    name: ClassVar[str] = "drop_index"
    destructive: ClassVar[bool] = True
    collection: str
    index_name: str

    def __init__(self, collection, name):
        self.collection = collection
        self.index_name = name

    def validate(self):
        _check_collection(self, self.collection)
        if not isinstance(self.index_name, str) or not self.index_name or self.index_name == "_id_":
            _fail(self, f"bad index name {self.index_name!r}")

    def reverse(self, captured):
        if not captured or "spec" not in captured:
            raise Irreversible(f"drop_index {self.collection}.{self.index_name}: the index spec was not captured")
        spec = dict(captured["spec"])
        keys = spec.pop("key")
        spec.pop("name", None)
        return self.inverse(CreateIndex(self.collection, keys, self.index_name, spec.pop("unique", False),
                                        options=spec))


# --- data ---------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class UpdateMany(Operation):
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
class Transform(Operation):
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
class InsertMany(Operation):
    """Insert ``documents``: a list of dicts, or a function returning an
    iterable of them (a generator) — called again when the step resumes, so
    it must yield the same documents in the same order.

    ``batch_size`` documents at a time, each batch checkpointed. The ids of
    the documents inserted are kept (a trash collection) so the inverse
    deletes exactly those. A document whose ``_id`` is already in the
    collection with the same content (after a BSON round trip, key order
    ignored) is left alone and not counted as inserted; with other content
    the step fails before writing that batch. Documents without ``_id`` get
    an ObjectId derived from the step and their position, so a rerun writes
    the same ids and never duplicates them."""

    name: ClassVar[str] = "insert_many"
    data_step: ClassVar[bool] = True
    collection: str
    documents: Any
    batch_size: int = 1000

    def validate(self):
        _check_collection(self, self.collection)
        _check_batch(self, self.batch_size)
        if isinstance(self.documents, (list, tuple)):
            bad = next((d for d in self.documents if not isinstance(d, dict)), None)
            if bad is not None:
                _fail(self, f"documents must be dicts, got {type(bad).__name__}: {bad!r:.60}")
        elif not callable(self.documents):
            _fail(self, "documents must be a list of dicts or a function returning an iterable of dicts")

    def describe(self) -> str:
        if isinstance(self.documents, (list, tuple)):
            n = len(self.documents)
            what = f"{n} document{'' if n == 1 else 's'}"
        else:
            what = f"{getattr(self.documents, '__name__', 'documents')}()"
        return f"insert_many({self.collection!r}, {what}, batch_size={self.batch_size})"

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"insert_many {self.collection!r}: the inserted documents were not recorded")
        return self.inverse(DeleteInserted(self.collection, captured["trash"]))


@register(KIND)
@dataclass(repr=False)
class DeleteInserted(Operation):
    """Inverse of ``insert_many``: delete the documents whose ids are listed in ``trash``."""

    name: ClassVar[str] = "delete_inserted"
    data_step: ClassVar[bool] = True
    rows_only: ClassVar[bool] = True
    collection: str
    trash: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_collection(self, self.trash, "trash", internal=True)


# --- checks ----------------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class ExpectCount(Operation):
    """Fail the run unless the number of documents (matching ``filter``) is
    ``count``, or within ``at_least``..``at_most``."""

    name: ClassVar[str] = "expect_count"
    is_check: ClassVar[bool] = True
    collection: str
    count: int | None = None
    filter: dict | None = None
    at_least: int | None = None
    at_most: int | None = None

    def validate(self):
        _check_collection(self, self.collection)
        _check_filter(self, self.filter)
        if self.count is None and self.at_least is None and self.at_most is None:
            _fail(self, "give count=, at_least= or at_most=")


@register(KIND)
@dataclass(repr=False)
class ValidateAll(Operation):
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


# server-side pipelines register themselves with the rest
from ragrev.ops.document_pipeline import AggregateInto  # noqa: E402,F401
