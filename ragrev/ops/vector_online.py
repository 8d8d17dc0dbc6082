"""Vector store operations for switching collections while the application
writes (see ``docs/reembedding.md``): the catch-up parameters of ``copy`` and
``reembed``, and the gates ``expect_fresh`` and ``check_relevance``.

No driver is imported here; the implementations are in
:mod:`ragrev.drivers.milvus.online`.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ragrev.ops import register
from ragrev.ops.vector_schema import DENSE_TYPES, FAMILY, KIND, MilvusOp

#: the catch-up (and ``workers=``) parameters and their defaults: left out of a step's checksum
#: while at the default, so revisions written before they existed keep theirs
CATCH_UP_DEFAULTS = {"catch_up": None, "tombstone": None, "catch_up_threshold": 100, "catch_up_rounds": 10,
                     "catch_up_skew": 1.0, "workers": None, "bulk": None}
WATERMARK_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE"})
IMPL = {KIND: "ragrev.drivers.milvus.online"}


def catch_up_params(op, params: dict) -> dict:
    """``params`` without the catch-up ones that are at their default."""
    return {k: v for k, v in params.items() if k not in CATCH_UP_DEFAULTS or v != CATCH_UP_DEFAULTS[k]}


def validate_catch_up(op) -> None:
    where = getattr(op, "target", None) or op.collection
    for key in ("catch_up", "tombstone"):
        value = getattr(op, key)
        if value is not None and not (isinstance(value, str) and value.isidentifier()):
            raise op.fail(f"{where}: {key}= must be a field name, not {value!r}")
    if op.tombstone and not op.catch_up:
        raise op.fail(f"{where}: tombstone= works with catch_up= (the watermark field)")
    for key in ("catch_up_threshold", "catch_up_rounds"):
        value = getattr(op, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "catch_up_threshold" else 1):
            raise op.fail(f"{where}: {key}= must be a {'non-negative' if key == 'catch_up_threshold' else 'positive'} "
                          f"integer, not {value!r}")
    bulk = getattr(op, "bulk", None)
    if bulk is not None and bulk is not True and not (isinstance(bulk, str) and bulk):
        raise op.fail(f"{where}: bulk= must be a staging directory or URL the server reads, or True "
                      f"([ragrev] bulk_staging), not {bulk!r}")
    if isinstance(op.catch_up_skew, bool) or not isinstance(op.catch_up_skew, (int, float)) or op.catch_up_skew < 0:
        raise op.fail(f"{where}: catch_up_skew= must be a number of seconds >= 0, not {op.catch_up_skew!r}")


def simulate_catch_up(op, cs, name: str) -> None:
    """The watermark (numeric) and tombstone (BOOL) fields exist in the source."""
    if not op.catch_up:
        return
    f = op.need_field(cs, name, op.catch_up)
    if f["type"] not in WATERMARK_TYPES:
        raise op.fail(f"{name}.{op.catch_up}: catch_up= needs a numeric field (epoch seconds), it is {f['type']}")
    if op.tombstone:
        t = op.need_field(cs, name, op.tombstone)
        if t["type"] != "BOOL":
            raise op.fail(f"{name}.{op.tombstone}: tombstone= needs a BOOL field, it is {t['type']}")


@register(FAMILY)
@dataclass
class ExpectFresh(MilvusOp):
    """Gate before ``alter_alias``: ``collection`` (green) holds every change of
    ``source`` (blue) older than ``max_lag`` seconds. Both are read by primary
    key with ``field`` (the watermark, epoch seconds): a source row missing
    from the target, or newer there, is a change not carried yet, as old as
    its watermark; a target row the source no longer has (or has with
    ``tombstone`` true) is a delete not carried yet. Fails when the oldest
    change not carried is older than ``max_lag`` or more than
    ``max_missing`` deletes are not carried."""

    name = "expect_fresh"
    is_check = True
    impl_modules = IMPL
    collection: str
    source: str
    max_lag: float = 5.0
    field: str = "updated_at"
    tombstone: str | None = None
    max_missing: int = 0

    def validate(self) -> None:
        if isinstance(self.max_lag, bool) or not isinstance(self.max_lag, (int, float)) or self.max_lag < 0:
            raise self.fail(f"{self.collection}: max_lag= must be a number of seconds >= 0, not {self.max_lag!r}")
        if isinstance(self.max_missing, bool) or not isinstance(self.max_missing, int) or self.max_missing < 0:
            raise self.fail(f"{self.collection}: max_missing= must be an integer >= 0, not {self.max_missing!r}")

    def simulate(self, state):
        src = self.need(state, self.source)
        dst = self.need(state, self.collection)
        for name, cs in ((self.source, src), (self.collection, dst)):
            f = self.need_field(cs, name, self.field)
            if f["type"] not in WATERMARK_TYPES:
                raise self.fail(f"{name}.{self.field}: the watermark must be numeric (epoch seconds), it is {f['type']}")
        if self.tombstone:
            self.need_field(src, self.source, self.tombstone)


# --- check_relevance ---------------------------------------------------------------------------

METRIC_NAMES = ("ndcg", "recall", "mrr")


def load_golden(golden, base: Path | None = None) -> list[dict]:
    """The golden query set as ``[{"query": text, "relevant": {id: grade}, "slice": {key: value}}]``.

    ``golden`` is a list of such dicts (``relevant`` a list of ids or a dict
    id -> grade), or the path of a file: ``.jsonl`` / ``.json`` (the same
    dicts; keys other than ``query``/``relevant`` are slice keys) or
    ``.csv`` / ``.tsv`` pairs with columns ``query``, ``id``, optional
    ``relevance`` (grade, 1 by default) and any other columns as slice keys.
    Ids are compared as text. Raises ValueError with one line."""
    if isinstance(golden, (str, Path)):
        path = Path(golden)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ValueError(f"golden query set {str(golden)!r}: no such file ({path})")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            return _from_pairs(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","), path)
        try:
            items = json.loads(text) if suffix == ".json" else [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        except json.JSONDecodeError as e:
            raise ValueError(f"golden query set {path}: not JSON{' lines' if suffix != '.json' else ''}: {e}") from None
    else:
        items = golden
    if not isinstance(items, (list, tuple)):
        raise ValueError("golden= must be a file path or a list of {'query': ..., 'relevant': [...]} dicts")
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("query"), str) or "relevant" not in item:
            raise ValueError(f"golden query {i}: needs 'query' (text) and 'relevant' (ids, or id -> grade)")
        rel = item["relevant"]
        rel = {str(k): float(v) for k, v in rel.items()} if isinstance(rel, dict) else {str(r): 1.0 for r in rel}
        if not rel:
            raise ValueError(f"golden query {i} ({item['query'][:40]!r}): no relevant ids")
        out.append({"query": item["query"], "relevant": rel,
                    "slice": {k: str(v) for k, v in item.items() if k not in ("query", "relevant")}})
    if not out:
        raise ValueError("the golden query set is empty")
    return out


def _from_pairs(rows, path) -> list[dict]:
    by_query: dict[str, dict] = {}
    for n, row in enumerate(rows, 2):
        if not row.get("query") or row.get("id") in (None, ""):
            raise ValueError(f"{path}:{n}: a pair needs the columns 'query' and 'id'")
        q = by_query.setdefault(row["query"], {"query": row["query"], "relevant": {}})
        q["relevant"][str(row["id"])] = float(row.get("relevance") or 1)
        for k, v in row.items():
            if k not in ("query", "id", "relevance") and v not in (None, ""):
                q[k] = v
    return list(by_query.values())


@register(FAMILY)
@dataclass
class CheckRelevance(MilvusOp):
    """Retrieval quality on a golden query set: each query is embedded with
    ``embed`` and searched (top ``k``) in ``collection``; nDCG@k, recall@k and
    MRR@k are computed against the relevant ids. With ``against`` (the
    collection in service, searched with ``against_embed``), the step fails
    when ``gate`` (``"ndcg"`` by default; a metric name or a list) drops by
    more than ``max_regression`` (relative: 0.02 is 2%), overall and in each
    slice (a value of ``slice_by``, a key of the golden queries) of at least
    ``min_slice_queries`` queries; ``min_score`` is an absolute floor for the
    overall value. The numbers are kept in the step's journal record."""

    name = "check_relevance"
    is_check = True
    impl_modules = IMPL
    collection: str
    golden: Any
    embed: Callable
    against: str | None = None
    against_embed: Callable | None = None
    k: int = 10
    gate: Any = "ndcg"
    max_regression: float = 0.02
    min_score: float | None = None
    slice_by: str | None = None
    min_slice_queries: int = 10
    field: str | None = None
    filter: str | None = None
    search_params: dict | None = None

    def validate(self) -> None:
        where = self.collection
        if not callable(self.embed) or (self.against_embed is not None and not callable(self.against_embed)):
            raise self.fail(f"{where}: embed= and against_embed= must be callables texts -> vectors")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k <= 0:
            raise self.fail(f"{where}: k= must be a positive integer")
        gates = [self.gate] if isinstance(self.gate, str) else list(self.gate or [])
        bad = [g for g in gates if g not in METRIC_NAMES]
        if bad or not gates:
            raise self.fail(f"{where}: gate= must name metrics among {', '.join(METRIC_NAMES)}, not {self.gate!r}")
        if isinstance(self.max_regression, bool) or not isinstance(self.max_regression, (int, float)) \
                or not 0 <= self.max_regression <= 1:
            raise self.fail(f"{where}: max_regression= must be between 0 and 1 (0.02 = 2%)")
        if self.against_embed is not None and self.against is None:
            raise self.fail(f"{where}: against_embed= needs against= (the collection to compare with)")
        if not isinstance(self.golden, (str, Path, list, tuple)):
            raise self.fail(f"{where}: golden= must be a file path or a list of queries")
        if isinstance(self.golden, (list, tuple)):
            try:
                load_golden(self.golden)
            except ValueError as e:
                raise self.fail(f"{where}: {e}") from None

    def gates(self) -> list[str]:
        return [self.gate] if isinstance(self.gate, str) else list(self.gate)

    def simulate(self, state):
        for name, embed in ((self.collection, self.embed), (self.against, self.against_embed or self.embed)):
            if name is None:
                continue
            cs = self.need(state, name)
            vf = self.vector_field(cs, name, self.field)
            f = cs.fields[vf]
            if f["type"] not in DENSE_TYPES:
                raise self.fail(f"{name}.{vf}: check_relevance searches dense vectors, not {f['type']}")
            if vf not in cs.indexes:
                raise self.fail(f"{name}.{vf} has no index to search")
            edim = getattr(embed, "dim", None)
            if isinstance(edim, int) and edim != f["dim"]:
                raise self.fail(f"{name}.{vf} has dim {f['dim']}, the embedding given for it makes {edim}: "
                                f"{'against_embed=' if name == self.against else 'embed='} is the wrong model?")


def ndcg_at(ranked: list[str], relevant: dict[str, float], k: int) -> float:
    import math

    dcg = sum(relevant.get(doc, 0.0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], relevant: dict[str, float], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, float], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score(results: list[list[str]], golden: list[dict], k: int) -> dict[str, float]:
    """Mean nDCG@k, recall@k and MRR@k of ranked id lists over golden queries."""
    n = max(1, len(golden))
    return {"ndcg": round(sum(ndcg_at(r, g["relevant"], k) for r, g in zip(results, golden)) / n, 4),
            "recall": round(sum(recall_at(r, g["relevant"], k) for r, g in zip(results, golden)) / n, 4),
            "mrr": round(sum(mrr_at(r, g["relevant"], k) for r, g in zip(results, golden)) / n, 4),
            "queries": len(golden)}

