"""The embedding contract: recorded by create_collection and reembed in the
collection's properties (Milvus Lite), read by ``ragrev.contract``, which
refuses a query embedder of another model, version or dimension."""
from __future__ import annotations

import json

import pytest

from ragrev import contract
from ragrev.contracts import ContractMismatch
from ragrev.embeddings import hashing

REV1 = '''
def upgrade(op):
    op.vec.create_collection("chunks", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "text", "type": "VARCHAR", "max_length": 200},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8},
    ], embedding={"model": "mini-embed", "version": "2024-01", "chunker": "para-v1"})
    op.vec.insert("chunks", rows=[{"id": i, "text": f"passage {i}", "embedding": [1.0 + i] * 8} for i in range(10)])
'''

REV2 = '''
from ragrev.embeddings import hashing


def upgrade(op):
    op.vec.reembed("chunks", text_field="text", embed=hashing(dim=16, seed=1), dim=16)
'''


@pytest.fixture
def project(make_project, tmp_path):
    p = make_project({"vec": f"milvus-lite:///{tmp_path}/vec.db"})
    p.add("a1", None, REV1)
    p.cli("upgrade", "head", "-q")
    return p


def test_create_collection_records_the_contract(project):
    c = contract("vec", "chunks", config=str(project.config))
    assert (c.model, c.version, c.chunker, c.dim, c.metric, c.field) == \
        ("mini-embed", "2024-01", "para-v1", 8, "COSINE", "embedding")
    contract("vec", "chunks", config=str(project.config), model="mini-embed", dim=8)  # fits: no error
    with pytest.raises(ContractMismatch, match="dimension 16, the collection holds 8"):
        contract("vec", "chunks", config=str(project.config), model="mini-embed", dim=16)
    with pytest.raises(ContractMismatch, match="model 'big-embed'"):
        contract("vec", "chunks", config=str(project.config), model="big-embed")


def test_reembed_records_the_new_model_and_drift_checks_it(project):
    project.add("a2", "a1", REV2)
    project.cli("upgrade", "head", "-q")
    c = contract("vec", "chunks", config=str(project.config))
    assert (c.model, c.dim, c.chunker) == ("hashing", 16, "para-v1")
    assert contract("vec", "chunks", hashing(dim=16, seed=1), config=str(project.config)) == c
    with pytest.raises(ContractMismatch, match="dimension 8"):
        contract("vec", "chunks", hashing(dim=8, seed=1), config=str(project.config))
    with pytest.raises(ContractMismatch, match="model version"):
        contract("vec", "chunks", hashing(dim=16, seed=2), config=str(project.config))
    state = json.loads(project.cli("state", "--json").output)["stores"][0]["state"]
    rebuilt = state["collections"][state["aliases"]["chunks"]]
    assert rebuilt["embedding"]["model"] == "hashing" and rebuilt["fields"]["embedding"]["dim"] == 16
    assert project.cli("drift").output.startswith("vec (milvus, at a2): no drift")


def test_contract_on_an_open_client_and_bad_input(project):
    from ragrev.config import load_config
    from ragrev.stores import open_store

    s = open_store(load_config(str(project.config)).store("vec"))
    s.connect()
    try:
        assert contract(s.c, "chunks").model == "mini-embed"
        with pytest.raises(ContractMismatch):
            contract(s.c, "chunks", dim=3)
        with pytest.raises(Exception, match="no collection 'nope'"):
            contract(s.c, "nope")
    finally:
        s.close()


def test_unused_contract_parameters_leave_checksums_alone():
    from ragrev.ops.vector import CreateCollection

    op = CreateCollection("c", [{"name": "id", "type": "INT64", "primary": True},
                                {"name": "v", "type": "FLOAT_VECTOR", "dim": 2}])
    assert "embedding" not in op.normalized()["params"]


def test_state_never_calls_an_embedding_function(tmp_path):
    """Computing the state simulates a reembed without probing its embedding."""
    from ragrev.config import StoreConfig
    from ragrev.ops.vector import CreateCollection, Reembed
    from ragrev.state import simulate_milvus

    calls = []

    def embed(texts):
        calls.append(texts)
        return [[0.0] * 16 for _ in texts]

    ops = [CreateCollection("c", [{"name": "id", "type": "INT64", "primary": True},
                                  {"name": "text", "type": "VARCHAR", "max_length": 10},
                                  {"name": "v", "type": "FLOAT_VECTOR", "dim": 8}]),
           Reembed("c", "text", embed, 16, model="m2")]
    for op in ops:
        op.validate()
    data, notes = simulate_milvus(ops, StoreConfig("vec", f"milvus-lite:///{tmp_path}/x.db", "milvus"))
    assert not calls and not notes
    [rebuilt] = [c for n, c in data["collections"].items() if "~" in n]
    assert rebuilt["fields"]["v"]["dim"] == 16 and rebuilt["embedding"]["model"] == "m2"
