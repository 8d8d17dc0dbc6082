"""JSON Schema for MongoDB: checking a schema against its meta-schema and
translating it into MongoDB's ``$jsonSchema`` dialect. Pure functions, no
driver (``jsonschema`` is imported when a schema is checked).

MongoDB implements draft 4 with ``bsonType`` added and some keywords left
out. :func:`to_mongo_schema` rewrites what has an equivalent (``type`` ->
``bsonType`` with ``integer`` -> ``["int", "long"]``; ``const`` -> one-value
``enum``; numeric ``exclusiveMinimum``/``exclusiveMaximum`` -> draft-4
booleans; local ``$ref`` inlined; ``prefixItems``, ``dependentRequired``,
``dependentSchemas`` -> their draft-4 spelling), drops annotations MongoDB
refuses (``$schema``, ``$id``, ``default``, ``format``, ``examples``... and
unknown keywords, which JSON Schema ignores too), and raises
:class:`OperationError` naming the keywords it cannot express (``if``/
``then``/``else``, ``contains``, ``propertyNames``, ``unevaluated*``,
recursive or remote ``$ref``).

Known difference left as is: JSON Schema's ``integer`` accepts ``3.0``;
MongoDB's ``int``/``long`` do not.

:class:`DocState` is the small schema-state model preflight simulates the
document operations on (``DocumentOp.simulate``): the collections, each
with its validator and its indexes.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

from ragrev.errors import OperationError

#: JSON Schema ``type`` -> MongoDB ``bsonType`` aliases
TYPE_TO_BSON = {
    "string": ["string"], "number": ["number"], "integer": ["int", "long"], "boolean": ["bool"],
    "object": ["object"], "array": ["array"], "null": ["null"],
}
#: keywords MongoDB's $jsonSchema knows (draft 4 plus ``bsonType``)
MONGO_KEYWORDS = {
    "additionalItems", "additionalProperties", "allOf", "anyOf", "bsonType", "dependencies", "description",
    "enum", "exclusiveMaximum", "exclusiveMinimum", "items", "maximum", "maxItems", "maxLength",
    "maxProperties", "minimum", "minItems", "minLength", "minProperties", "multipleOf", "not", "oneOf",
    "pattern", "patternProperties", "properties", "required", "title", "type", "uniqueItems",
}
#: annotations without effect on validity that MongoDB refuses: dropped
DROPPED_ANNOTATIONS = {
    "$schema", "$id", "id", "$comment", "default", "examples", "format", "readOnly", "writeOnly",
    "deprecated", "contentMediaType", "contentEncoding", "contentSchema", "$defs", "definitions",
    "$anchor", "$vocabulary",
}
#: keywords that constrain documents but have no MongoDB equivalent
UNSUPPORTED = {
    "if", "then", "else", "contains", "minContains", "maxContains", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
    "$recursiveAnchor",
}


def check_schema(schema, where: str = "") -> None:
    """Check ``schema`` against its JSON Schema meta-schema (the draft its
    ``$schema`` names, 2020-12 by default); :class:`OperationError` if invalid."""
    import jsonschema
    from jsonschema import validators

    if not isinstance(schema, dict):
        raise OperationError(f"{where}schema must be a JSON Schema object (a dict), got {type(schema).__name__}")
    cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise OperationError(f"{where}invalid JSON Schema at {path}: {e.message}") from None


def to_mongo_schema(schema: dict, where: str = "") -> tuple[dict, list[str]]:
    """Translate a JSON Schema into MongoDB's ``$jsonSchema`` dialect.

    Returns ``(translated, dropped)`` where ``dropped`` lists the annotation
    keywords removed (as ``path: keyword``). Keywords MongoDB cannot express
    raise :class:`OperationError` naming them.
    """
    dropped: list[str] = []
    unsupported: list[str] = []
    root = schema

    def resolve(ref: str, path: str, seen: tuple):
        if ref in seen:
            unsupported.append(f"{path}: recursive $ref {ref!r}")
            return {}
        if not ref.startswith("#/"):
            unsupported.append(f"{path}: $ref {ref!r} (only local refs like '#/$defs/name' can be inlined)")
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                unsupported.append(f"{path}: unresolvable $ref {ref!r}")
                return {}
        return conv(node, path, seen + (ref,))

    def conv(s, path: str, seen: tuple = (), allow_bool: bool = False):
        if isinstance(s, bool):
            if allow_bool:
                return s
            return {} if s else {"not": {}}
        if not isinstance(s, dict):
            return s
        out: dict = {}
        if "$ref" in s:
            target = resolve(s["$ref"], path, seen)
            rest = {k: v for k, v in s.items() if k != "$ref"}
            if not rest:
                return target
            return {"allOf": [target, conv(rest, path, seen)]}
        for key, value in s.items():
            at = f"{path}/{key}"
            if key in DROPPED_ANNOTATIONS:
                dropped.append(f"{path or '/'}: {key}")
            elif key in UNSUPPORTED:
                unsupported.append(f"{path or '/'}: {key}")
            elif key in ("properties", "patternProperties"):
                out[key] = {k: conv(v, f"{at}/{k}", seen) for k, v in value.items()}
            elif key in ("additionalProperties", "additionalItems"):
                out[key] = conv(value, at, seen, allow_bool=True)
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [conv(v, f"{at}/{i}", seen) for i, v in enumerate(value)]
            elif key == "not":
                out[key] = conv(value, at, seen)
            elif key == "items":
                if "prefixItems" in s:  # 2020-12: items after the prefix
                    out["additionalItems"] = conv(value, at, seen, allow_bool=True)
                elif isinstance(value, list):
                    out[key] = [conv(v, f"{at}/{i}", seen) for i, v in enumerate(value)]
                else:
                    out[key] = conv(value, at, seen)
            elif key == "prefixItems":
                out["items"] = [conv(v, f"{at}/{i}", seen) for i, v in enumerate(value)]
            elif key in ("dependencies", "dependentSchemas", "dependentRequired"):
                deps = out.setdefault("dependencies", {})
                for k, v in value.items():
                    deps[k] = list(v) if isinstance(v, list) else conv(v, f"{at}/{k}", seen)
            elif key == "type":
                if "bsonType" not in s:
                    types = value if isinstance(value, list) else [value]
                    bson_types: list[str] = []
                    for t in types:
                        for b in TYPE_TO_BSON.get(t, [t]):
                            if b not in bson_types:
                                bson_types.append(b)
                    out["bsonType"] = bson_types[0] if len(bson_types) == 1 else bson_types
            elif key == "const":
                out["enum"] = [value]
            elif key in ("exclusiveMaximum", "exclusiveMinimum") and not isinstance(value, bool):
                bound = "maximum" if key == "exclusiveMaximum" else "minimum"
                if bound in s:
                    out.setdefault("allOf", []).append({bound: value, key: True})
                else:
                    out[bound] = value
                    out[key] = True
            elif key in MONGO_KEYWORDS:
                out[key] = copy.deepcopy(value)
            else:
                dropped.append(f"{path or '/'}: {key}")
        return out

    translated = conv(schema, "")
    if unsupported:
        raise OperationError(
            f"{where}JSON Schema keyword(s) MongoDB's $jsonSchema cannot express: {'; '.join(unsupported)}"
        )
    return translated, dropped


# --- the state preflight simulates ---------------------------------------------------------------

@dataclass
class DocCollection:
    """A collection as preflight sees it: its validator (level, action) and
    its indexes (name -> ``[[field, direction], ...]``). MongoDB has no field
    list: fields are known only where the validator's schema names them."""

    validator: dict | None = None
    level: str | None = None
    action: str | None = None
    indexes: dict = dc_field(default_factory=lambda: {"_id_": [["_id", 1]]})

    def _enforced(self) -> dict | None:
        """The validator's top-level ``$jsonSchema`` when the server refuses
        writes that break it (level strict, action error), else None."""
        schema = (self.validator or {}).get("$jsonSchema")
        if not isinstance(schema, dict) or (self.level or "strict") != "strict" or (self.action or "error") != "error":
            return None
        return schema

    def requires(self, path: str) -> bool:
        """Every write must leave ``path`` (a top-level field) in the document."""
        schema = self._enforced()
        return bool(schema) and "." not in path and path in (schema.get("required") or ())

    def refuses(self, path: str) -> bool:
        """No document may have the top-level field ``path`` (``additionalProperties: false``)."""
        schema = self._enforced()
        if not schema or "." in path or schema.get("additionalProperties", True) is not False:
            return False
        return path not in (schema.get("properties") or {}) and not schema.get("patternProperties")

    def clone(self) -> "DocCollection":
        return copy.deepcopy(self)


class DocState:
    """The store's collections as the run's steps leave them. ``loader(name)``
    reads a collection from the store (a :class:`DocCollection`, or None when
    there is none); each name is read once, then follows the simulation."""

    def __init__(self, loader: Callable[[str], "DocCollection | None"], store: str = ""):
        self._loader = loader
        self._entries: dict[str, DocCollection | None] = {}
        self.store = store

    def get(self, name: str) -> DocCollection | None:
        if name not in self._entries:
            self._entries[name] = self._loader(name)
        return self._entries[name]

    def put(self, name: str, coll: DocCollection) -> None:
        self._entries[name] = coll

    def remove(self, name: str) -> None:
        self._entries[name] = None

    def rename(self, old: str, new: str) -> None:
        self._entries[new] = self.get(old)
        self._entries[old] = None
