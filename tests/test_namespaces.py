"""``op.<store>`` is a typed namespace: one method per operation of the store's
family, with the operation's signature and docstring (help(), dir(), IDEs);
inverse-only operations are not offered; no store name can be shadowed by the
``op`` object itself, and a name that would be is refused when the
configuration is loaded."""
from __future__ import annotations

import inspect
import pydoc

import pytest

from ragrev.config import RESERVED_STORE_NAMES, StoreConfig
from ragrev.errors import OperationError
from ragrev.ops import offered
from ragrev.plan import Recorder
from tests.helpers.project import Project

VECTORS = StoreConfig("vectors", "milvus-lite:///x.db", "milvus")
PG = StoreConfig("pg", "pgvector:///x", "pgvector")
DOCS = StoreConfig("docs", "secantus:///d", "mongo")


def _recorder(*stores):
    return Recorder({s.name: s for s in stores})


def _params(sig):
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("store", [VECTORS, PG, DOCS], ids=lambda s: s.kind)
def test_every_offered_operation_is_a_method_with_the_operations_signature_and_doc(store):
    ns = getattr(_recorder(store), store.name)
    ops = offered(store.kind)
    assert ops
    listed = dir(ns)
    for name, cls in ops.items():
        assert name in listed, name
        method = getattr(type(ns), name, None)
        assert method is not None and callable(method), f"{type(ns).__name__} has no method {name}"
        sig = inspect.signature(getattr(ns, name))
        want = inspect.signature(cls)
        assert _params(sig) == _params(want) or repr(want).count("<factory>"), (name, sig, want)
        assert [p.name for p in sig.parameters.values()] == [p.name for p in want.parameters.values()], name
        assert inspect.cleandoc(cls.__doc__).splitlines()[0] in (getattr(ns, name).__doc__ or ""), name


def test_dir_help_and_signature_of_a_vector_store():
    ns = _recorder(VECTORS).vectors
    assert {"create_collection", "insert", "expect_count", "drop_index"} <= set(dir(ns))
    assert "chats" not in dir(ns)
    sig = inspect.signature(ns.create_index)
    assert list(sig.parameters) == ["collection", "field", "index_type", "metric_type", "params"]
    assert sig.parameters["index_type"].default == "AUTOINDEX"
    text = pydoc.render_doc(type(ns), renderer=pydoc.plaintext)
    assert "create_collection(self, collection: 'str', fields: 'list'" in text
    assert "Build an index on a field" in text


def test_a_document_store_offers_chats():
    ns = _recorder(DOCS).docs
    assert "chats" in dir(ns) and "update_many" in dir(ns)


def test_a_method_records_the_same_operation_as_the_class():
    rec = _recorder(VECTORS)
    rec.vectors.create_index("docs", "embedding", index_type="HNSW", metric_type="COSINE")
    rec.vectors.insert("docs", [{"id": 1}])
    from ragrev.ops.vector import CreateIndex, Insert

    want = [CreateIndex("docs", "embedding", index_type="HNSW", metric_type="COSINE"), Insert("docs", [{"id": 1}])]
    for w in want:
        w.store = "vectors"
    assert [o.normalized() for o in rec._ops] == [w.normalized() for w in want]
    assert all(o.location is None for o in rec._ops)


@pytest.mark.parametrize("name", ["restore_rows", "discard_collection"])
def test_an_inverse_only_operation_is_not_offered(name):
    ns = _recorder(VECTORS).vectors
    assert name not in dir(ns)
    with pytest.raises(OperationError, match=f"store 'vectors' \\(milvus\\) has no operation '{name}'"):
        getattr(ns, name)("docs")


def test_a_store_named_ops_is_not_shadowed():
    store = StoreConfig("ops", "milvus-lite:///x.db", "milvus")
    rec = _recorder(store)
    rec.ops.drop_collection("old")
    assert [o.name for o in rec._ops] == ["drop_collection"] and rec._ops[0].store == "ops"


def test_the_reserved_store_names_are_the_recorders_public_names():
    public = {n for n in dir(Recorder) if not n.startswith("_")}
    assert public == set(RESERVED_STORE_NAMES)


@pytest.mark.parametrize("name", ["check_references", "_private", "class"])
def test_a_store_name_the_op_object_would_shadow_is_refused(tmp_path, name):
    p = Project(tmp_path, {"meta": "sqlite:///{}/m.db".format(tmp_path)})
    p.add_store_text(f'"{name}"', f'url = "sqlite:///{tmp_path}/x.db"')
    result = p.cli("heads", expect=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"[stores.{name}]" in lines[0], result.output
    assert "Traceback" not in result.output


def test_wrong_arguments_name_the_operation():
    ns = _recorder(VECTORS).vectors
    with pytest.raises(OperationError, match="create_collection: missing a required argument: 'fields'"):
        ns.create_collection("x")
    with pytest.raises(OperationError, match="drop_alias: got an unexpected keyword argument 'colour'"):
        ns.drop_alias("a", colour="red")
