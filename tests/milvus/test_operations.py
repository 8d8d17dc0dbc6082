"""Issue 4, part 2: each vector store operation and its inverse, on Milvus
Lite, checked in the store: applying then reverting leaves the content hashes,
schema, indexes and aliases as they were; data steps keep what they overwrite
or delete in the trash; an interrupted step resumes after its last batch."""
from __future__ import annotations

import pytest

from ragrev.context import StepContext
from ragrev.embeddings import hashing, identity
from ragrev.errors import CheckFailed
from tests.helpers.milvus import DOCS_FIELDS, apply, content_hash, doc_rows, record, revert, rows_of, schema_of


def aliases(store) -> dict:
    return {a: store.alias_target(a) for a in store.aliases()}


def view(store, *names) -> dict:
    """What a user sees: for each name, schema, indexes and rows; and the aliases."""
    out = {"aliases": aliases(store), "collections": store.user_collections()}
    for n in names:
        phys = store.resolve(n)
        out[n] = None if phys is None else (schema_of(store, n), store.collection_state(phys).indexes, content_hash(store, n))
    return out


@pytest.fixture
def docs(lite):
    apply(lite, record(lite, lambda op: (op.vectors.create_collection("docs", fields=DOCS_FIELDS, indexes={
        "vec": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8, "efConstruction": 64}}}),
        op.vectors.insert("docs", rows=doc_rows(300)))))
    return lite


def roundtrip(store, build, *names):
    """Apply the ops ``build`` records, then their inverses; return (before, after-up) views."""
    before = view(store, *names)
    ops = record(store, build)
    captured = apply(store, ops)
    up = view(store, *names)
    revert(store, ops, captured)
    assert view(store, *names) == before
    return before, up, captured


def test_copy_into_a_new_collection_with_transform_and_filter(docs):
    def upper(row):
        return {**row, "text": row["text"].upper()}

    _, up, (cap,) = roundtrip(docs, lambda op: op.vectors.copy("docs", "docs_copy", transform=upper,
                                                               filter="id < 100", batch_size=30),
                              "docs", "docs_copy")
    assert cap["undo"] == "drop" and len(up["docs_copy"][2]) == 100
    assert up["docs_copy"][1]["vec"]["index_type"] == "HNSW"       # the source's schema and index
    assert docs.resolve("docs_copy") is None                        # dropped (into the trash) by the inverse


def test_copy_into_a_non_empty_collection_restores_what_it_overwrote(docs):
    apply(docs, record(docs, lambda op: (op.vectors.create_collection("mixed", fields=DOCS_FIELDS),
                                         op.vectors.insert("mixed", rows=doc_rows(100, start=250, seed=9)))))
    _, up, (cap,) = roundtrip(docs, lambda op: op.vectors.copy("docs", "mixed", batch_size=64), "docs", "mixed")
    assert cap["undo"] == "ledger" and len(up["mixed"][2]) == 350
    assert up["mixed"][2][260] == up["docs"][2][260]                  # overwritten with the source's row


def test_insert_and_upsert_rows_into_a_non_empty_collection(docs):
    def more():
        yield from doc_rows(50, start=280, seed=5)                   # 20 overwrite, 30 new

    _, up, caps = roundtrip(docs, lambda op: (op.vectors.insert("docs", rows=more, batch_size=16),
                                              op.vectors.upsert("docs", rows=doc_rows(5, start=0, seed=6))), "docs")
    assert len(up["docs"][2]) == 330 and all(c["undo"] == "ledger" for c in caps)


def test_delete_by_filter_keeps_the_rows_for_the_inverse(docs):
    _, up, (cap,) = roundtrip(docs, lambda op: op.vectors.delete("docs", "id < 100 or text like 'doc 15%'",
                                                                       batch_size=40), "docs")
    gone = {r["id"] for r in doc_rows(300) if r["id"] < 100 or r["text"].startswith("doc 15")}  # Milvus 2.3: prefix patterns only
    assert set(up["docs"][2]) == set(range(300)) - gone
    assert {r["id"] for r in rows_of(docs, cap["saved"], ("id",))} == gone    # in the trash until purge                            # in the trash until purge


def test_upsert_by_filter_with_values_and_with_a_transform(docs):
    def shout(row):
        return {**row, "text": row["text"] + "!"}

    _, up, _ = roundtrip(docs, lambda op: (op.vectors.upsert("docs", filter="id < 10", values={"text": "ten"}),
                                           op.vectors.upsert("docs", filter="id >= 290", transform=shout)), "docs")
    texts = {r["id"]: r["text"] for r in rows_of(docs, "docs", ("id", "text"))}
    assert texts[3] == "doc 3 on cats 3"                               # reverted
    assert len(up["docs"][2]) == 300


def test_field_changes_by_rebuild_switch_an_alias_and_switch_back(docs):
    _, up, caps = roundtrip(docs, lambda op: (
        op.vectors.add_field("docs", "lang", "VARCHAR", max_length=4, default="en"),
        op.vectors.alter_field("docs", "text", max_length=1024, convert=str.upper),
        op.vectors.drop_field("docs", "lang")), "docs")
    assert up["docs"][0] == {"id": ("INT64", None), "text": ("VARCHAR", None), "vec": ("FLOAT_VECTOR", 8)}
    assert up["aliases"] == {"docs": "docs_v4"} and up["collections"] == ["docs_v4"]
    assert [c["mode"] for c in caps] == ["rebuild"] * 3
    assert docs.collection_state("docs").fields["text"]["max_length"] == 512
    assert docs.is_collection("docs") and aliases(docs) == {}


@pytest.mark.milvus_feature("multi_vector")
def test_reembed_into_a_second_vector_field_then_back(docs):
    _, up, (cap,) = roundtrip(docs, lambda op: op.vectors.reembed(
        "docs", "text", embed=hashing(dim=16), dim=16, into="vec16", keep=True,
        index={"index_type": "HNSW", "metric_type": "IP"}), "docs")
    assert up["docs"][0]["vec16"] == ("FLOAT_VECTOR", 16) and up["docs"][0]["vec"] == ("FLOAT_VECTOR", 8)
    assert up["docs"][1]["vec16"]["metric_type"] == "IP"


def test_indexes_aliases_rename_and_soft_drop(docs):
    _, up, caps = roundtrip(docs, lambda op: (
        op.vectors.drop_index("docs", "vec"),
        op.vectors.create_index("docs", "vec", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 4}),
        op.vectors.create_alias("docs", "live"),
        op.vectors.rename_collection("docs", "docs_a"),
        op.vectors.copy("docs_a", "docs_b"),
        op.vectors.alter_alias("docs_b", "live"),
        op.vectors.drop_alias("live"),
        op.vectors.create_alias("docs_b", "live"),
        op.vectors.drop_collection("live")), "docs", "docs_a", "docs_b", "live")
    assert caps[0]["index"] == {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8, "efConstruction": 64}}
    assert up["collections"] == ["docs_a"] and up["aliases"] == {}
    assert up["docs_a"][1]["vec"] == {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 4}}
    assert caps[-1]["aliases"] == ["live"] and caps[-1]["physical"] == "docs_b"


def test_checks_count_against_a_number_and_another_collection(docs):
    apply(docs, record(docs, lambda op: (op.vectors.expect_count("docs", 300),
                                         op.vectors.expect_count("docs", 100, filter="id < 100"),
                                         op.vectors.copy("docs", "twin"),
                                         op.vectors.expect_count("twin", "docs"))))
    with pytest.raises(CheckFailed, match=r"expect_count: 'docs' has 300 rows, expected 301"):
        apply(docs, record(docs, lambda op: op.vectors.expect_count("docs", 301)))


def test_interrupted_rebuild_resumes_after_its_last_batch(docs):
    """A step that dies after two checkpoints, rerun with what the journal kept."""
    (op,) = record(docs, lambda o: o.vectors.add_field("docs", "n", "INT64", fill=lambda r: r["id"] * 2,
                                                         batch_size=50))
    seen = []
    op.fill = lambda r: seen.append(r["id"]) or r["id"] * 2

    class Crash(Exception):
        pass

    def crash_after_two(ctx):
        if ctx.rows_done >= 100:
            raise Crash

    ctx = StepContext(store=docs, op=op, on_checkpoint=crash_after_two)
    with pytest.raises(Crash):
        docs.apply(op, ctx)
    assert docs.alias_target("docs") is None                          # not switched yet
    seen.clear()
    again = StepContext(store=docs, op=op, captured=dict(ctx.captured), resume_token=ctx.resume_token,
                        rows_done=ctx.rows_done, resuming=True)
    assert docs.apply(op, again) == 300
    assert seen == list(range(100, 300))
    values = {r["id"]: r["n"] for r in rows_of(docs, "docs", ("id", "n"))}
    assert values == {i: i * 2 for i in range(300)}


def test_identity_embedding_and_plan_estimates(docs):
    (op,) = record(docs, lambda o: o.vectors.copy("docs", "x", filter="id < 42"))
    assert docs.estimate_rows(op) == 42
    assert identity(3)(["1,2,3", "[4, 5, 6]", [7.0, 8.0, 9.0]]) == [[1.0, 2.0, 3.0], [4, 5, 6], [7.0, 8.0, 9.0]]
    assert hashing(8)(["a b"]).shape == (1, 8)
    a, b = hashing(8), hashing(8, seed=1)
    assert (a(["same text"]) == hashing(8)(["same text"])).all() and not (a(["same text"]) == b(["same text"])).all()


@pytest.mark.milvus_feature("multi_vector", "nullable")
def test_json_dynamic_and_two_vector_fields_survive_copy_rebuild_and_revert(lite):
    fields = [{"name": "pk", "type": "VARCHAR", "max_length": 32, "primary": True},
              {"name": "meta", "type": "JSON", "nullable": True},
              {"name": "tags", "type": "ARRAY", "element_type": "VARCHAR", "max_length": 16, "max_capacity": 4},
              {"name": "dense", "type": "FLOAT_VECTOR", "dim": 4},
              {"name": "title_vec", "type": "FLOAT_VECTOR", "dim": 2}]
    rows = [{"pk": f"k\"{i}", "meta": {"n": i, "nested": [i, {"x": "ü"}]}, "tags": ["a", str(i)],
             "dense": [float(i), 1.0, 0.5, -1.0], "title_vec": [1.0, float(i)], "extra": i * 10} for i in range(40)]
    apply(lite, record(lite, lambda op: (
        op.vectors.create_collection("kb", fields=fields, dynamic=True, indexes={
            "dense": {"index_type": "HNSW", "metric_type": "L2"}, "title_vec": {"metric_type": "IP"}}),
        op.vectors.insert("kb", rows=rows, batch_size=7))))
    got = {r["pk"]: r for r in rows_of(lite, "kb")}
    assert got['k"3']["extra"] == 30 and got['k"3']["meta"] == {"n": 3, "nested": [3, {"x": "ü"}]}
    _, up, _ = roundtrip(lite, lambda op: (
        op.vectors.copy("kb", "kb2", filter='pk > "k\\"1"', batch_size=5),
        op.vectors.add_field("kb", "lang", "VARCHAR", max_length=4, fill=lambda r: "de" if r["extra"] % 20 else "en"),
        op.vectors.delete("kb", 'pk == "k\\"7"')), "kb", "kb2")
    assert len(up["kb"][2]) == 39 and up["kb"][0]["title_vec"] == ("FLOAT_VECTOR", 2)
    assert {r["pk"]: r["extra"] for r in rows_of(lite, "kb")}['k"5'] == 50
