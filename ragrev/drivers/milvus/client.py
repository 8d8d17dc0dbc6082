"""Helpers of the Milvus driver that need no store: the client wrapper, filter
literals, the embedding contract property and index arguments.
"""
from __future__ import annotations

import json
import logging
import re

from pymilvus import MilvusClient, MilvusException

KIND = "milvus"
ZERO = [0.0, 0.0]                      # the dummy vector of ragrev's own collections
MAX_PAGE = 16384                       # Milvus' limit on a query's limit


def _quiet() -> None:
    """pymilvus and milvus-lite log every failed call; ragrev reports its own errors."""
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


_quiet()


def lit(value) -> str:
    """A primary key as a literal of a Milvus filter expression."""
    if isinstance(value, str):
        return json.dumps(value)
    return str(int(value))


#: how Milvus words an expression it cannot parse (as opposed to one that names unknown fields or mixes types)
_SYNTAX_ERROR = re.compile(r"unexpected (token|character)|expected .* got|cannot parse|syntax error", re.IGNORECASE)
#: how it words an unknown field; Milvus 2.3 says ``cannot parse expression: ..., error: field lang not exist``
_UNKNOWN_FIELD = re.compile(r"field \S+ not exist|not exist.*field|field .* not found|no such field", re.IGNORECASE)


def _syntax_error(text: str) -> bool:
    """Whether a failed query's message says its filter does not parse (not that it names a field
    the collection lacks, which an earlier step of the run may add)."""
    return bool(_SYNTAX_ERROR.search(text)) and not _UNKNOWN_FIELD.search(text)


#: the collection property that keeps the embedding contract (see ragrev.contracts)
CONTRACT_PROPERTY = "ragrev.embedding"


def read_contract(description: dict) -> dict | None:
    """The embedding contract kept in a collection's properties (``describe_collection``'s answer)."""
    raw = (description.get("properties") or {}).get(CONTRACT_PROPERTY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"unreadable": raw}
    return value if isinstance(value, dict) else {"unreadable": raw}


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return str(text).strip().splitlines()[0]


class _LoadingClient:
    """A ``MilvusClient`` whose reads load a released collection and retry
    (Milvus Lite opens every collection released; a server may release one),
    and whose renames and alias switches drop pymilvus' schema cache (kept by
    name, it would describe a renamed-away collection or an alias' old target)."""

    _READS = {"query", "search", "get"}
    _RENAMES = {"rename_collection", "create_alias", "alter_alias", "drop_alias", "create_collection",
                "drop_collection"}

    def __init__(self, client: MilvusClient, db_name: str = ""):
        self._client = client
        self._db_name = db_name

    def _forget_schemas(self) -> None:
        try:  # pymilvus has no public call for this
            self._client._get_connection()._invalidate_db_schemas(self._db_name)
        except Exception:
            pass

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name in self._RENAMES:
            def renaming(*args, **kwargs):
                try:
                    return attr(*args, **kwargs)
                finally:
                    self._forget_schemas()

            return renaming
        if name not in self._READS:
            return attr

        def read(collection_name, *args, **kwargs):
            try:
                return attr(collection_name, *args, **kwargs)
            except MilvusException as e:
                if getattr(e, "code", None) != 101 and "load" not in _first_line(e).lower():
                    raise
                self._client.load_collection(collection_name)
                return attr(collection_name, *args, **kwargs)

        return read


#: what a server without defaults for HNSW (before Milvus 2.4) is given when a revision leaves them out
HNSW_DEFAULTS = {"M": 16, "efConstruction": 200}


def _index_args(spec: dict, caps=None) -> dict:
    """Arguments of ``IndexParams.add_index``: build params both as flat keys
    (what servers read) and as a ``params`` JSON value (what Milvus Lite reads).
    On a server without HNSW defaults the missing ones are :data:`HNSW_DEFAULTS`."""
    kw = {"index_type": spec["index_type"]}
    if spec.get("metric_type"):
        kw["metric_type"] = spec["metric_type"]
    params = dict(spec.get("params") or {})
    if caps is not None and not caps.hnsw_defaults and spec["index_type"] == "HNSW":
        params = {**HNSW_DEFAULTS, **params}
    if params:
        kw["params"] = {**params, "params": dict(params)}
    return kw


def _number(value):
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return value
