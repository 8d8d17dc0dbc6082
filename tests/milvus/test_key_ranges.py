"""Issue 19: rows written into an empty collection are undone by the ranges of
keys kept in the step's journal record (``created_keys``) instead of a key
ledger written with every batch; keys that make no ranges (strings, or
more than ``MAX_KEY_RANGES`` ranges) still go to a ledger collection. In
every case the inverse deletes exactly the rows the step wrote: a row the
application wrote meanwhile stays. Checked in the store, on Milvus Lite (or
the server of ``RAGREV_TEST_MILVUS_URI``)."""
from __future__ import annotations

import pytest

from ragrev.context import StepContext
from ragrev.drivers.milvus.data_steps import MAX_KEY_RANGES, _with_keys
from tests.helpers.milvus import DOCS_FIELDS, apply, doc_rows, record, revert, rows_of

INDEXES = {"vec": {"index_type": "FLAT", "metric_type": "L2"}}


@pytest.fixture
def empty(lite):
    apply(lite, record(lite, lambda op: op.vectors.create_collection("docs", fields=DOCS_FIELDS, indexes=INDEXES)))
    return lite


def ids(store, name="docs") -> set:
    return {r["id"] for r in rows_of(store, name, ("id",))}


def trash(store) -> list[str]:
    return [n for n in store.c.list_collections() if n.startswith("ragrev_trash_")]


def test_ranges_merge_and_only_integers_make_them():
    assert _with_keys([], [5, 3, 4, 9]) == [[3, 5], [9, 9]]
    assert _with_keys([[3, 5], [9, 9]], [6, 7, 8, 20]) == [[3, 9], [20, 20]]
    assert _with_keys([[0, 10]], [2, 3]) == [[0, 10]]
    assert _with_keys([], ["a"]) is None and _with_keys([], [True]) is None


def test_insert_into_an_empty_collection_keeps_ranges_in_the_journal_and_no_ledger(empty):
    rows = doc_rows(150) + doc_rows(150, start=1000, seed=3)
    ops = record(empty, lambda op: op.vectors.insert("docs", rows=rows, batch_size=64))
    (cap,) = apply(empty, ops)
    assert cap == {"undo": "ledger", "created_keys": [[0, 149], [1000, 1149]]}
    assert trash(empty) == []                                         # nothing written besides the rows
    empty.c.insert("docs", doc_rows(1, start=500, seed=4))            # the application's row, meanwhile
    revert(empty, ops, [cap])
    assert ids(empty) == {500}


def test_keys_past_the_range_limit_go_to_a_ledger_and_the_revert_is_exact(empty):
    rows = [{**r, "id": 2 * r["id"]} for r in doc_rows(3 * MAX_KEY_RANGES // 2)]  # every other key: no ranges
    ops = record(empty, lambda op: op.vectors.insert("docs", rows=rows, batch_size=MAX_KEY_RANGES // 2))
    (cap,) = apply(empty, ops)
    assert len(cap["created_keys"]) == MAX_KEY_RANGES and cap["created"] in trash(empty)
    assert len(rows_of(empty, cap["created"], ("id",))) == len(rows) - MAX_KEY_RANGES
    empty.c.insert("docs", [{**doc_rows(1)[0], "id": 1}])             # between two inserted keys
    revert(empty, ops, [cap])
    assert ids(empty) == {1}


def test_string_keys_go_to_a_ledger(lite):
    fields = [{"name": "id", "type": "VARCHAR", "max_length": 16, "primary": True},
              {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}]
    apply(lite, record(lite, lambda op: op.vectors.create_collection("docs", fields=fields, indexes=INDEXES)))
    ops = record(lite, lambda op: op.vectors.insert("docs", rows=[{"id": f"k{i}", "vec": [1.0, float(i)]}
                                                                  for i in range(30)], batch_size=8))
    (cap,) = apply(lite, ops)
    assert "created_keys" not in cap and len(rows_of(lite, cap["created"], ("id",))) == 30
    lite.c.insert("docs", [{"id": "app", "vec": [0.0, 0.0]}])
    revert(lite, ops, [cap])
    assert ids(lite) == {"app"}


def test_a_killed_insert_has_the_next_batch_in_its_journal_and_resumes(empty):
    """Each checkpoint already names the keys of the batch after it: a step
    killed after any checkpoint (the next batch perhaps half written) is
    undone exactly; resumed, it writes the rest once."""
    (op,) = record(empty, lambda o: o.vectors.insert("docs", rows=doc_rows(300), batch_size=50))
    journal = []

    class Crash(Exception):
        pass

    def crash_after_two(ctx):
        journal.append((dict(ctx.captured, created_keys=[list(r) for r in ctx.captured.get("created_keys", [])]),
                        ctx.rows_done))
        if ctx.rows_done >= 100:
            raise Crash

    ctx = StepContext(store=empty, op=op, on_checkpoint=crash_after_two)
    with pytest.raises(Crash):
        empty.apply(op, ctx)
    assert [(c["created_keys"], n) for c, n in journal] == [
        ([], 0), ([[0, 49]], 0), ([[0, 99]], 50), ([[0, 149]], 100)]   # the first: the decision (no ledger)
    assert ids(empty) == set(range(100))
    again = StepContext(store=empty, op=op, captured=dict(ctx.captured), resume_token=ctx.resume_token,
                        rows_done=ctx.rows_done, resuming=True)
    assert empty.apply(op, again) == 300
    assert again.captured["created_keys"] == [[0, 299]] and ids(empty) == set(range(300))
    revert(empty, [op], [again.captured])
    assert ids(empty) == set()
