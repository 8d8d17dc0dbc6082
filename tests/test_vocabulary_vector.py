"""The vector family's one vocabulary (issue 14): ``rename_collection(collection,
new_name)``, ``expect_count(collection, count=, filter=, at_least=, at_most=,
same_as=)``, ``drop_index(collection, field=None, index_name=None)``. A former
spelling records the same operation with a deprecation warning (and a lint
finding); the current one warns nothing; a revision applied by the previous
release keeps its checksum."""
from __future__ import annotations

import warnings

import pytest

from ragrev import ops as ops_module
from ragrev.config import StoreConfig
from ragrev.errors import OperationError
from ragrev.ops import RagrevDeprecationWarning
from ragrev.plan import Recorder
from tests.helpers.project import Project

VECTORS = StoreConfig("vectors", "milvus-lite:///x.db", "milvus")

#: what the previous release's Operation.normalized() gave for each call (recorded on main, 07f7dc6)
BEFORE = {
    "rename": {"store": "vectors", "op": "rename_collection", "params": {"old": "a", "new": "b"}},
    "count": {"store": "vectors", "op": "expect_count", "params": {"collection": "c", "expected": 5, "filter": "x > 1"}},
    "same": {"store": "vectors", "op": "expect_count", "params": {"collection": "c", "expected": "d", "filter": None}},
    "same_positional": {"store": "vectors", "op": "expect_count",
                        "params": {"collection": "c", "expected": "d", "filter": None}},
    "drop_index": {"store": "vectors", "op": "drop_index", "params": {"collection": "c", "field": "embedding"}},
}

OLD = {
    "rename": lambda op: op.vectors.rename_collection(old="a", new="b"),
    "count": lambda op: op.vectors.expect_count("c", expected=5, filter="x > 1"),
    "same": lambda op: op.vectors.expect_count("c", expected="d"),
    "same_positional": lambda op: op.vectors.expect_count("c", "d"),
    "drop_index": lambda op: op.vectors.drop_index("c", "embedding"),
}
NEW = {
    "rename": lambda op: op.vectors.rename_collection("a", new_name="b"),
    "count": lambda op: op.vectors.expect_count("c", count=5, filter="x > 1"),
    "same": lambda op: op.vectors.expect_count("c", same_as="d"),
    "same_positional": lambda op: op.vectors.expect_count("c", same_as="d"),
    "drop_index": lambda op: op.vectors.drop_index("c", field="embedding"),
}


@pytest.fixture(autouse=True)
def _fresh_notices():
    ops_module._deprecations_said.clear()  # each test sees its own warnings
    yield


def _record(build):
    rec = Recorder({"vectors": VECTORS})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(rec)
    return rec._ops[0], [str(w.message) for w in caught if issubclass(w.category, RagrevDeprecationWarning)]


@pytest.mark.parametrize("case", sorted(OLD))
def test_former_and_current_spelling_record_the_same_operation(case):
    old, said = _record(OLD[case])
    new, quiet = _record(NEW[case])
    assert old.normalized() == new.normalized()
    assert not quiet
    if case != "drop_index":  # drop_index(collection, field) is still how it is written
        assert said and "is deprecated: write" in said[0], said


@pytest.mark.parametrize("case", sorted(OLD))
def test_checksums_of_the_previous_release_still_match(case):
    new, _ = _record(NEW[case])
    assert new.former_normalized() == BEFORE[case]


def test_at_least_at_most_and_validation():
    op, _ = _record(lambda r: r.vectors.expect_count("c", at_least=2, at_most=4))
    assert op.verdict(3) is None
    assert op.verdict(5) == "'c' has 5 rows, expected at most 4"
    same, _ = _record(lambda r: r.vectors.expect_count("c", same_as="d", filter="x > 1"))
    assert same.verdict(3, 4) == "'c' has 3 rows matching 'x > 1', expected 4 (the rows of 'd')"
    with pytest.raises(OperationError, match="give count=, at_least=, at_most= or same_as="):
        _record(lambda r: r.vectors.expect_count("c"))
    with pytest.raises(OperationError, match="give count= or the former expected=, not both"):
        _record(lambda r: r.vectors.expect_count("c", count=1, expected=2))
    with pytest.raises(OperationError, match="give field= or index_name="):
        _record(lambda r: r.vectors.drop_index("c"))


def test_drop_index_by_index_name_resolves_the_field():
    from ragrev.ops.vector_schema import MILVUS, SchemaState

    rec = Recorder({"vectors": VECTORS})
    rec.vectors.create_collection("c", [{"name": "id", "type": "INT64", "primary": True},
                                        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 4}])
    rec.vectors.drop_index("c", index_name="embedding")
    state = SchemaState(lambda name: None, MILVUS)
    for op in rec._ops:
        op.simulate(state)
    assert rec._ops[1].target == "embedding" and "embedding" not in state.collection("c").indexes
    bad = Recorder({"vectors": VECTORS})
    bad.vectors.drop_index("c", index_name="nope")
    with pytest.raises(OperationError, match="no index named 'nope'"):
        bad._ops[0].simulate(state)


def test_a_former_spelling_is_a_lint_warning_with_the_fix(tmp_path):
    p = Project(tmp_path, {"vectors": f"milvus-lite:///{tmp_path}/v.db"})
    p.add("a1", None, """
        def upgrade(op):
            op.vectors.create_collection("c", [{"name": "id", "type": "INT64", "primary": True},
                                               {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 4}])
            op.vectors.expect_count("c", expected=0)
        """)
    result = p.cli("check", "--json", expect=None)
    import json

    data = json.JSONDecoder().raw_decode(result.output[result.output.index("{"):])[0]
    hits = [f for f in data["findings"] if f["rule"] == "former-spelling"]
    assert len(hits) == 1 and hits[0]["severity"] == "warning", data
    assert hits[0]["line"] == 11 and hits[0]["fix"] == "expect_count(count=...)", hits
