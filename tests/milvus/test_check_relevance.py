"""Issue 17 part 2: ``check_relevance`` measures retrieval quality on a golden
query set with each collection's own embedder, and gates a switch on the
allowed regression, overall and per slice, keeping the numbers in the journal."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ragrev.embeddings import hashing
from ragrev.errors import CheckFailed, OperationError
from ragrev.ops.vector_online import load_golden, mrr_at, ndcg_at, recall_at

from tests.helpers.milvus import apply, record

TOPICS = ["cats purr softly", "dogs bark loudly", "rivers flow north", "mountains rise high", "stars shine bright",
          "trains run late", "bread rises warm", "storms roll east", "bees hum busy", "ships sail far"]
FRENCH = ["chats ronronnent doucement", "chiens aboient fort", "rivieres coulent nord", "montagnes hautes",
          "etoiles brillent", "trains en retard", "pain chaud leve", "orages vers est", "abeilles bourdonnent",
          "navires voguent loin"]


def _docs():
    rows = []
    for i, t in enumerate(TOPICS + FRENCH):
        for j in range(3):
            rows.append({"id": i * 10 + j, "text": f"{t} note {j} filler{i}{j}", "lang": "en" if i < 10 else "fr"})
    return rows


def _golden():
    out = []
    for i, t in enumerate(TOPICS + FRENCH):
        out.append({"query": t, "relevant": {str(i * 10): 2, str(i * 10 + 1): 1, str(i * 10 + 2): 1},
                    "lang": "en" if i < 10 else "fr"})
    return out


class Scrambled:
    """A bad model: the good one for English, noise for French."""

    dim = 32

    def __init__(self):
        self.good = hashing(32, seed=5)

    def __call__(self, texts):
        out = self.good(texts)
        rng = np.random.default_rng(0)
        for i, t in enumerate(texts):
            if any(w in t for w in ("chats", "chiens", "rivieres", "montagnes", "etoiles", "en retard", "pain",
                                    "orages", "abeilles", "navires")):
                out[i] = rng.normal(size=32)
        return out


def _collection(op, name, embed, dim):
    docs = _docs()
    vecs = embed([d["text"] for d in docs])
    op.vectors.create_collection(name, fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 256},
        {"name": "lang", "type": "VARCHAR", "max_length": 8},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": dim}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "COSINE"}})
    op.vectors.insert(name, rows=[{**d, "vec": np.asarray(v).tolist()} for d, v in zip(docs, vecs)])


def test_metrics_on_known_rankings():
    rel = {"a": 2.0, "b": 1.0}
    assert ndcg_at(["a", "b", "x"], rel, 3) == pytest.approx(1.0)
    assert ndcg_at(["x", "b", "a"], rel, 3) < ndcg_at(["b", "a", "x"], rel, 3) < 1.0
    assert recall_at(["x", "a"], rel, 2) == 0.5 and recall_at(["x", "y"], rel, 2) == 0.0
    assert mrr_at(["x", "y", "b"], rel, 3) == pytest.approx(1 / 3) and mrr_at(["x"], rel, 1) == 0.0


def test_golden_files_jsonl_and_csv_pairs(tmp_path):
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(g) for g in _golden()[:2]))
    got = load_golden("g.jsonl", tmp_path)
    assert got[0]["relevant"] == {"0": 2.0, "1": 1.0, "2": 1.0} and got[0]["slice"] == {"lang": "en"}
    (tmp_path / "g.csv").write_text("query,id,relevance,lang\ncats purr,0,2,en\ncats purr,1,,en\ndogs,10,1,en\n")
    got = load_golden(str(tmp_path / "g.csv"))
    assert [g["query"] for g in got] == ["cats purr", "dogs"] and got[0]["relevant"] == {"0": 2.0, "1": 1.0}
    with pytest.raises(ValueError, match="no such file"):
        load_golden("missing.jsonl", tmp_path)
    (tmp_path / "bad.csv").write_text("question,doc\nx,1\n")
    with pytest.raises(ValueError, match="'query' and 'id'"):
        load_golden(tmp_path / "bad.csv")


def test_gate_passes_a_good_model_and_fails_a_regression_per_slice(lite):
    blue_embed, good, bad = hashing(16, seed=1), hashing(32, seed=5), Scrambled()
    setup = record(lite, lambda op: (_collection(op, "blue", blue_embed, 16), _collection(op, "green", good, 32),
                                     _collection(op, "worse", bad, 32)))
    apply(lite, setup)

    ok = record(lite, lambda op: op.vectors.check_relevance("green", _golden(), embed=good, against="blue",
                                                            against_embed=blue_embed, k=3, slice_by="lang",
                                                            min_slice_queries=5, gate=["ndcg", "recall"]))
    captured = apply(lite, ok)[0]["relevance"]
    assert set(captured["slices"]) == {"en", "fr"}
    assert captured["overall"]["new"]["ndcg"] > 0.9 and captured["overall"]["old"]["queries"] == 20
    assert captured["slices"]["fr"]["new"]["recall"] > 0.9

    worse = record(lite, lambda op: op.vectors.check_relevance("worse", _golden(), embed=bad, against="blue",
                                                               against_embed=blue_embed, k=3, slice_by="lang",
                                                               min_slice_queries=5, max_regression=0.05))
    with pytest.raises(CheckFailed, match=r"lang=fr: ndcg@3 .* -> .*allowed -5%") as e:
        apply(lite, worse)
    assert "lang=en" not in str(e.value)

    wrong_model = record(lite, lambda op: op.vectors.check_relevance("green", _golden(), embed=blue_embed,
                                                                     against="blue"))
    with pytest.raises(OperationError, match="makes 16: embed= is the wrong model"):
        apply(lite, wrong_model)


def test_bad_arguments_fail_before_anything(lite):
    with pytest.raises(OperationError, match="gate= must name metrics"):
        record(lite, lambda op: op.vectors.check_relevance("x", _golden(), embed=hashing(8), gate="map"))
    with pytest.raises(OperationError, match="needs 'query'"):
        record(lite, lambda op: op.vectors.check_relevance("x", [{"q": "a"}], embed=hashing(8)))
