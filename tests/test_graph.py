"""ragrev.graph: the revision graph, on graphs drawn in each test's docstring.

Arrows point from a revision to its ``down_revision``; ``~~>`` is a
``depends_on``; ``[x]`` is a branch label.
"""
from __future__ import annotations

import random
import sys

import pytest

from ragrev.errors import (
    AmbiguousRevision,
    BadTarget,
    CycleError,
    DuplicateBranchLabel,
    DuplicateRevision,
    GraphError,
    MultipleHeads,
    RevisionFileError,
    UnknownRevision,
    UnreachableTarget,
)
from ragrev.graph import Revision, RevisionMap, normalize_ids


def rmap(*revs: Revision) -> RevisionMap:
    return RevisionMap(lambda: list(revs))


def ids(revs) -> list[str]:
    return [r.revision for r in revs]


# -- shapes used by several tests --------------------------------------------------

def chain(n=4):
    """a <-- b <-- c <-- d"""
    names = "abcdefghij"[:n]
    return rmap(*(Revision(x, names[i - 1] if i else None) for i, x in enumerate(names)))


def diamond():
    """
    a <-- b <-- c <-- e <-- f
           \\          /
            <-- d <--
    """
    return rmap(Revision("a"), Revision("b", "a"), Revision("c", "b"), Revision("d", "b"),
                Revision("e", ("c", "d")), Revision("f", "e"))


def two_bases():
    """
    a1 <-- a2 <-- a3          [app]
    b1 <-- b2                 [lib]
    """
    return rmap(Revision("a1", branch_labels="app"), Revision("a2", "a1"), Revision("a3", "a2"),
                Revision("b1", branch_labels="lib"), Revision("b2", "b1"))


def cross_dep():
    """
    a1 <-- a2 <-- a3          [app]
            ~~> b1
    b1 <-- b2                 [lib]
    """
    return rmap(Revision("a1", branch_labels="app"), Revision("a2", "a1", depends_on="lib"),
                Revision("a3", "a2"), Revision("b1", branch_labels="lib"), Revision("b2", "b1"))


def branched():
    """
    a <-- b <-- c <-- e           (c, e: [x] from c)
           \\
            <-- d <-- f           (d, f: [y] from d)
    """
    return rmap(Revision("a"), Revision("b", "a"), Revision("c", "b", branch_labels="x"),
                Revision("d", "b", branch_labels="y"), Revision("e", "c"), Revision("f", "d"))


# -- Revision and normalize_ids ----------------------------------------------------

def test_normalize_ids():
    """(no graph) None/str/tuple/list -> tuple; duplicates dropped; bad types refused."""
    assert normalize_ids(None) == ()
    assert normalize_ids("") == ()
    assert normalize_ids("a") == ("a",)
    assert normalize_ids(("a", "b", "a")) == ("a", "b")
    assert normalize_ids(["a", "b"]) == ("a", "b")
    with pytest.raises(TypeError):
        normalize_ids(5)
    with pytest.raises(TypeError):
        normalize_ids(("a", 5))


def test_revision_normalizes_and_helpers():
    """
    a            (base)
    m --> (a, b) (merge)
    """
    a = Revision("a", None, None, None)
    m = Revision("m", ["a", "b"], "lbl", ("x",), message="merge", path="m.py", payload=object())
    assert (a.down_revision, a.branch_labels, a.depends_on) == ((), (), ())
    assert a.is_base and not a.is_merge
    assert m.down_revision == ("a", "b") and m.branch_labels == ("lbl",) and m.depends_on == ("x",)
    assert m.is_merge and not m.is_base
    with pytest.raises(RevisionFileError) as err:
        Revision("z", down_revision=7, path="z.py")
    assert err.value.data["path"] == "z.py" and "down_revision" in str(err.value)


def test_loader_called_once_and_lazily():
    """a <-- b"""
    calls = []

    def loader():
        calls.append(1)
        return [Revision("a"), Revision("b", "a")]

    m = RevisionMap(loader)
    assert calls == []
    assert m.heads == ("b",)
    m.bases, m.topological(), m.get("a")
    assert calls == [1]
    assert list(m.revisions) == ["a", "b"]


# -- shape -----------------------------------------------------------------------

def test_chain_shape():
    """a <-- b <-- c <-- d"""
    m = chain()
    assert m.heads == ("d",) and m.bases == ("a",)
    assert m.branch_points == () and m.merge_points == ()
    assert m.topological() == ["a", "b", "c", "d"]
    assert m.children("b") == ("c",)
    assert m.ancestors("c") == {"a", "b", "c"}
    assert m.descendants("b") == {"b", "c", "d"}


def test_two_bases():
    """
    a1 <-- a2 <-- a3          [app]
    b1 <-- b2                 [lib]
    """
    m = two_bases()
    assert m.bases == ("a1", "b1") and m.heads == ("a3", "b2")
    with pytest.raises(MultipleHeads) as err:
        m.resolve("head")
    assert err.value.heads == ("a3", "b2") and err.value.argument == "head"
    assert m.resolve("heads") == ("a3", "b2")
    assert ids(m.upgrade_path((), "heads")) == ["a1", "a2", "a3", "b1", "b2"]
    assert ids(m.upgrade_path((), "lib@head")) == ["b1", "b2"]
    assert ids(m.upgrade_path(("a3",), "heads")) == ["b1", "b2"]
    # a downgrade leaves the other base's line alone
    assert ids(m.downgrade_path(("a3", "b2"), "a1")) == ["a3", "a2"]
    assert ids(m.downgrade_path(("a3", "b2"), "lib@base")) == ["b2", "b1"]
    assert ids(m.downgrade_path(("a3", "b2"), "base")) == ["a3", "a2", "a1", "b2", "b1"]
    with pytest.raises(UnreachableTarget):  # two bases to walk up from
        m.resolve("+1")
    assert m.resolve("app@+1") == ("a1",)


def test_branch_and_merge():
    """
    a <-- b <-- c <-- e <-- f
           \\          /
            <-- d <--
    """
    m = diamond()
    assert m.heads == ("f",) and m.bases == ("a",)
    assert m.branch_points == ("b",) and m.merge_points == ("e",)
    assert m.children("b") == ("c", "d")
    assert m.topological() == ["a", "b", "c", "d", "e", "f"]
    assert ids(m.upgrade_path(("c",), "heads")) == ["d", "e", "f"]
    assert ids(m.downgrade_path(("f",), "b")) == ["f", "e", "c", "d"]
    assert ids(m.downgrade_path(("f",), "c")) == ["f", "e"]
    assert m.heads_of({"a", "b", "c", "d"}) == ("c", "d")
    assert m.heads_of({"a", "b", "c", "d", "e"}) == ("e",)
    # a merge is where a walk down has to choose
    with pytest.raises(UnreachableTarget) as err:
        m.resolve("e-1")
    assert "merge point e" in str(err.value) and err.value.target == "e-1"
    assert m.resolve("f-1") == ("e",)


def test_branches_and_branch_points():
    """
    a <-- b <-- c <-- e           [x] on c
           \\
            <-- d <-- f           [y] on d
    """
    m = branched()
    assert m.heads == ("e", "f") and m.branch_points == ("b",)
    assert m.get("x").revision == "c"
    assert m.resolve("x@head") == ("e",) and m.resolve("y@head") == ("f",)
    assert m.resolve("x@heads") == ("e",)
    assert m.resolve("c@head") == ("e",)  # a revision names the line through it too
    assert m.resolve("b@heads") == ("e", "f")
    with pytest.raises(MultipleHeads) as err:
        m.resolve("b@head")
    assert err.value.argument == "b@head"
    assert m.resolve("x@base") == ()
    assert m.branch_labels == {"x": "c", "y": "d"}
    assert m.branch_labels_of("e") == ("x",) and m.branch_labels_of("c") == ("x",)
    assert m.branch_labels_of("b") == ()  # b is the branch point, shared
    assert ids(m.upgrade_path((), "x@head")) == ["a", "b", "c", "e"]
    assert ids(m.upgrade_path(("e",), "y@head")) == ["d", "f"]
    # downgrading one branch to the branch point leaves the other
    assert ids(m.downgrade_path(("e", "f"), "y@b")) == ["f", "d"]
    assert ids(m.downgrade_path(("e", "f"), "b")) == ["e", "c", "f", "d"]
    # one base, shared: X@base reverts everything (as Alembic)
    assert ids(m.downgrade_path(("e", "f"), "y@base")) == ["e", "c", "f", "d", "b", "a"]
    with pytest.raises(UnreachableTarget) as err:
        m.resolve("x@f")
    assert "not on the branch" in str(err.value)


def test_branch_label_walks_up_through_its_ancestors():
    """
    a <-- b <-- c [x]
           \\
            <-- d
    """
    m = rmap(Revision("a"), Revision("b", "a"), Revision("c", "b", branch_labels="x"), Revision("d", "b"))
    assert m.branch_labels_of("c") == ("x",)
    assert m.branch_labels_of("a") == ()
    assert m.resolve("x@+3", current=()) == ("c",)
    assert m.resolve("x@+1", current=("d",)) == ("c",)  # not on x: start from its applied tip, b


# -- depends_on ------------------------------------------------------------------

def test_depends_on_across_branches():
    """
    a1 <-- a2 <-- a3          [app]
            ~~> b1
    b1 <-- b2                 [lib]
    """
    m = cross_dep()
    assert m.dependencies("a2") == ("b1",)  # named by label, resolved
    assert m.heads == ("a3", "b2")  # b1 keeps its child b2; depends_on makes no ancestry
    assert m.children("b1") == ("b2",)
    assert m.ancestors("a3") == {"a1", "a2", "a3", "b1"}
    assert m.ancestors("a3", include_depends=False) == {"a1", "a2", "a3"}
    assert m.descendants("b1") == {"b1", "b2", "a2", "a3"}
    topo = m.topological()
    assert topo.index("b1") < topo.index("a2")
    assert ids(m.upgrade_path((), "app@head")) == ["a1", "b1", "a2", "a3"]
    assert ids(m.upgrade_path((), "a1")) == ["a1"]
    # reverting the dependency b1 reverts what depends on it too ...
    assert ids(m.downgrade_path(("a3", "b2"), "lib@base")) == ["a3", "a2", "b2", "b1"]
    # ... but going down to b1 only reverts what is above it
    assert ids(m.downgrade_path(("a3", "b2"), "b1")) == ["b2"]
    assert ids(m.downgrade_path(("a3", "b2"), "app@base")) == ["a3", "a2", "a1"]


def test_depends_on_and_the_version_table():
    """
    a1 <-- a2                 [app]
            ~~> b1
    b1 <-- b2                 [lib]

    As Alembic writes it: after `upgrade a2` the table holds a2 alone; b1 is
    applied (applied_from_heads) but not a row. After `upgrade b2`, b2 is
    added.
    """
    m = rmap(Revision("a1", branch_labels="app"), Revision("a2", "a1", depends_on="b1"),
             Revision("b1", branch_labels="lib"), Revision("b2", "b1"))
    assert m.heads_of({"a1", "a2", "b1"}) == ("a2",)
    assert m.applied_from_heads(("a2",)) == {"a1", "a2", "b1"}
    assert m.heads_of({"a1", "a2", "b1", "b2"}) == ("a2", "b2")
    assert m.heads_of({"a1", "b1"}) == ("a1", "b1")
    assert m.heads_of(()) == ()
    for applied in ({"a1"}, {"a1", "b1"}, {"a1", "a2", "b1"}, {"a1", "a2", "b1", "b2"}, {"b1", "b2"}):
        assert m.applied_from_heads(m.heads_of(applied)) == applied
    assert ids(m.upgrade_path(("a2",), "lib@head")) == ["b2"]
    assert ids(m.downgrade_path(("a2",), "a1")) == ["a2"]
    assert m.heads_of(m.applied_from_heads(("a2",)) - {"a2"}) == ("a1", "b1")
    with pytest.raises(UnknownRevision):
        m.applied_from_heads(("zz",))


def test_depends_on_by_prefix_and_redundant():
    """
    a <-- b ~~> a (already its down_revision: dropped)
    c ~~> b (named by prefix 'b')
    """
    m = rmap(Revision("aaaa"), Revision("bbbb", "aaaa", depends_on="aaaa"), Revision("cccc", depends_on="bb"))
    assert m.dependencies("bbbb") == ()
    assert m.dependencies("cccc") == ("bbbb",)
    assert m.heads == ("bbbb", "cccc") and m.bases == ("aaaa", "cccc")
    assert ids(m.upgrade_path((), "cccc")) == ["aaaa", "bbbb", "cccc"]


# -- identifiers -------------------------------------------------------------------

def test_prefixes():
    """
    ae10 <-- ae1f <-- b3 <-- b34
    """
    m = rmap(Revision("ae10"), Revision("ae1f", "ae10"), Revision("b3", "ae1f"), Revision("b34", "b3"))
    assert m.get("ae10").revision == "ae10"
    assert m.get("ae1f").revision == "ae1f"
    assert m.get("b3").revision == "b3"  # an exact id wins over being a prefix of b34
    assert m.get("b34").revision == "b34"
    with pytest.raises(AmbiguousRevision) as err:
        m.get("ae")
    assert err.value.prefix == "ae" and err.value.candidates == ("ae10", "ae1f")
    with pytest.raises(AmbiguousRevision):
        m.get("ae1")
    with pytest.raises(UnknownRevision) as err:
        m.get("c")
    assert err.value.revision == "c" and err.value.referenced_by is None
    assert m.resolve("ae1f") == ("ae1f",)
    assert ids(m.upgrade_path(("ae10",), "b34")) == ["ae1f", "b3", "b34"]


def test_prefix_within_a_branch():
    """
    r <-- ab1 [x]
      \\
       <-- ab2 [y]
    'ab' is ambiguous alone, unique within branch x.
    """
    m = rmap(Revision("r"), Revision("ab1", "r", branch_labels="x"), Revision("ab2", "r", branch_labels="y"))
    with pytest.raises(AmbiguousRevision):
        m.resolve("ab")
    assert m.resolve("x@ab") == ("ab1",)
    assert m.resolve("y@ab") == ("ab2",)


# -- relative targets ------------------------------------------------------------

def test_relative_targets_on_a_chain():
    """a <-- b <-- c <-- d"""
    m = chain()
    assert m.resolve("+1") == ("a",)  # nothing applied: up from base
    assert m.resolve("+2", current=("b",)) == ("d",)
    assert m.resolve("-1", current=("c",)) == ("b",)
    assert m.resolve("-3", current=("c",)) == ()  # base
    assert m.resolve("b+2") == ("d",)
    assert m.resolve("c-2") == ("a",)
    assert m.resolve("c+0") == ("c",)
    assert m.resolve("head-1") == ("c",)
    assert m.resolve("base+1") == ("a",)
    assert m.resolve("head") == ("d",) and m.resolve("base") == ()
    assert ids(m.upgrade_path(("b",), "+1")) == ["c"]
    assert ids(m.upgrade_path((), "+2")) == ["a", "b"]
    assert ids(m.downgrade_path(("d",), "-2")) == ["d", "c"]
    assert ids(m.downgrade_path(("d",), "b-1")) == ["d", "c", "b"]
    assert ids(m.downgrade_path(("d",), "-4")) == ["d", "c", "b", "a"]
    with pytest.raises(UnreachableTarget) as err:
        m.resolve("+2", current=("c",))
    assert "past head d" in str(err.value) and err.value.target == "+2"
    with pytest.raises(UnreachableTarget) as err:
        m.resolve("-5", current=("d",))
    assert "past base" in str(err.value)
    with pytest.raises(UnreachableTarget):
        m.resolve("-1")  # nothing applied
    with pytest.raises(UnreachableTarget):
        m.downgrade_path(("d",), "-5")


def test_relative_targets_at_a_branch_point():
    """
    a <-- b <-- c <-- e           [x] on c
           \\
            <-- d <-- f           [y] on d
    """
    m = branched()
    with pytest.raises(UnreachableTarget) as err:
        m.resolve("+1", current=("b",))
    assert "branch point b" in str(err.value) and "c, d" in str(err.value)
    assert m.resolve("x@+1", current=("b",)) == ("c",)
    assert m.resolve("y@+2", current=("b",)) == ("f",)
    assert m.resolve("y@b+1") == ("d",)
    assert m.resolve("x@+1", current=("c", "f")) == ("e",)
    assert m.resolve("x@-1", current=("e", "f")) == ("c",)
    assert m.resolve("y@-2", current=("e", "f")) == ("b",)
    assert ids(m.upgrade_path(("c", "f"), "x@+1")) == ["e"]
    assert ids(m.downgrade_path(("e", "f"), "y@-1")) == ["f"]
    assert ids(m.downgrade_path(("e", "f"), "x@-2")) == ["e", "c"]
    # from f down to b: the line of f only (c would be on the other line)
    assert ids(m.downgrade_path(("c", "f"), "y@-2")) == ["f", "d"]
    assert ids(m.downgrade_path(("f",), "-2")) == ["f", "d"]
    assert ids(m.downgrade_path(("f",), "-3")) == ["f", "d", "b"]
    with pytest.raises(MultipleHeads) as err:
        m.resolve("+1", current=("e", "f"))
    assert err.value.heads == ("e", "f") and err.value.argument == "+1"
    with pytest.raises(MultipleHeads):
        m.downgrade_path(("e", "f"), "-1")


def test_relative_targets_in_the_wrong_direction():
    """a <-- b <-- c <-- d"""
    m = chain()
    with pytest.raises(BadTarget):
        m.upgrade_path(("b",), "-1")
    with pytest.raises(BadTarget):
        m.downgrade_path(("b",), "+1")
    with pytest.raises(BadTarget):
        m.resolve("+0", current=("b",))
    assert ids(m.upgrade_path(("c",), "b")) == []  # below current: nothing to do, as Alembic


def test_bad_targets():
    """a <-- b <-- c <-- d"""
    m = chain()
    for text in ("", "   ", "a@b@c", "a:b", "@head", "x@", "+", "a+b", "--1"):
        with pytest.raises(BadTarget):
            m.resolve(text)
    with pytest.raises(BadTarget):
        m.resolve(None)
    with pytest.raises(UnknownRevision):
        m.resolve("zz")
    with pytest.raises(UnknownRevision):
        m.resolve("zz@head")


# -- downgrade semantics -------------------------------------------------------------

def test_downgrade_reverts_descendants_not_the_target():
    """
    a <-- b <-- c <-- e
           \\
            <-- d
    """
    m = rmap(Revision("a"), Revision("b", "a"), Revision("c", "b"), Revision("d", "b"), Revision("e", "c"))
    assert ids(m.downgrade_path(("e", "d"), "c")) == ["e"]
    assert ids(m.downgrade_path(("e", "d"), "e")) == []  # already there
    assert ids(m.downgrade_path(("e", "d"), "a")) == ["d", "e", "c", "b"]  # ties: smaller id first
    assert ids(m.downgrade_path(("c",), "base")) == ["c", "b", "a"]
    assert ids(m.downgrade_path((), "base")) == []
    with pytest.raises(UnreachableTarget) as err:  # d is not applied
        m.downgrade_path(("c",), "d")
    assert err.value.target == "d"


# -- history ranges ------------------------------------------------------------------

def test_iterate_ranges():
    """
    a <-- b <-- c <-- e           [x] on c
           \\
            <-- d <-- f           [y] on d
    """
    m = branched()
    assert ids(m.iterate()) == ["e", "c", "f", "d", "b", "a"]
    assert ids(m.iterate(":")) == ids(m.iterate())
    assert ids(m.iterate("base:heads")) == ids(m.iterate())
    assert ids(m.iterate("b:e")) == ["e", "c", "b"]
    assert ids(m.iterate("b:")) == ["e", "c", "f", "d", "b"]
    assert ids(m.iterate(":c")) == ["c", "b", "a"]
    assert ids(m.iterate("c:heads")) == ["e", "c"]
    assert ids(m.iterate("y@base:heads")) == ["f", "d", "b", "a"]
    assert ids(m.iterate("c:+1")) == ["e", "c"]
    assert ids(m.iterate("-1:e")) == ["e", "c"]
    assert ids(m.iterate("current:heads", current=("c", "d"))) == ["e", "c", "f", "d"]
    assert ids(m.iterate("base:current", current=("c",))) == ["c", "b", "a"]
    assert ids(m.iterate("base:current", current=())) == []
    assert ids(m.iterate("current:", current=())) == ids(m.iterate())
    with pytest.raises(UnreachableTarget):
        m.iterate("d:e")
    for bad in ("b", "a:b:c"):
        with pytest.raises(BadTarget):
            m.iterate(bad)
    with pytest.raises(UnreachableTarget):
        m.iterate("b:+1")  # branch point


# -- validation errors ---------------------------------------------------------------

def test_cycle():
    """
    a <-- b <-- c <-- d
          |          /
          +-->-->---+      (b's down_revision is d)
    """
    m = rmap(Revision("a"), Revision("b", ("a", "d")), Revision("c", "b"), Revision("d", "c"))
    with pytest.raises(CycleError) as err:
        m.heads
    assert err.value.revisions == ("b", "c", "d", "b")
    assert "b -> c -> d -> b" in str(err.value)
    assert err.value.exit_code == 2


def test_cycle_through_depends_on_and_self_loop():
    """
    a ~~> b, b ~~> a    (depends_on only)
    s <-- s             (its own down_revision)
    """
    with pytest.raises(CycleError) as err:
        rmap(Revision("a", depends_on="b"), Revision("b", depends_on="a")).heads
    assert set(err.value.revisions) == {"a", "b"}
    with pytest.raises(CycleError) as err:
        rmap(Revision("s", "s")).heads
    assert err.value.revisions == ("s", "s")
    with pytest.raises(CycleError):  # no base at all
        rmap(Revision("a", "b"), Revision("b", "a")).bases


def test_duplicate_revision():
    """a, a (two files, one id)"""
    m = rmap(Revision("a", path="1_a.py"), Revision("a", path="2_a.py"))
    with pytest.raises(DuplicateRevision) as err:
        m.heads
    assert err.value.revision == "a" and err.value.paths == ("1_a.py", "2_a.py")
    assert "1_a.py" in str(err.value)


def test_unknown_down_revision_and_depends_on():
    """
    a <-- b <-- zz (missing)
    c ~~> yy (missing)
    """
    with pytest.raises(UnknownRevision) as err:
        rmap(Revision("a"), Revision("b", "zz")).heads
    assert (err.value.revision, err.value.referenced_by) == ("zz", "b")
    assert "down_revision" in str(err.value)
    with pytest.raises(UnknownRevision) as err:
        rmap(Revision("a"), Revision("c", depends_on="yy")).heads
    assert (err.value.revision, err.value.referenced_by) == ("yy", "c")
    assert "depends_on" in str(err.value)


def test_ambiguous_depends_on():
    """ab1, ab2, c ~~> 'ab' (two matches)"""
    with pytest.raises(AmbiguousRevision) as err:
        rmap(Revision("ab1"), Revision("ab2"), Revision("c", depends_on="ab")).heads
    assert err.value.candidates == ("ab1", "ab2")


def test_duplicate_branch_label():
    """a [x], b [x]; and a label equal to an id"""
    with pytest.raises(DuplicateBranchLabel) as err:
        rmap(Revision("a", branch_labels="x"), Revision("b", branch_labels="x")).heads
    assert err.value.label == "x" and err.value.revisions == ("a", "b")
    with pytest.raises(DuplicateBranchLabel) as err:
        rmap(Revision("a"), Revision("b", "a", branch_labels="a")).heads
    assert "revision id" in str(err.value)


def test_illegal_ids_and_labels():
    """one revision each, with an id or label the target syntax could not parse"""
    for rid in ("a-b", "a+b", "a@b", "a:b", "head", "heads", "base", "current"):
        with pytest.raises(RevisionFileError) as err:
            rmap(Revision(rid, path="x.py")).heads
        assert err.value.data["path"] == "x.py"
    for label in ("a@b", "a:b", "head"):
        with pytest.raises(RevisionFileError):
            rmap(Revision("a", branch_labels=label)).heads
    assert rmap(Revision("a", branch_labels="my-branch")).resolve("my-branch@head") == ("a",)


def test_every_graph_error_is_bad_input():
    """(no graph) all graph errors exit with code 2"""
    for cls in (CycleError, DuplicateRevision, UnknownRevision, AmbiguousRevision, MultipleHeads,
                UnreachableTarget, BadTarget, DuplicateBranchLabel):
        assert issubclass(cls, GraphError) and cls.exit_code == 2


# -- determinism and scale -----------------------------------------------------------

def test_output_does_not_depend_on_loader_order():
    """
    a <-- b <-- c <-- e <-- f
           \\          /
            <-- d <--
    plus  g ~~> c  (a second base)
    """
    revs = [Revision("a"), Revision("b", "a"), Revision("c", "b"), Revision("d", "b"),
            Revision("e", ("c", "d")), Revision("f", "e"), Revision("g", depends_on="c")]
    first = rmap(*revs)
    for seed in range(5):
        shuffled = revs[:]
        random.Random(seed).shuffle(shuffled)
        m = rmap(*shuffled)
        assert m.heads == first.heads and m.bases == first.bases
        assert m.topological() == first.topological()
        assert ids(m.upgrade_path((), "heads")) == ids(first.upgrade_path((), "heads"))
        assert ids(m.iterate()) == ids(first.iterate())


def test_a_10000_revision_chain():
    """r00000 <-- r00001 <-- ... <-- r09999, with a recursion limit too low
    for any recursive walk."""
    n = 10_000
    names = [f"r{i:05d}" for i in range(n)]
    m = RevisionMap(lambda: [Revision(x, names[i - 1] if i else None) for i, x in enumerate(names)])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        assert m.heads == (names[-1],) and m.bases == (names[0],)
        assert m.topological() == names
        assert ids(m.upgrade_path((), "heads")) == names
        assert ids(m.upgrade_path((names[5000],), "head")) == names[5001:]
        assert ids(m.downgrade_path((names[-1],), "base")) == names[::-1]
        assert ids(m.downgrade_path((names[-1],), "-10")) == names[:-11:-1]
        assert ids(m.iterate()) == names[::-1]
        assert m.resolve("head-9999") == (names[0],)
        assert m.resolve("+10000") == (names[-1],)
        assert len(m.ancestors(names[-1])) == n
        assert m.heads_of(set(names)) == (names[-1],)
        assert m.get("r09999").revision == "r09999"
        with pytest.raises(AmbiguousRevision) as err:
            m.get("r0999")
        assert len(err.value.candidates) == 10
    finally:
        sys.setrecursionlimit(limit)


def test_a_10000_revision_fan():
    """one base with 10,000 children: a branch point no walk may choose at"""
    n = 10_000
    m = RevisionMap(lambda: [Revision("root")] + [Revision(f"c{i:05d}", "root") for i in range(n)])
    assert len(m.heads) == n and m.branch_points == ("root",)
    assert len(m.upgrade_path((), "heads")) == n + 1
    with pytest.raises(UnreachableTarget):
        m.resolve("root+1")


def test_a_10000_revision_fan_with_labels():
    """root <-- c00000 [l0] ... root <-- c09999 [l9999]: labels on every branch"""
    n = 10_000
    m = RevisionMap(lambda: [Revision("root")] + [Revision(f"c{i:05d}", "root", branch_labels=f"l{i}")
                                                   for i in range(n)])
    assert m.resolve("l5@head") == ("c00005",)
    assert ids(m.downgrade_path(("c00005", "c00007"), "l5@root")) == ["c00005"]
    assert ids(m.iterate("l5@base:heads")) == ["c00005", "root"]
    assert m.resolve("l7@+1", current=("root",)) == ("c00007",)


@pytest.mark.parametrize("shape", [chain, diamond, two_bases, cross_dep, branched])
def test_step_heads_matches_heads_of(shape):
    """The runner stamps each revision with step_heads (no walk of the whole
    graph): every upgrade and downgrade path gives what heads_of gives."""
    graph = shape()
    rng = random.Random(7)
    for _ in range(30):
        applied, heads = set(), ()
        order = graph.topological()
        for _ in range(3):  # up to a random revision's closure, then back down to another one
            target = rng.choice(order)
            for r in graph.upgrade_path(heads, target):
                heads = graph.step_heads(heads, applied, r.revision, up=True)
                assert heads == graph.heads_of(applied)
                assert applied == graph.applied_from_heads(heads)
            down_to = rng.choice(sorted(applied) + ["base"])
            try:
                path = graph.downgrade_path(heads, down_to)
            except UnreachableTarget:
                continue
            for r in path:
                heads = graph.step_heads(heads, applied, r.revision, up=False)
                assert heads == graph.heads_of(applied)
                assert applied == graph.applied_from_heads(heads)
