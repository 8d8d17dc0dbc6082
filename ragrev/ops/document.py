"""Document store operations: ``op.<mongo store>.<name>(...)`` (docs/store-kinds.md).

Pure data: no driver is imported here. This module gathers the family:
collections, validators and indexes in :mod:`ragrev.ops.document_collections`,
fields in :mod:`ragrev.ops.document_fields`, documents and checks in
:mod:`ragrev.ops.document_data`, ``aggregate_into`` in
:mod:`ragrev.ops.document_pipeline`, what they share in
:mod:`ragrev.ops.document_base`. JSON Schema checking, translation to
MongoDB's ``$jsonSchema`` and the state preflight simulates
(:class:`~ragrev.ops.document_schema.DocState`) are in
:mod:`ragrev.ops.document_schema` (a schema is checked when the revision is
read, so a bad one is exit 2 before anything runs). The MongoDB
implementations live in :mod:`ragrev.drivers.mongo.steps`.

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
- ``add_field(c, field, default=... | fill=..., filter=None, batch_size=1000)``:
  never overwrites a value -> ``remove_added_field``, which unsets the field
  on the documents it was added to, and only those (with ``default=`` and no
  document having had the field: those matching ``filter``, keeping values
  other than the default in the trash).
- ``rename_field(c, field, new_name, keep_order=False)``: ``$rename``, or an
  order-keeping pipeline -> ``rename_field(c, new_name, field)`` the same way
  (the order-keeping way for runs journaled before ``keep_order``).
- ``drop_field(c, field)``: values and positions kept in a trash collection
  -> ``restore_field``, which puts them back where they were.
- ``create_index(c, keys, name=None, unique=False, **options)`` -> ``drop_index(c, name)``.
- ``drop_index(c, index_name=None, field=None)`` -> ``create_index`` from the spec captured when it ran.
- ``insert(c, rows=list | fn, batch_size=1000)``: resumable, never
  duplicates, leaves documents that were there alone -> ``delete_inserted``,
  which deletes exactly the documents it inserted (their ids are kept in a
  trash collection).

Former spellings, still accepted for one release with a deprecation warning
(:mod:`ragrev.ops`): ``add_field(fn=)`` (now ``fill=``), ``insert_many(c,
documents=)`` (now ``insert(c, rows=)``), ``drop_index(c, name=)`` (now
``index_name=``). Inverse-only operations (``restore_collection``,
``remove_added_field``, ``restore_field``, ``delete_inserted``) are made by
``reverse()`` and not offered to revision authors.
- ``update_many(c, filter, update, inverse=(filter, update))`` -> the ``inverse``
  pair; none given: irreversible.
- ``transform(c, fn, inverse=g, batch_size=1000, filter=None)`` -> ``transform``
  with ``g`` over exactly the documents ``fn`` changed; no ``inverse``: irreversible.
- ``aggregate_into(c, pipeline, into, filter=None)`` (:mod:`ragrev.ops.document_pipeline`):
  the pipeline runs on the server into a new collection (``$merge``) -> a
  soft ``drop_collection(into)``.
- checks: ``expect_count(c, count=None, filter=None, at_least=None, at_most=None, same_as=None)``,
  ``validate_all(c, schema, filter=None)``.
"""
from __future__ import annotations

from ragrev.ops.document_base import (ACTIONS, KIND, LEVELS, MISSING, TRASH_PREFIX, DocumentOp,  # noqa: F401
                                      parent_of)
from ragrev.ops.document_collections import (CreateCollection, CreateIndex, DropCollection, DropIndex,  # noqa: F401
                                             RenameCollection, RestoreCollection, SetSchema, SetValidator,
                                             index_keys)
from ragrev.ops.document_fields import AddField, DropField, RemoveAddedField, RenameField, RestoreField  # noqa: F401
from ragrev.ops.document_data import (DeleteInserted, ExpectCount, Insert, InsertMany, Transform,  # noqa: F401
                                      UpdateMany, ValidateAll)
from ragrev.ops.document_pipeline import AggregateInto  # noqa: F401
from ragrev.ops.document_schema import DocCollection, DocState, check_schema, to_mongo_schema  # noqa: F401
