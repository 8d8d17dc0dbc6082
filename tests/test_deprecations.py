"""The mechanism behind one vocabulary across stores: former operation names
and keywords still build the operation (with one ``ragrev.deprecation``
warning per place), and the checksum the previous release computed still
matches (``Operation.former_normalized``). The renames themselves are tested
with their families (tests/mongo, tests/milvus)."""
import logging
from dataclasses import dataclass
from typing import ClassVar

import pytest

from ragrev.errors import OperationError
from ragrev.ops import Operation, RagrevDeprecationWarning, sha256_json
from ragrev.plan import builder, checksum_matches


@dataclass
class Count(Operation):
    name: ClassVar[str] = "expect_total"
    old_names: ClassVar[tuple] = ("expect_rows",)
    renamed: ClassVar[dict] = {"expected": lambda v: ("same_as", v) if isinstance(v, str) else ("count", v),
                               "where": "filter"}
    former_keys: ClassVar[dict] = {"count": "expected", "same_as": "expected", "filter": "where"}
    added: ClassVar[tuple] = ("at_least",)
    collection: str
    count: int | None = None
    filter: str | None = None
    at_least: int | None = None
    same_as: str | None = None


def build(**kwargs):
    recorded = []
    op = builder(Count, lambda o: recorded.append(o) or o, lambda: "rev.py:7: ")(**kwargs)
    op.store = "s"
    return op


def test_former_keywords_build_the_same_operation_with_one_warning(caplog):
    caplog.set_level(logging.WARNING, logger="ragrev.deprecation")
    with pytest.warns(RagrevDeprecationWarning, match=r"rev.py:7: expect_total\(expected=...\) is deprecated"):
        old = build(collection="c", expected=5, where="x > 1")
    new = build(collection="c", count=5, filter="x > 1")
    assert old.normalized() == new.normalized()
    assert [r.getMessage() for r in caplog.records].count(
        "rev.py:7: expect_total(expected=...) is deprecated: write expect_total(count=...)") == 1
    assert build(collection="c", expected="other").same_as == "other"


def test_both_spellings_at_once_is_bad_input():
    with pytest.raises(OperationError, match=r"rev.py:7: expect_total: give count= or the former expected=, not both"):
        build(collection="c", count=1, expected=2)


def test_former_normalized_is_what_the_previous_release_computed():
    # as the previous release normalized expect_rows(collection, expected, where)
    before = {"store": "s", "op": "expect_rows", "params": {"collection": "c", "expected": "other", "where": None}}
    op = build(collection="c", same_as="other")
    assert op.former_normalized() == before
    assert build(collection="c", count=3).former_normalized()["params"] == {"collection": "c", "expected": 3,
                                                                              "where": None}
    # a parameter new in this release counts once it is used
    assert "at_least" in build(collection="c", at_least=2).former_normalized()["params"]

    class Plan:
        checksum = sha256_json(op.normalized())
        former_checksum = sha256_json(before)

    assert checksum_matches(Plan, sha256_json(before)) and checksum_matches(Plan, Plan.checksum)
    assert not checksum_matches(Plan, "0" * 64) and not checksum_matches(Plan, None)
