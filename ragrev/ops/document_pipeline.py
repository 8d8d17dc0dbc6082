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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ragrev.ops import Operation, register
from ragrev.ops.document_base import KIND, _check_collection, _check_filter, _fail
from ragrev.ops.document_collections import DropCollection

#: stages that write or leave the database: ragrev adds the $merge itself
FORBIDDEN = ("$out", "$merge")


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

    def stages(self) -> list:
        return ([{"$match": self.filter}] if self.filter else []) + list(self.pipeline) + [
            {"$merge": {"into": self.into, "on": "_id", "whenMatched": "replace", "whenNotMatched": "insert"}}]

    def reverse(self, captured):
        return self.inverse(DropCollection(self.into))
