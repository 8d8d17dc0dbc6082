"""Issue 17 part 3: the embedding cache (a re-embed after a downgrade pays for
no text twice), the remote wrapper (retries with backoff, rate limit), and
``--plan`` showing what a re-embed costs."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from ragrev.embeddings import cached, hashing, remote

from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, record, revert, rows_of


class Counting:
    """A local model that counts the texts it embeds."""

    def __init__(self, dim=12):
        self.inner, self.dim, self.texts = hashing(dim, seed=3), dim, 0

    def __call__(self, texts):
        self.texts += len(texts)
        return self.inner(texts)

    def ragrev_normalized(self):
        return {"model": "counting", "dim": self.dim}


def test_reembed_downgrade_upgrade_embeds_each_text_once(lite, tmp_path):
    model = Counting()
    embed = cached(model, path=str(tmp_path / "cache.sqlite"))
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("docs", DOCS_FIELDS),
                                         op.vectors.insert("docs", doc_rows(300)))))
    ops = record(lite, lambda op: op.vectors.reembed("docs", "text", embed, dim=12, batch_size=50))
    first = apply(lite, ops)
    assert model.texts == len({r["text"] for r in doc_rows(300)})
    vectors = {r["id"]: r["vec"] for r in rows_of(lite, "docs")}
    revert(lite, ops, first)
    apply(lite, ops)
    assert model.texts == len({r["text"] for r in doc_rows(300)})  # the second upgrade paid nothing
    again = {r["id"]: r["vec"] for r in rows_of(lite, "docs")}
    assert again.keys() == vectors.keys()
    assert all(np.allclose(again[k], vectors[k]) for k in vectors)
    assert embed.hits >= 300


def test_cache_is_keyed_by_model(tmp_path):
    path = str(tmp_path / "c.sqlite")
    a, b = Counting(8), Counting(8)
    b.ragrev_normalized = lambda: {"model": "other"}
    cached(a, path)(["x", "y", "x"])
    cached(b, path)(["x"])
    assert (a.texts, b.texts) == (2, 1)
    out = cached(Counting(8), path)(["y", "x"])
    assert out.shape == (2, 8) and np.allclose(out, hashing(8, seed=3)(["y", "x"]))


def test_remote_retries_with_backoff_then_succeeds():
    failures = []

    def flaky(texts):
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionError("429 too many requests")
        return [[1.0, 0.0]] * len(texts)

    embed = remote(flaky, attempts=4, max_wait=0.05, retry_on=(ConnectionError,))
    assert np.asarray(embed(["a", "b"])).shape == (2, 2)
    assert embed.calls == 3 and embed.retries == 2

    def broken(texts):
        raise ValueError("bad request")

    with pytest.raises(ValueError):  # not retried: not in retry_on
        remote(broken, retry_on=(ConnectionError,))(["a"])


def test_remote_spreads_calls_at_the_rate():
    embed = remote(lambda texts: [[0.0]] * len(texts), texts_per_second=100)
    start = time.monotonic()
    for _ in range(3):
        embed(["t"] * 10)
    assert time.monotonic() - start >= 0.2  # 30 texts at 100/s: the third call waits for the first two


PLAN_SETUP = '''
def upgrade(op):
    op.vectors.create_collection("docs", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 256},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}])
    op.vectors.insert("docs", rows=[{"id": i, "text": "word " * 10, "vec": [1.0, 0.0, 0.0, float(i)]}
                                    for i in range(1000)])
'''

PLAN_REEMBED = '''
from ragrev.embeddings import hashing, remote


def upgrade(op):
    op.vectors.reembed("docs", "text", remote(hashing(8), texts_per_second=50), dim=8)
'''


def test_plan_shows_texts_tokens_and_time(make_project):
    p = make_project({"vectors": "milvus-lite:///./var/vectors.db"})
    p.add("e1", None, PLAN_SETUP)
    p.add("e2", "e1", PLAN_REEMBED)
    p.cli("upgrade", "e1")
    out = p.cli("upgrade", "head", "--plan").output
    assert "embeds 1,000 of 1,000 texts, ~13,000 tokens, ~20 s" in out, out
    data = json.loads(p.cli("upgrade", "head", "--plan", "--json").output)
    step = data["revisions"][0]["steps"][0]
    assert step["embedding"] == {"texts": 1000, "cached": 0, "to_embed": 1000, "tokens": 13000, "seconds": 20.0}
