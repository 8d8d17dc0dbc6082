"""Issue 4, "done when" 3: ``check_recall`` fails a deliberately wrong index
(L2 on vectors meant for cosine similarity, whose norms vary) and passes a
right one (HNSW/COSINE) — against exact search and against another
collection; through the CLI a failing check exits 1 and the revision is not
stamped."""
from __future__ import annotations

import numpy as np
import pytest

from ragrev.context import StepContext
from ragrev.errors import CheckFailed
from tests.helpers.milvus import record

DIM = 16


def vectors(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * rng.uniform(0.05, 20.0, size=(n, 1))   # norms vary a lot: L2 ranks differ from cosine


def build(op, metric):
    rows = [{"id": i, "vec": v.tolist()} for i, v in enumerate(vectors())]
    name = metric.lower()
    op.vectors.create_collection(name, fields=[{"name": "id", "type": "INT64", "primary": True},
                                               {"name": "vec", "type": "FLOAT_VECTOR", "dim": DIM}],
                                 indexes={"vec": {"index_type": "HNSW", "metric_type": metric,
                                                  "params": {"M": 16, "efConstruction": 200}}})
    op.vectors.insert(name, rows=rows, batch_size=1000)


@pytest.fixture
def two_indexes(lite):
    from tests.helpers.milvus import apply

    apply(lite, record(lite, lambda op: (build(op, "COSINE"), build(op, "L2"))))
    return lite


def check(store, **kw) -> float:
    (op,) = record(store, lambda o: o.vectors.check_recall(**{"k": 10, "queries": 60, "search_params": {"ef": 96}, **kw}))
    store.preflight([op])
    ctx = StepContext(store=store, op=op)
    store.apply(op, ctx)
    return ctx.captured["recall"]


@pytest.mark.slow
def test_right_index_passes_against_exact_search(two_indexes):
    assert check(two_indexes, collection="cosine", min_recall=0.95) >= 0.95
    assert check(two_indexes, collection="cosine", metric_type="COSINE", filter="id >= 1000", min_recall=0.95) >= 0.95


@pytest.mark.slow
def test_wrong_metric_fails_against_exact_search(two_indexes):
    with pytest.raises(CheckFailed, match=r"recall@10 of l2\.vec is 0\.\d+ against exact COSINE search on 60 queries"):
        check(two_indexes, collection="l2", metric_type="COSINE", min_recall=0.95)
    # judged by its own metric the L2 index is fine: the check is about the metric the data needs
    assert check(two_indexes, collection="l2", min_recall=0.9) >= 0.9


@pytest.mark.slow
def test_wrong_metric_fails_against_the_right_collection(two_indexes):
    with pytest.raises(CheckFailed, match=r"against 'cosine'"):
        check(two_indexes, collection="l2", against="cosine", min_recall=0.95)
    assert check(two_indexes, collection="cosine", against="cosine", min_recall=0.99) == 1.0


@pytest.mark.slow
def test_failing_check_exits_1_and_leaves_the_revision_unstamped(make_project, milvus_url):
    p = make_project({"vectors": milvus_url})
    p.add("c1", None, f"""
import numpy as np

def upgrade(op):
    rng = np.random.default_rng(3)
    d = rng.normal(size=(1500, {DIM}))
    d = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(0.05, 20.0, size=(1500, 1))
    op.vectors.create_collection("docs", fields=[{{"name": "id", "type": "INT64", "primary": True}},
                                                 {{"name": "vec", "type": "FLOAT_VECTOR", "dim": {DIM}}}],
                                 indexes={{"vec": {{"index_type": "HNSW", "metric_type": "L2"}}}})
    op.vectors.insert("docs", rows=[{{"id": i, "vec": v.tolist()}} for i, v in enumerate(d)])
""")
    p.add("c2", "c1", """
def upgrade(op):
    op.vectors.check_recall("docs", metric_type="COSINE", k=10, queries=30, min_recall=0.95)
""")
    result = p.cli("upgrade", "head", expect=1)
    assert "check_recall: recall@10 of docs.vec is" in result.output and "below 0.95" in result.output
    assert "Traceback" not in result.output
    assert p.cli("current").output.split()[:2] == ["vectors", "c1"]
