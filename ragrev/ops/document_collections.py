"""Document operations on collections, validators and indexes
(``create_collection``, ``drop_collection``, ``rename_collection``,
``set_schema``, ``set_validator``, ``create_index``, ``drop_index`` and the
inverse-only ``restore_collection``); see :mod:`ragrev.ops.document`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field as dc_field
from typing import ClassVar

from ragrev.errors import Irreversible
from ragrev.ops import register
from ragrev.ops.document_base import (ACTIONS, KIND, LEVELS, DocumentOp, _check_collection, _check_field, _fail,
                                      _SchemaMixin)
from ragrev.ops.document_schema import DocCollection


# --- collections -------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class CreateCollection(_SchemaMixin, DocumentOp):
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

    def simulate(self, state):
        schema = getattr(self, "mongo_schema", None)
        if schema is None:
            state.put(self.collection, DocCollection())
        else:
            state.put(self.collection, DocCollection({"$jsonSchema": schema}, self.validation_level,
                                                     self.validation_action))

    def reverse(self, captured):
        return self.inverse(DropCollection(self.collection))


@register(KIND)
@dataclass(repr=False)
class DropCollection(DocumentOp):
    """Soft drop: the collection is renamed into ``ragrev_trash_<time>_<name>``
    (with its documents, indexes and validator); ``ragrev purge`` deletes it."""

    name: ClassVar[str] = "drop_collection"
    destructive: ClassVar[bool] = True
    drops_collection: ClassVar[bool] = True
    collection: str

    def validate(self):
        _check_collection(self, self.collection)

    def simulate(self, state):
        self.need(state)
        state.remove(self.collection)

    def reverse(self, captured):
        if not captured or "trash" not in captured:
            raise Irreversible(f"drop_collection {self.collection!r}: no trash collection recorded")
        return self.inverse(RestoreCollection(captured["trash"], self.collection, captured.get("options")))


@register(KIND)
@dataclass(repr=False)
class RestoreCollection(DocumentOp):
    """Inverse of ``drop_collection``: rename the trash collection back."""

    name: ClassVar[str] = "restore_collection"
    inverse_only: ClassVar[bool] = True
    trash: str
    collection: str
    options: dict | None = None

    def validate(self):
        _check_collection(self, self.trash, "trash", internal=True)
        _check_collection(self, self.collection)

    def simulate(self, state):
        self.need_trash(state, self.trash)
        if state.get(self.collection) is not None:
            raise self.fail(f"collection {self.collection!r} exists again; rename it first")
        state.rename(self.trash, self.collection)

    def reverse(self, captured):
        return self.inverse(DropCollection(self.collection))


@register(KIND)
@dataclass(repr=False)
class RenameCollection(DocumentOp):
    """Rename a collection (documents, indexes and validator go with it).
    Inverse: the rename back."""

    name: ClassVar[str] = "rename_collection"
    collection: str
    new_name: str

    def validate(self):
        _check_collection(self, self.collection)
        _check_collection(self, self.new_name, "new_name")

    def simulate(self, state):
        self.need(state)
        if state.get(self.new_name) is not None:
            raise self.fail(f"collection {self.new_name!r} already exists")
        state.rename(self.collection, self.new_name)

    def reverse(self, captured):
        return self.inverse(RenameCollection(self.new_name, self.collection))


# --- validators ------------------------------------------------------------------------------

@register(KIND)
@dataclass(repr=False)
class SetSchema(_SchemaMixin, DocumentOp):
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

    def simulate(self, state):
        _set_validator(self.need(state), {"$jsonSchema": getattr(self, "mongo_schema", self.schema)}, self)

    def reverse(self, captured):
        return _restore_validator(self, captured)


@register(KIND)
@dataclass(repr=False)
class SetValidator(DocumentOp):
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

    def simulate(self, state):
        validator = self.validator
        if self.ejson and validator is not None:
            from bson import json_util  # an inverse's captured validator (bson comes with pymongo)

            validator = json_util.loads(json.dumps(validator))
        _set_validator(self.need(state), validator, self)

    def reverse(self, captured):
        return _restore_validator(self, captured)


def _set_validator(coll: DocCollection, validator, op) -> None:
    coll.validator = validator or None
    coll.level = op.validation_level or coll.level
    coll.action = op.validation_action or coll.action


def _restore_validator(op, captured):
    if not captured or "previous" not in captured:
        raise Irreversible(f"{op.name} {op.collection!r}: the previous validator was not captured")
    prev = captured["previous"]
    return op.inverse(SetValidator(op.collection, prev.get("validator"), prev.get("validationLevel") or "strict",
                                   prev.get("validationAction") or "error", ejson=True))


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
class CreateIndex(DocumentOp):
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

    def simulate(self, state):
        self.need(state).indexes[self.index_name] = [list(k) for k in self.keys]

    def reverse(self, captured):
        return self.inverse(DropIndex(self.collection, self.index_name))


@register(KIND)
@dataclass(init=False, repr=False)
class DropIndex(DocumentOp):
    """``drop_index(collection, index_name)``, or ``drop_index(collection,
    field=f)``: the index whose key is exactly the one field ``f``. The
    index's spec is captured for the inverse. (Former spelling: ``name=``.)"""

    name: ClassVar[str] = "drop_index"
    destructive: ClassVar[bool] = True
    renamed: ClassVar[dict] = {"name": "index_name"}
    former_keys: ClassVar[dict] = {"index_name": "index_name"}
    added: ClassVar[tuple] = ("field",)
    collection: str
    index_name: str | None = None
    field: str | None = None

    def __init__(self, collection, index_name=None, field=None):
        self.collection = collection
        self.index_name = index_name
        self.field = field

    def validate(self):
        _check_collection(self, self.collection)
        if (self.index_name is None) == (self.field is None):
            _fail(self, "give the index's name (index_name=) or its one field (field=), not both")
        if self.field is not None:
            _check_field(self, self.field)
        elif not isinstance(self.index_name, str) or not self.index_name or self.index_name == "_id_":
            _fail(self, f"bad index name {self.index_name!r}")

    def resolve(self, indexes: dict) -> str | None:
        """The name of the index this drops among ``indexes`` (name -> keys)."""
        if self.index_name is not None:
            return self.index_name if self.index_name in indexes else None
        names = [n for n, keys in indexes.items() if len(keys) == 1 and keys[0][0] == self.field and n != "_id_"]
        if len(names) > 1:
            raise self.fail(f"collection {self.collection!r} has {len(names)} indexes on {self.field!r} "
                            f"({', '.join(sorted(names))}): name one with index_name=")
        return names[0] if names else None

    def simulate(self, state):
        coll = self.need(state)
        found = self.resolve(coll.indexes)
        if found is None:
            what = repr(self.index_name) if self.index_name is not None else f"on {self.field!r} alone"
            raise self.fail(f"collection {self.collection!r} has no index {what}")
        del coll.indexes[found]

    def reverse(self, captured):
        if not captured or "spec" not in captured:
            raise Irreversible(f"drop_index {self.collection}.{self.index_name or self.field}: "
                               "the index spec was not captured")
        spec = dict(captured["spec"])
        keys = spec.pop("key")
        spec.pop("name", None)
        name = self.index_name or captured.get("index_name")
        return self.inverse(CreateIndex(self.collection, keys, name, spec.pop("unique", False), options=spec))
