"""``aggregate_into``: a MongoDB transform written as an aggregation pipeline,
run on the server (``$merge``), so no document travels through Python.

``aggregate_into(collection, pipeline, into)`` runs ``pipeline`` over
``collection`` and writes its output into a new collection ``into`` (the
blue-green way: the collection in service is never rewritten in place; a
``rename_collection`` or the application's configuration switches to it).
The output documents keep the ``_id`` the pipeline gives them; ``into`` must
not exist. Inverse: a soft ``drop_collection(into)``. A rerun after a kill
runs the whole pipeline again (``whenMatched: "replace"`` into a collection
only this step writes: idempotent). The implementation is in
:mod:`ragrev.drivers.mongo.pipeline`.

Writes that arrive during the step (``catch_up=``, see
``docs/reembedding.md``): the documents of ``collection`` inserted, updated,
replaced or deleted while the pipeline runs are carried into ``into`` in
rounds after it, each round running the same pipeline over the changed
``_id`` values only (deleted from ``into``, then merged again: those it no
longer yields stay deleted),
until a round finds fewer than ``catch_up_threshold`` changed documents (at
most ``catch_up_rounds`` rounds). Only per-document pipelines qualify
(``$set``/``$addFields``, ``$unset``, ``$project``, ``$match``,
``$replaceWith``/``$replaceRoot`` keeping ``_id``): the output of one
document must depend on that document alone.

- ``catch_up=True``: a change stream on ``collection``, opened before the
  pipeline runs (its resume token is kept in the journal, so a killed step
  resumes it); the server must support change streams (a replica set; a
  SecantusDB server run as ``python -m secantus``; not ragrev's embedded
  ``secantus://`` server, which runs standalone).
- ``catch_up="updated_at"`` (a field the application sets on every write:
  epoch seconds or a date): a change stream when the server has them, else
  the watermark: a round carries the documents whose field is
  ``>= mark - catch_up_skew``, ``mark`` being when the previous round (or
  the pipeline) began. Deletes in that mode: documents whose ``tombstone``
  field is true count as deleted, and after the rounds the ``_id`` values of
  ``into`` are read in pages and those ``collection`` no longer has are
  deleted.

Writes after the step are not carried: stop them, or switch right after.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ragrev.ops import Operation, register
from ragrev.ops.document_base import KIND, _check_collection, _check_filter, _fail
from ragrev.ops.document_collections import DropCollection

#: stages that write or leave the database: ragrev adds the $merge itself
FORBIDDEN = ("$out", "$merge")
#: the stages a ``catch_up=`` pipeline may use: one document's output depends on that document alone
PER_DOCUMENT = frozenset({"$set", "$addFields", "$unset", "$project", "$match", "$replaceWith", "$replaceRoot"})
#: the catch-up parameters and their defaults
CATCH_UP = {"catch_up": None, "tombstone": None, "catch_up_threshold": 100, "catch_up_rounds": 10,
            "catch_up_skew": 1.0}


@register(KIND)
@dataclass(repr=False)
class AggregateInto(Operation):
    """Run ``pipeline`` over ``collection`` on the server into the new
    collection ``into`` (see :mod:`ragrev.ops.document_pipeline`)."""

    name: ClassVar[str] = "aggregate_into"
    data_step: ClassVar[bool] = True
    impl_modules: ClassVar[dict] = {KIND: "ragrev.drivers.mongo.pipeline"}
    collection: str
    pipeline: list
    into: str
    filter: dict | None = None
    catch_up: bool | str | None = None
    tombstone: str | None = None
    catch_up_threshold: int = 100
    catch_up_rounds: int = 10
    catch_up_skew: float = 1.0

    def params(self) -> dict:
        # the catch-up parameters at their default stay out of the checksum (revisions written before them keep theirs)
        return {k: v for k, v in super().params().items() if k not in CATCH_UP or v != CATCH_UP[k]}

    def validate(self):
        _check_collection(self, self.collection)
        _check_collection(self, self.into, "into")
        _check_filter(self, self.filter)
        if self.into == self.collection:
            _fail(self, f"into= must name a new collection, not {self.collection!r} itself")
        if not isinstance(self.pipeline, list) or not all(isinstance(s, dict) and len(s) == 1 for s in self.pipeline):
            _fail(self, "pipeline must be a list of stages, each a dict with one key like {'$set': {...}}")
        for stage in self.pipeline:
            key = next(iter(stage))
            if not isinstance(key, str) or not key.startswith("$"):
                _fail(self, f"pipeline stage {stage!r} is not an aggregation stage")
            if key in FORBIDDEN:
                _fail(self, f"pipeline: leave {key} out (ragrev writes the output into {self.into!r} with $merge)")
        self._validate_catch_up()

    def _validate_catch_up(self):
        cu = self.catch_up
        if cu is None or cu is False:
            if self.tombstone:
                _fail(self, "tombstone= works with catch_up= (the watermark field)")
            return
        if not (cu is True or (isinstance(cu, str) and cu and "$" not in cu and not cu.startswith("."))):
            _fail(self, f"catch_up= must be True (a change stream) or a watermark field name, not {cu!r}")
        if self.tombstone is not None and not (isinstance(self.tombstone, str) and self.tombstone):
            _fail(self, f"tombstone= must be a field name, not {self.tombstone!r}")
        if self.tombstone and cu is True:
            _fail(self, "tombstone= is for the watermark mode (catch_up='field'); a change stream sees deletes")
        for key in ("catch_up_threshold", "catch_up_rounds"):
            value = getattr(self, key)
            low = 0 if key == "catch_up_threshold" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                _fail(self, f"{key}= must be an integer >= {low}, not {value!r}")
        skew = self.catch_up_skew
        if isinstance(skew, bool) or not isinstance(skew, (int, float)) or skew < 0:
            _fail(self, f"catch_up_skew= must be a number of seconds >= 0, not {skew!r}")
        for stage in self.pipeline:
            key = next(iter(stage))
            if key not in PER_DOCUMENT:
                _fail(self, f"catch_up=: stage {key} is not per-document (the rounds rerun the pipeline on the "
                            f"changed documents only); allowed: {', '.join(sorted(PER_DOCUMENT))}")

    def stages(self, ids: list | None = None) -> list:
        """The pipeline as run: over ``ids`` only when given (a catch-up round)."""
        match = dict(self.filter or {})
        if ids is not None:
            match = {"$and": [match, {"_id": {"$in": ids}}]} if match else {"_id": {"$in": ids}}
        if self.tombstone and self.catch_up:
            match = {"$and": [match, {self.tombstone: {"$ne": True}}]} if match else {self.tombstone: {"$ne": True}}
        return ([{"$match": match}] if match else []) + list(self.pipeline) + [
            {"$merge": {"into": self.into, "on": "_id", "whenMatched": "replace", "whenNotMatched": "insert"}}]

    def reverse(self, captured):
        return self.inverse(DropCollection(self.into))
