"""Lossless JSON for messages and their keys, and the hashes built on it.

Two encodings live here, neither importing a driver at module level:

- **typed JSON** (:func:`encode` / :func:`decode`): plain JSON for plain
  values, and one-key objects for the rest — ``{"$date": iso}`` (naive or
  aware, microseconds kept), ``{"$day": iso}``, ``{"$time": iso}``,
  ``{"$decimal": text}``, ``{"$bytes": base64}``, ``{"$uuid": text}``,
  ``{"$oid": hex}``, ``{"$float": "nan"}``; a dict whose keys are not plain
  (a key starting with ``$``, or not a string) becomes ``{"$doc": [[k, v],
  ...]}``. SQL rows are archived in it. MongoDB documents are archived in
  MongoDB Extended JSON v2 (canonical), which the Mongo backend writes with
  ``bson.json_util`` because it also keeps BSON's int32/int64 distinction.
- **keys** (:func:`encode_key` / :func:`decode_key`): session and message ids
  as JSON, for pointer records, captured inverses and op parameters. Plain
  values stay as they are, so a revision can write ``restore(sessions=["s1"])``.

A message's *hash* is SHA-256 of its archived line (the exact bytes written);
its *content hash* (for merge deduplication) ignores its id and key order.
"""
from __future__ import annotations

import base64
import datetime as _dt
import decimal
import hashlib
import json
import math
import uuid

_TAGS = ("$date", "$day", "$time", "$decimal", "$bytes", "$uuid", "$oid", "$float", "$doc", "$long")


def encode(value, lossy: bool = False):
    """Typed JSON for ``value``. With ``lossy``, unknown types become
    ``{"$repr": [type, str]}`` instead of raising ``TypeError``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if type(value).__name__ == "Int64" and not lossy:  # bson's explicit 64-bit integer
            return {"$long": str(int(value))}
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, _dt.datetime):
        return {"$date": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"$day": value.isoformat()}
    if isinstance(value, _dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if type(value).__name__ == "ObjectId":
        return {"$oid": str(value)}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, lossy) for k, v in value.items()}
        return {"$doc": [[encode(k, lossy), encode(v, lossy)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v, lossy) for v in value]
    if type(value).__name__ == "Decimal128":
        return {"$decimal": str(value)}
    if lossy:
        return {"$repr": [type(value).__name__, str(value)]}
    raise TypeError(f"cannot archive a value of type {type(value).__name__}: {value!r:.60}")


def decode(data):
    """The value :func:`encode` was given."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        (tag, v), = data.items()
        if tag in _TAGS:
            return _decode_tag(tag, v)
    return {k: decode(v) for k, v in data.items()}


def _decode_tag(tag, v):
    if tag == "$date":
        return _dt.datetime.fromisoformat(v)
    if tag == "$day":
        return _dt.date.fromisoformat(v)
    if tag == "$time":
        return _dt.time.fromisoformat(v)
    if tag == "$decimal":
        return decimal.Decimal(v)
    if tag == "$bytes":
        return base64.b64decode(v)
    if tag == "$uuid":
        return uuid.UUID(v)
    if tag == "$float":
        return float(v)
    if tag == "$long":
        from bson.int64 import Int64

        return Int64(int(v))
    if tag == "$oid":
        from bson import ObjectId

        return ObjectId(v)
    return {decode(k): decode(x) for k, x in v}  # $doc


def dumps(value) -> str:
    """One line of typed JSON (key order kept, so equal rows give equal bytes)."""
    return json.dumps(encode(value), ensure_ascii=False, separators=(",", ":"))


def loads(line: str):
    return decode(json.loads(line))


# --- keys -----------------------------------------------------------------------------

def encode_key(value):
    """A session or message id as JSON (plain values unchanged)."""
    return encode(value)


def decode_key(data):
    """Inverse of :func:`encode_key`; plain values (as a revision writes them) pass through."""
    return decode(data)


def key_text(value) -> str:
    """A session or message id as one canonical string (SQL pointer rows, file names)."""
    if type(value) is int:  # the common cases, as json.dumps writes them
        return str(value)
    if type(value) is str:
        return json.dumps(value)
    return json.dumps(encode_key(value), sort_keys=True, separators=(",", ":"))


def key_from_text(text: str):
    return decode_key(json.loads(text))


# --- hashes ----------------------------------------------------------------------------

def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chain_hash(hashes) -> str:
    """One checksum over an ordered list of message hashes (content and order)."""
    h = hashlib.sha256()
    for x in hashes:
        h.update(x.encode("ascii"))
    return h.hexdigest()


def content_hash(doc: dict, id_key: str) -> str:
    """What makes two messages duplicates: every field but the id, key order ignored."""
    body = {k: v for k, v in doc.items() if k != id_key}
    return hashlib.sha256(json.dumps(encode(body, lossy=True), sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()
