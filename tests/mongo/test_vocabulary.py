"""The document family's one vocabulary (issue 14): ``add_field(fill=)``,
``insert(collection, rows)``, ``drop_index(collection, index_name=None,
field=None)``, ``expect_count(..., same_as=)``, inverse-only operations
hidden. A former spelling builds the same operation (same normalized
parameters as the new spelling, and the checksum the previous release
journaled) with one deprecation warning; the new spelling warns nothing."""
from __future__ import annotations

import re
import textwrap
import warnings

import pytest

from ragrev.config import StoreConfig
from ragrev.errors import CheckFailed, OperationError
from ragrev.ops import RagrevDeprecationWarning
from ragrev.ops import document as m
from ragrev.plan import Recorder
from tests.helpers.mongo import run_op

#: ``normalized()`` of these operations as the previous release (before the
#: renames) made them, recorded from its code: what its journals hold
BEFORE = {
    "add_field_fn": {"store": "docs", "op": "add_field", "params": {
        "collection": "docs", "field": "slug", "default": "MISSING", "fn": {"callable": "builtins:len"},
        "filter": None, "batch_size": 7}},
    "add_field_default": {"store": "docs", "op": "add_field", "params": {
        "collection": "docs", "field": "lang", "default": "en", "fn": None, "filter": {"a": 1}, "batch_size": 1000}},
    "insert_many": {"store": "docs", "op": "insert_many", "params": {
        "collection": "docs", "documents": [{"_id": 1}], "batch_size": 5}},
    "drop_index": {"store": "docs", "op": "drop_index", "params": {"collection": "docs", "index_name": "title_1"}},
    "expect_count": {"store": "docs", "op": "expect_count", "params": {
        "collection": "docs", "count": 3, "filter": {"a": 1}, "at_least": None, "at_most": None}},
    "expect_count_at_least": {"store": "docs", "op": "expect_count", "params": {
        "collection": "docs", "count": None, "filter": None, "at_least": 2, "at_most": None}},
}

OLD = {
    "add_field_fn": 'op.docs.add_field("docs", "slug", fn=len, batch_size=7)',
    "add_field_default": 'op.docs.add_field("docs", "lang", default="en", filter={"a": 1})',
    "insert_many": 'op.docs.insert_many("docs", documents=[{"_id": 1}], batch_size=5)',
    "drop_index": 'op.docs.drop_index("docs", name="title_1")',
    "expect_count": 'op.docs.expect_count("docs", 3, {"a": 1})',
    "expect_count_at_least": 'op.docs.expect_count("docs", at_least=2)',
}
NEW = {
    "add_field_fn": 'op.docs.add_field("docs", "slug", fill=len, batch_size=7)',
    "add_field_default": 'op.docs.add_field("docs", "lang", default="en", filter={"a": 1})',
    "insert_many": 'op.docs.insert("docs", [{"_id": 1}], batch_size=5)',
    "drop_index": 'op.docs.drop_index("docs", "title_1")',
    "expect_count": 'op.docs.expect_count("docs", 3, {"a": 1})',
    "expect_count_at_least": 'op.docs.expect_count("docs", at_least=2)',
}
DEPRECATED = {"add_field_fn": ["add_field(fn=...) is deprecated: write add_field(fill=...)"],
              "insert_many": ["insert_many() is deprecated: write insert()",
                              "insert(documents=...) is deprecated: write insert(rows=...)"],
              "drop_index": ["drop_index(name=...) is deprecated: write drop_index(index_name=...)"]}


def record(tmp_path, line: str, name: str = "r.py"):
    """The operations of a revision whose upgrade is ``line``, and the warnings said."""
    path = tmp_path / name
    path.write_text(f"def upgrade(op):\n    {line}\n")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    rec = Recorder({"docs": StoreConfig("docs", "secantus:///unused", "mongo", {})}, str(path))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        namespace["upgrade"](rec)
    return rec._ops, [str(w.message) for w in said if issubclass(w.category, RagrevDeprecationWarning)]


@pytest.mark.parametrize("case", sorted(OLD))
def test_former_spelling_is_the_same_operation_with_one_warning(tmp_path, case):
    (old,), said = record(tmp_path, OLD[case], "old.py")
    (new,), quiet = record(tmp_path, NEW[case], "new.py")
    assert quiet == []
    if case in DEPRECATED:
        assert said == [f"{tmp_path / 'old.py'}:2: {note}" for note in DEPRECATED[case]]
    else:
        assert said == []
    assert type(old) is type(new) and old.normalized() == new.normalized()
    # a revision the previous release applied keeps its journaled checksum, whichever spelling it uses now
    assert old.former_normalized() == new.former_normalized() == BEFORE[case]


def test_new_parameters_change_the_checksum_only_when_given():
    op = m.ExpectCount("docs", same_as="other")
    op.store = "docs"
    assert op.former_normalized()["params"]["same_as"] == "other"
    by_field = m.DropIndex("docs", field="title")
    by_field.store = "docs"
    assert by_field.former_normalized()["params"]["field"] == "title"


def test_inverse_only_operations_are_not_offered(tmp_path):
    for name in ("restore_collection", "remove_added_field", "restore_field", "delete_inserted"):
        with pytest.raises(OperationError, match=f"has no operation {name!r}"):
            record(tmp_path, f'op.docs.{name}("docs", "x", "ragrev_trash_1_x")')
        assert getattr(m, "".join(p.title() for p in name.split("_"))).inverse_only


@pytest.fixture
def docs(db):
    db.docs.insert_many([{"_id": i, "title": f"t{i}", "n": i} for i in range(5)])
    return db.docs


def test_drop_index_by_field_and_its_inverse(store, db, docs):
    docs.create_index("title", name="by_title")
    docs.create_index([("title", 1), ("n", -1)], name="title_n")
    op = m.DropIndex("docs", field="title")
    op.validate()
    _, captured = run_op(store, op)
    names = {ix["name"] for ix in docs.list_indexes()}
    assert names == {"_id_", "title_n"}
    (back,) = op.reverse(captured)
    assert back.index_name == "by_title"
    run_op(store, back)
    assert {ix["name"]: dict(ix["key"]) for ix in docs.list_indexes()}["by_title"] == {"title": 1}


def test_drop_index_arguments():
    for bad in (lambda: m.DropIndex("docs"), lambda: m.DropIndex("docs", "x_1", field="x"),
                lambda: m.DropIndex("docs", "_id_")):
        with pytest.raises(OperationError):
            bad().validate()


def test_drop_index_by_field_preflight(store, docs):
    docs.create_index("title", name="a")
    docs.create_index("title", name="b", sparse=True)
    op = m.DropIndex("docs", field="title")
    op.store, op.location = "docs", ("revisions/a1.py", 3)
    with pytest.raises(OperationError, match=r"a1.py:3: drop_index: collection 'docs' has 2 indexes on 'title' "
                                             r"\(a, b\): name one with index_name="):
        store.preflight([op])
    op = m.DropIndex("docs", field="n")
    op.store = "docs"
    with pytest.raises(OperationError, match="has no index on 'n' alone"):
        store.preflight([op])


def test_expect_count_same_as(store, db, docs):
    n = docs.count_documents({})
    db.copy.insert_many([{"_id": i} for i in range(n)])
    assert run_op(store, m.ExpectCount("docs", same_as="copy"))[0] == n
    db.copy.insert_one({"_id": "extra"})
    with pytest.raises(CheckFailed, match=rf"{n} documents, expected {n + 1} as in 'copy'"):
        run_op(store, m.ExpectCount("docs", same_as="copy"))
    missing = m.ExpectCount("docs", same_as="nope")
    missing.store = "docs"
    with pytest.raises(OperationError, match="has no collection 'nope'"):
        store.preflight([missing])


def test_old_spelling_through_the_cli_warns_once_with_file_and_line(mongo_project, db):
    p = mongo_project()
    p.add("r1", None, textwrap.dedent("""
        def upgrade(op):
            op.docs.create_collection("articles")
            op.docs.insert_many("articles", [{"_id": 1, "title": "a b"}])
            op.docs.add_field("articles", "slug", fn=lambda d: d["title"].replace(" ", "-"))
        """))
    r = p.cli("upgrade", "head", "-q")
    assert r.exit_code == 0, r.output
    assert r.output.count("ragrev: warning:") == 2
    assert re.search(r"r1.py:(\d+): insert_many\(\) is deprecated: write insert\(\)\n", r.output)
    assert re.search(r"r1.py:(\d+): add_field\(fn=...\) is deprecated: write add_field\(fill=...\)\n", r.output)
    assert db.articles.find_one({"_id": 1}) == {"_id": 1, "title": "a b", "slug": "a-b"}
