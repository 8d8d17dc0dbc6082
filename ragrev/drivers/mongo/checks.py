"""How a MongoDB store runs the checks ``expect_count`` and ``validate_all``
(:mod:`ragrev.ops.document_data`); :func:`bson_validator` checks documents
against a JSON Schema that may use ``bsonType``."""
from __future__ import annotations

import datetime as _dt

from ragrev.errors import CheckFailed
from ragrev.ops import document_data as m
from ragrev.stores import implementation
from ragrev.drivers.mongo.common import KIND, _coll, _fail, _ids


@implementation(m.ExpectCount, KIND)
def expect_count(store, op, ctx):
    coll = _coll(store, op)
    n = coll.count_documents(op.filter or {})
    wanted = []
    if op.count is not None and n != op.count:
        wanted.append(f"expected {op.count}")
    if op.at_least is not None and n < op.at_least:
        wanted.append(f"expected at least {op.at_least}")
    if op.at_most is not None and n > op.at_most:
        wanted.append(f"expected at most {op.at_most}")
    if op.same_as is not None:
        other = _coll(store, op, op.same_as).count_documents({})
        if n != other:
            wanted.append(f"expected {other} as in {op.same_as!r}")
    if wanted:
        what = " matching the filter" if op.filter else ""
        raise _fail(op, f"{n} documents{what}, {' and '.join(wanted)}", CheckFailed)
    return n


@implementation(m.ValidateAll, KIND)
def validate_all(store, op, ctx):
    coll = _coll(store, op)
    validator = bson_validator(op.schema)
    bad, sample, first, seen = 0, [], None, 0
    for doc in coll.find(op.filter or {}).sort("_id", 1).batch_size(op.batch_size):
        seen += 1
        error = next(iter(validator.iter_errors(doc)), None)
        if error is not None:
            bad += 1
            if len(sample) < op.sample:
                sample.append(doc["_id"])
            if first is None:
                where = "/".join(str(p) for p in error.absolute_path) or "(document)"
                first = f"{where}: {error.message}"[:200]
    if bad:
        raise _fail(op, f"{bad} of {seen} document(s) do not match the schema (e.g. _id {_ids(sample)}; first: {first})",
                    CheckFailed)
    return seen


def bson_validator(schema: dict):
    """A ``jsonschema`` validator for ``schema`` that also understands ``bsonType``."""
    import jsonschema
    from jsonschema import validators

    base = validators.validator_for(schema, default=jsonschema.Draft202012Validator)

    def bson_type(validator, types, instance, _schema):
        types = [types] if isinstance(types, str) else types
        if not any(is_bson_type(instance, t) for t in types):
            yield jsonschema.ValidationError(f"{instance!r:.60} is not of bsonType {types}")

    return validators.extend(base, {"bsonType": bson_type})(schema)


def is_bson_type(value, alias: str) -> bool:
    from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
    import re

    integer = isinstance(value, int) and not isinstance(value, bool)
    checks = {
        "double": isinstance(value, float), "string": isinstance(value, str), "object": isinstance(value, dict),
        "array": isinstance(value, list), "binData": isinstance(value, (bytes, Binary)),
        "objectId": isinstance(value, ObjectId), "bool": isinstance(value, bool),
        "date": isinstance(value, _dt.datetime), "null": value is None,
        "regex": isinstance(value, (Regex, re.Pattern)), "javascript": isinstance(value, Code),
        "int": integer and not isinstance(value, Int64) and -2 ** 31 <= value < 2 ** 31,
        "long": isinstance(value, Int64) or (integer and not -2 ** 31 <= value < 2 ** 31),
        "timestamp": isinstance(value, Timestamp), "decimal": isinstance(value, Decimal128),
        "minKey": isinstance(value, MinKey), "maxKey": isinstance(value, MaxKey),
        "number": (integer or isinstance(value, (float, Decimal128))),
    }
    return checks.get(alias, False)
