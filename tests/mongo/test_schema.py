"""JSON Schemas: checked against the meta-schema when the revision is read
(exit 2), translated to MongoDB's ``$jsonSchema`` dialect, and — on the
server — the translated validator accepts exactly the documents that
``jsonschema`` accepts for the original schema."""
from __future__ import annotations

import datetime as dt

import pytest
from bson import Int64, ObjectId

from ragrev.errors import OperationError
from ragrev.ops import document as m
from ragrev.drivers.mongo.steps import bson_validator


def test_type_const_exclusive_bounds_and_annotations_are_translated():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "Doc",
        "type": "object", "required": ["n"],
        "properties": {
            "n": {"type": ["integer", "null"], "exclusiveMinimum": 0, "default": 1},
            "tag": {"const": "a", "format": "hostname", "examples": ["a"]},
            "f": {"type": "number", "maximum": 10, "exclusiveMaximum": 5},
            "ok": {"type": "boolean"}, "id": {"bsonType": "objectId", "type": "string"},
        },
        "additionalProperties": True,
    }
    out, dropped = m.to_mongo_schema(schema)
    assert out == {
        "title": "Doc", "bsonType": "object", "required": ["n"],
        "properties": {
            "n": {"bsonType": ["int", "long", "null"], "minimum": 0, "exclusiveMinimum": True},
            "tag": {"enum": ["a"]},
            "f": {"bsonType": "number", "maximum": 10, "allOf": [{"maximum": 5, "exclusiveMaximum": True}]},
            "ok": {"bsonType": "bool"}, "id": {"bsonType": "objectId"},
        },
        "additionalProperties": True,
    }
    assert dropped == ["/: $schema", "/: $id", "/properties/n: default", "/properties/tag: format",
                       "/properties/tag: examples"]


def test_local_refs_prefix_items_and_dependent_keywords():
    schema = {
        "$defs": {"tags": {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}}},
        "properties": {"t": {"$ref": "#/$defs/tags"}, "u": {"$ref": "#/$defs/tags", "maxItems": 3}, "x": False},
        "dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": {"required": ["d"]}},
    }
    out, _ = m.to_mongo_schema(schema)
    tags = {"bsonType": "array", "items": [{"bsonType": "string"}], "additionalItems": {"bsonType": ["int", "long"]}}
    assert out["properties"] == {"t": tags, "u": {"allOf": [tags, {"maxItems": 3}]}, "x": {"not": {}}}
    assert out["dependencies"] == {"a": ["b"], "c": {"required": ["d"]}}


@pytest.mark.parametrize("schema, word", [
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, "/: if; /: then"),
    ({"properties": {"a": {"contains": {"type": "string"}}}}, "/properties/a: contains"),
    ({"propertyNames": {"maxLength": 3}}, "propertyNames"),
    ({"$defs": {"n": {"properties": {"c": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}, "recursive $ref"),
    ({"$ref": "https://example.com/s.json"}, "only local refs"),
])
def test_keywords_mongodb_cannot_express_are_errors(schema, word):
    with pytest.raises(OperationError, match="cannot express") as e:
        m.SetSchema("docs", schema).validate()
    assert word in str(e.value) and e.value.exit_code == 2


@pytest.mark.parametrize("schema, message", [
    ({"type": "objekt"}, "invalid JSON Schema at type"),
    ({"properties": {"a": {"minLength": -1}}}, "invalid JSON Schema at properties/a/minLength"),
    ({"required": "title"}, "invalid JSON Schema at required"),
    ([1], "must be a JSON Schema object"),
])
def test_invalid_schemas_are_bad_input(schema, message):
    for op in (m.SetSchema("docs", schema), m.CreateCollection("docs", schema), m.ValidateAll("docs", schema)):
        with pytest.raises(OperationError, match=message) as e:
            op.validate()
        assert e.value.exit_code == 2


@pytest.mark.parametrize("make", [
    lambda: m.CreateCollection("ragrev_x"), lambda: m.AddField("docs", "a"), lambda: m.AddField("docs", "a", 1, fill=str),
    lambda: m.DropField("docs", "_id"), lambda: m.RenameField("docs", "a", "a.b"), lambda: m.Transform("docs", fn=1),
    lambda: m.UpdateMany("docs", {}, {"a": 1}), lambda: m.UpdateMany("docs", {}, {"$set": {}}, inverse=1),
    lambda: m.CreateIndex("docs", [("a", 2)]), lambda: m.ExpectCount("docs"), lambda: m.Transform("docs", str, batch_size=0),
    lambda: m.SetSchema("docs", {}, on_violation="ignore"),
])
def test_bad_arguments_are_reported_when_the_revision_is_read(make):
    with pytest.raises(OperationError):
        make().validate()


SCHEMAS = [
    {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10}}},
    {"properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 2}}},
    {"properties": {"kind": {"const": "a"}, "when": {"bsonType": "date"}}, "dependentRequired": {"kind": ["when"]}},
    {"anyOf": [{"required": ["a"]}, {"required": ["b"]}], "not": {"required": ["c"]}},
    {"properties": {"_id": {"bsonType": "objectId"}, "s": {"type": "string", "pattern": "^x", "minLength": 2}},
     "additionalProperties": {"type": ["string", "integer", "null", "object"]}},
    {"$defs": {"pos": {"type": "number", "exclusiveMinimum": 0}}, "properties": {"p": {"$ref": "#/$defs/pos"}}},
]
DOCS = [
    {"n": 1}, {"n": 0}, {"n": 10}, {"n": -1}, {"n": 2.5}, {"n": Int64(3)}, {"n": "1"}, {},
    {"tags": ["a", "b"]}, {"tags": ["a", "a"]}, {"tags": ["a", "b", "c"]}, {"tags": [1]},
    {"kind": "a", "when": dt.datetime(2024, 1, 1)}, {"kind": "a"}, {"kind": "b", "when": "x"},
    {"a": 1}, {"b": 1, "c": 1}, {"s": "xy"}, {"s": "ab"}, {"s": "x"}, {"s": "xy", "t": 1.5}, {"s": "xy", "t": None},
    {"p": 1}, {"p": 0}, {"p": -2.5}, {"p": "1"},
]


@pytest.mark.parametrize("i", range(len(SCHEMAS)))
def test_translated_validator_accepts_exactly_what_jsonschema_accepts(db, i):
    schema = SCHEMAS[i]
    translated, _ = m.to_mongo_schema(schema)
    docs = [{"_id": ObjectId(), **d} for d in DOCS]
    db.docs.insert_many(docs)
    on_server = {d["_id"] for d in db.docs.find({"$jsonSchema": translated}, {"_id": 1})}
    validator = bson_validator(schema)
    in_python = {d["_id"] for d in docs if validator.is_valid(d)}
    assert 0 < len(in_python) < len(docs)
    assert on_server == in_python, [d for d in docs if (d["_id"] in on_server) != (d["_id"] in in_python)]
