"""The vector family's one vocabulary on Milvus Lite, checked in the store:
``expect_count`` with ``at_least``/``at_most``/``same_as``, ``drop_index`` by
``index_name``, ``rename_collection(collection, new_name)`` and its former
spelling, each undone by its inverse."""
from __future__ import annotations

import pytest

from ragrev.errors import CheckFailed
from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, record, revert


@pytest.fixture
def docs(lite):
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("docs", fields=DOCS_FIELDS, indexes={
        "vec": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8, "efConstruction": 64}}}),
        op.vectors.insert("docs", rows=doc_rows(120)))))
    return lite


def test_expect_count_bounds_and_same_as(docs):
    apply(docs, record(docs, lambda op: (op.vectors.expect_count("docs", at_least=100, at_most=120),
                                         op.vectors.expect_count("docs", count=20, filter="id < 20"),
                                         op.vectors.copy("docs", "twin"),
                                         op.vectors.expect_count("twin", same_as="docs"),
                                         op.vectors.expect_count("twin", expected="docs"))))
    with pytest.raises(CheckFailed, match=r"expect_count: 'docs' has 120 rows, expected at least 121"):
        apply(docs, record(docs, lambda op: op.vectors.expect_count("docs", at_least=121)))
    apply(docs, record(docs, lambda op: op.vectors.delete("twin", filter="id < 10")))
    with pytest.raises(CheckFailed, match=r"'twin' has 110 rows, expected 120 \(the rows of 'docs'\)"):
        apply(docs, record(docs, lambda op: op.vectors.expect_count("twin", same_as="docs")))


def test_drop_index_by_name_and_rename_both_spellings(docs):
    ops = record(docs, lambda op: (op.vectors.drop_index("docs", index_name="vec"),
                                   op.vectors.rename_collection(old="docs", new="docs_a"),
                                   op.vectors.rename_collection("docs_a", new_name="docs_b")))
    captured = apply(docs, ops)
    assert docs.user_collections() == ["docs_b"]
    assert "vec" not in docs.collection_state(docs.resolve("docs_b")).indexes
    assert captured[0]["index"]["index_type"] == "HNSW"
    revert(docs, ops, captured)
    assert docs.user_collections() == ["docs"]
    assert docs.collection_state(docs.resolve("docs")).indexes["vec"]["index_type"] == "HNSW"
