"""The pgvector driver's vocabulary: what it supports (:data:`CAPS`), how the
vector family's field and index specs become PostgreSQL column types and
index clauses, how a collection's spec is kept in its table comment, and the
translation of filter expressions (``lang == 'en' and position > 2``) into
SQL over the collection's own columns. No driver library is imported here.
"""
from __future__ import annotations

import io
import json
import tokenize

from ragrev.ops.vector_schema import Capabilities, CollectionState

CAPS = Capabilities(
    "PostgreSQL with pgvector", frozenset({"FLOAT_VECTOR", "FLOAT16_VECTOR"}),
    frozenset({"AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT"}), frozenset({"AUTOINDEX", "INVERTED", "STL_SORT"}),
    frozenset({"L2", "IP", "COSINE"}), False)

_SCALARS = {"BOOL": "boolean", "INT8": "smallint", "INT16": "smallint", "INT32": "integer", "INT64": "bigint",
            "FLOAT": "real", "DOUBLE": "double precision", "JSON": "jsonb", "ARRAY": "jsonb",
            "TIMESTAMPTZ": "timestamptz"}
#: metric -> (distance operator, operator class suffix)
METRIC_SQL = {"L2": ("<->", "l2_ops"), "IP": ("<#>", "ip_ops"), "COSINE": ("<=>", "cosine_ops")}
#: search parameters -> the settings a search through an index takes them from
SEARCH_SETTINGS = {"ef": "hnsw.ef_search", "nprobe": "ivfflat.probes"}
#: index parameter names, vector family -> pgvector
_PARAMS = {"M": "m", "efConstruction": "ef_construction", "nlist": "lists"}


def column_type(f: dict) -> str:
    """The PostgreSQL type of a field spec (normal form)."""
    if f["type"] == "FLOAT_VECTOR":
        return f"vector({int(f['dim'])})"
    if f["type"] == "FLOAT16_VECTOR":
        return f"halfvec({int(f['dim'])})"
    if f["type"] == "VARCHAR":
        return f"varchar({int(f['max_length'])})"
    return _SCALARS[f["type"]]


def index_clause(column: str, f: dict, spec: dict) -> str | None:
    """``USING ... (column opclass) WITH (...)`` for an index spec; None when the
    spec needs no index (``FLAT``: exact search)."""
    itype = spec["index_type"]
    if f["type"] not in ("FLOAT_VECTOR", "FLOAT16_VECTOR"):
        return f"USING btree ({column})"
    if itype == "FLAT":
        return None
    method = "ivfflat" if itype == "IVF_FLAT" else "hnsw"
    opclass = ("halfvec_" if f["type"] == "FLOAT16_VECTOR" else "vector_") + METRIC_SQL[spec["metric_type"]][1]
    params = {_PARAMS.get(k, k): int(v) for k, v in (spec.get("params") or {}).items() if _PARAMS.get(k, k)
              in ({"lists"} if method == "ivfflat" else {"m", "ef_construction"})}
    with_ = f" WITH ({', '.join(f'{k} = {v}' for k, v in params.items())})" if params else ""
    return f"USING {method} ({column} {opclass}){with_}"


def encode_state(cs: CollectionState) -> str:
    return json.dumps({"ragrev": 1, "fields": list(cs.fields.values()), "dynamic": cs.dynamic,
                       "indexes": cs.indexes, "description": cs.description, "embedding": cs.embedding})


def decode_state(comment: str | None) -> CollectionState | None:
    """The collection spec kept in a table comment (None: not a ragrev collection)."""
    try:
        data = json.loads(comment or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("ragrev") != 1:
        return None
    return CollectionState({f["name"]: f for f in data["fields"]}, data["dynamic"], data["indexes"],
                           data.get("description", ""), data.get("embedding"))


_WORDS = {"and": "AND", "or": "OR", "not": "NOT", "in": "IN", "like": "LIKE", "true": "TRUE", "false": "FALSE",
          "null": "NULL", "is": "IS"}
_OPS = {"==": "=", "!=": "<>", "[": "(", "]": ")", "&&": "AND", "||": "OR", "!": "NOT"}


def to_sql(expr: str, fields, quote) -> str:
    """A filter expression of the vector family as a SQL condition.

    Field names are quoted with ``quote``; strings become SQL literals; ``==``,
    ``!=``, ``[a, b]``, ``&&``, ``||`` are translated; ``%`` is doubled (the
    condition goes into a query with placeholders). Raises ``ValueError``
    naming an unknown field or token."""
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr.replace("&&", " and ").replace("||", " or ")).readline))
    except (tokenize.TokenError, SyntaxError) as e:
        raise ValueError(f"cannot parse: {e}") from None
    for tok in tokens:
        kind, text = tok.type, tok.string
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
            continue
        if kind == tokenize.NAME:
            if text.lower() in _WORDS:
                out.append(_WORDS[text.lower()])
            elif text in fields:
                out.append(quote(text))
            else:
                raise ValueError(f"unknown field {text!r}")
        elif kind == tokenize.STRING:
            value = text[1:-1] if text[0] in "'\"" and text[-1] == text[0] else None
            if value is None or "\\" in value:
                raise ValueError(f"unsupported string {text}")
            out.append("'" + value.replace("'", "''").replace("%", "%%") + "'")
        elif kind == tokenize.NUMBER:
            out.append(text)
        elif kind == tokenize.OP and text in _OPS:
            out.append(_OPS[text])
        elif kind == tokenize.OP and text in ("(", ")", ",", "<", ">", "<=", ">=", "+", "-", "*", "/", "%"):
            out.append(text.replace("%", "%%"))
        else:
            raise ValueError(f"unsupported token {text!r}")
    return " ".join(out)
