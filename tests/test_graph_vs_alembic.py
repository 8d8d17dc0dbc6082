"""ragrev.graph against Alembic's own ``RevisionMap``, on seeded random graphs.

Each seed draws a revision DAG of 3 to 24 revisions: new bases, children of
heads and of older revisions (branches), merges of two heads, ``depends_on``
on a revision of another line (by id or by its branch label), and branch
labels on the first revision of a line. The same revisions go to
``alembic.script.revision.RevisionMap`` and to ``ragrev.graph.RevisionMap``,
and for every seed the tests check that:

- heads, bases, branch points and merge points are the same sets;
- every prefix of every id resolves to the same revision, or fails in both;
- ``history -r base:REV`` for every REV (and ``base:heads``, ``LOW:REV`` for
  every LOW below REV, ``LABEL@base:heads``) gives the revisions Alembic's
  ``iterate_revisions(REV, LOW, inclusive=True)`` gives (``alembic history``),
  as a set; our order must list each revision before its parents. (The exact
  order of unrelated lines is not compared: Alembic's depends on file order
  and on set iteration order, so it is not well defined.)
- for every store state reachable by ``upgrade REV`` and every target
  (ids, ``heads``, ``head``, ``LABEL@head``, ``LABEL@REV``, ``+N``,
  ``LABEL@+N``, ``REV+N``, ``REV-N``), ``upgrade_path`` applies the set of
  revisions Alembic's ``upgrade`` plans (``iterate_revisions(target, current,
  implicit_base=True)``) or fails where Alembic fails; likewise
  ``downgrade_path`` for ids, ``base``, ``LABEL@base``, ``-N``, ``LABEL@-N``,
  ``REV-N`` against ``iterate_revisions(current, target,
  select_for_downgrade=True)``; our orders must be topological;
- the version table Alembic's ``HeadMaintainer`` leaves after running those
  steps equals ``heads_of`` of the applied set.

Known, intended differences (not generated here): ``-N`` from several current
heads (Alembic warns and picks one, ragrev raises MultipleHeads), and
``LABEL@REV`` / ``LABEL@head`` as downgrade targets (Alembic ignores the
label there).
"""
from __future__ import annotations

import random
import types
import warnings

import pytest
from alembic.runtime.migration import HeadMaintainer, RevisionStep
from alembic.script.revision import Revision as ARevision
from alembic.script.revision import RevisionMap as ARevisionMap

from ragrev.errors import GraphError
from ragrev.graph import Revision, RevisionMap

SEEDS = range(100)


class _AlembicRev(ARevision):
    """Alembic's RevisionStep wants ``revision.module.upgrade``."""

    module = types.SimpleNamespace(upgrade=None, downgrade=None)


class _Table(HeadMaintainer):
    """Alembic's HeadMaintainer with the SQL writes replaced by a set."""

    def __init__(self, heads):
        self.heads = set(heads)

    def _insert_version(self, version):
        assert version not in self.heads
        self.heads.add(version)

    def _delete_version(self, version):
        self.heads.remove(version)

    def _update_version(self, from_, to_):
        assert to_ not in self.heads
        self.heads.remove(from_)
        self.heads.add(to_)


# -- the random graphs -----------------------------------------------------------

def make_spec(seed):
    """[(id, down_revision, depends_on, branch_labels)] for ``seed``."""
    rng = random.Random(seed)
    n = 3 + seed % 22
    ids: list[str] = []
    while len(ids) < n:  # a small alphabet, so ids share prefixes
        rid = "".join(rng.choice("ab01") for _ in range(5))
        if rid not in ids:
            ids.append(rid)
    spec, down_of, kids, labels_of = [], {}, {}, {}

    def down_ancestors(rid):
        seen, todo = {rid}, [rid]
        while todo:
            for d in down_of[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    for i, rid in enumerate(ids):
        heads = [r for r in ids[:i] if not kids[r]]
        roll = rng.random()
        if i == 0 or roll < 0.1:
            down = ()
        elif roll < 0.25 and len(heads) >= 2:
            down = tuple(rng.sample(heads, 2))
        elif roll < 0.7:
            down = (rng.choice(heads),)
        else:
            down = (rng.choice(ids[:i]),)
        down_of[rid], kids[rid] = down, []
        for d in down:
            kids[d].append(rid)
        deps = ()
        if i and rng.random() < 0.25:
            below = set().union(*(down_ancestors(d) for d in down)) if down else set()
            others = [r for r in ids[:i] if r not in below]
            if others:
                dep = rng.choice(others)
                deps = (labels_of.get(dep, dep) if rng.random() < 0.5 else dep,)
        labels = ()
        starts_line = not down or any(len(kids[d]) > 1 for d in down)
        if starts_line and rng.random() < 0.5:
            labels = (f"L{i}",)
            labels_of[rid] = labels[0]
        spec.append((rid, down, deps, labels))
    return spec


def build(spec):
    ours = RevisionMap(lambda: [Revision(r, d, labels, deps) for r, d, deps, labels in spec])
    theirs = ARevisionMap(lambda: [
        _AlembicRev(r, d or None, dependencies=deps or None, branch_labels=labels or None)
        for r, d, deps, labels in spec
    ])
    ours.heads, theirs.heads  # load both
    return ours, theirs


_cache: dict[int, tuple] = {}


def graphs(seed):
    if seed not in _cache:
        _cache[seed] = (make_spec(seed), *build(make_spec(seed)))
    return _cache[seed]


# -- helpers ---------------------------------------------------------------------

CRASHED = "alembic crashed"  # an internal assert/KeyError: no answer to compare
crashes: dict[str, int] = {}


def alembic(fn, *args, **kw):
    """Alembic's answer as a list of ids, None if it refused (RevisionError),
    CRASHED if it broke on its own assertions."""
    from alembic.script.revision import RevisionError
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return [r.revision for r in fn(*args, **kw)]
        except RevisionError:
            return None
        except (AssertionError, KeyError) as exc:
            crashes[type(exc).__name__] = crashes.get(type(exc).__name__, 0) + 1
            return CRASHED


def ours_ids(fn, *args, **kw):
    try:
        return [r.revision for r in fn(*args, **kw)]
    except GraphError:
        return None


def assert_topological(graph, ids, parents_first):
    """Each revision after (or before) its parents, depends_on included."""
    pos = {r: i for i, r in enumerate(ids)}
    assert len(pos) == len(ids), "a revision listed twice"
    for r in ids:
        for p in graph.revisions[r].down_revision + graph.dependencies(r):
            if p in pos:
                assert (pos[p] < pos[r]) == parents_first, (r, p, ids)


def agree(graph, theirs, mine, what, parents_first):
    if theirs == CRASHED:
        if mine is not None:
            assert_topological(graph, mine, parents_first)
        return
    if theirs is None:
        assert mine is None, f"{what}: alembic fails, ragrev gives {mine}"
        return
    assert mine is not None, f"{what}: ragrev fails, alembic gives {theirs}"
    assert set(mine) == set(theirs), f"{what}: ragrev {mine} alembic {theirs}"
    assert_topological(graph, mine, parents_first)


def states(graph, seed):
    """Version tables after ``upgrade REV`` from base: base, all heads, and up
    to 8 more drawn at random."""
    found = {graph.heads_of(graph.ancestors(r)) for r in graph.revisions}
    found.discard(graph.heads_of(graph.revisions))
    drawn = random.Random(seed).sample(sorted(found), min(8, len(found)))
    return [(), graph.heads_of(graph.revisions)] + drawn


def run_alembic_steps(theirs, current, revs, is_upgrade):
    """The version table Alembic's HeadMaintainer leaves after ``revs``, or
    CRASHED (it fails on a depends_on that is already an indirect ancestor,
    e.g. seed 15: real Alembic raises KeyError there too)."""
    table = _Table(current)
    try:
        for rid in revs:
            table.update_to_step(RevisionStep(theirs, theirs.get_revision(rid), is_upgrade))
    except (AssertionError, KeyError) as exc:
        crashes["HeadMaintainer " + type(exc).__name__] = crashes.get("HeadMaintainer " + type(exc).__name__, 0) + 1
        return CRASHED
    return table.heads


# -- the tests ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_shape_and_prefixes(seed):
    spec, ours, theirs = graphs(seed)
    amap = {k: v for k, v in theirs._revision_map.items() if v is not None and k == v.revision}
    assert set(ours.heads) == set(theirs.heads)
    assert set(ours.bases) == set(theirs.bases)
    assert set(ours.branch_points) == {r for r, v in amap.items() if v.is_branch_point}
    assert set(ours.merge_points) == {r for r, v in amap.items() if v.is_merge_point}
    for r in ours.revisions:
        assert set(ours.children(r)) == set(amap[r].nextrev)
        for k in range(1, len(r) + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    expected = theirs.get_revision(r[:k]).revision
                except Exception:
                    expected = None
            try:
                got = ours.get(r[:k]).revision
            except GraphError:
                got = None
            assert got == expected, r[:k]


@pytest.mark.parametrize("seed", SEEDS)
def test_history_ranges(seed):
    spec, ours, theirs = graphs(seed)

    def history(lower, upper):
        return alembic(theirs.iterate_revisions, upper, lower, inclusive=True, assert_relative_length=False)

    tops = list(ours.revisions) + ["heads"]
    for top in tops:
        agree(ours, history("base", top), ours_ids(ours.iterate, f"base:{top}"), f"base:{top}", False)
    rng = random.Random(seed)
    for top in rng.sample(tops, min(6, len(tops))):
        for low in ours.ancestors(top) if top != "heads" else ours.revisions:
            agree(ours, history(low, top), ours_ids(ours.iterate, f"{low}:{top}"), f"{low}:{top}", False)
    for label in ours.branch_labels:
        rng_ = f"{label}@base:heads"
        agree(ours, history(f"{label}@base", "heads"), ours_ids(ours.iterate, rng_), rng_, False)
    assert ours_ids(ours.iterate) == ours_ids(ours.iterate, "base:heads")
    assert set(ours_ids(ours.iterate)) == set(ours.revisions)


def some(rng, items, k):
    items = list(items)
    return rng.sample(items, min(k, len(items)))


def upgrade_targets(ours, rng):
    """Every id, the symbolic and relative forms, and a sample of the
    REV+N / REV-N / LABEL@... forms."""
    ids, labels = list(ours.revisions), some(rng, ours.branch_labels, 3)
    return (ids + ["heads", "head", "base", "+1", "+2", "+3"]
            + [f"{r}+1" for r in some(rng, ids, 5)] + [f"{r}-1" for r in some(rng, ids, 5)]
            + [f"{r}+2" for r in some(rng, ids, 2)]
            + [f"{lb}@head" for lb in labels] + [f"{lb}@+1" for lb in labels] + [f"{lb}@+2" for lb in labels]
            + [f"{lb}@{r}" for lb in labels for r in some(rng, ids, 2)])


@pytest.mark.parametrize("seed", SEEDS)
def test_upgrade_paths(seed):
    spec, ours, theirs = graphs(seed)
    rng = random.Random(seed)
    for current in states(ours, seed):
        applied = ours.applied_from_heads(current)
        for target in upgrade_targets(ours, rng):
            theirs_ids = alembic(lambda: reversed(list(
                theirs.iterate_revisions(target, current, implicit_base=True))))
            mine = ours_ids(ours.upgrade_path, current, target)
            what = f"upgrade {current} -> {target}"
            agree(ours, theirs_ids, mine, what, True)
            if mine and theirs_ids != CRASHED:
                table = run_alembic_steps(theirs, current, theirs_ids, True)
                assert table == CRASHED or set(ours.heads_of(applied | set(mine))) == table, what


def downgrade_targets(ours, current, rng):
    """Every id, ``base``, ``-N`` (one current head only: see the module
    docstring), and a sample of REV-1 / LABEL@base / LABEL@-1."""
    ids, labels = list(ours.revisions), some(rng, ours.branch_labels, 3)
    rel = ["-1", "-2", "-3"] if len(current) == 1 else []
    return (ids + ["base"] + rel + [f"{r}-1" for r in some(rng, ids, 5)]
            + [f"{lb}@base" for lb in labels] + [f"{lb}@-1" for lb in labels])


@pytest.mark.parametrize("seed", SEEDS)
def test_downgrade_paths(seed):
    spec, ours, theirs = graphs(seed)
    rng = random.Random(seed)
    for current in states(ours, seed):
        applied = ours.applied_from_heads(current)
        for target in downgrade_targets(ours, current, rng):
            theirs_ids = alembic(theirs.iterate_revisions, current, target, select_for_downgrade=True)
            mine = ours_ids(ours.downgrade_path, current, target)
            what = f"downgrade {current} -> {target}"
            agree(ours, theirs_ids, mine, what, False)
            if mine and theirs_ids != CRASHED:
                table = run_alembic_steps(theirs, current, theirs_ids, False)
                if table != CRASHED:
                    # Alembic's table is path-dependent here: unmerging can
                    # put back a revision that is only a dependency of another
                    # remaining head. It stands for the same applied set, and
                    # ours is the minimal form (what an upgrade writes).
                    left = applied - set(mine)
                    assert ours.applied_from_heads(table) == left, what
                    assert set(ours.heads_of(left)) <= table, what


def test_generated_graphs_cover_the_features():
    """The seeds above do draw every shape the comparison is meant to cover."""
    found = {"two bases": 0, "branch": 0, "merge": 0, "depends_on": 0, "depends_on a label": 0, "label": 0}
    for seed in SEEDS:
        spec, ours, _ = graphs(seed)
        found["two bases"] += len(ours.bases) > 1
        found["branch"] += bool(ours.branch_points)
        found["merge"] += bool(ours.merge_points)
        found["depends_on"] += any(deps for _, _, deps, _ in spec)
        found["depends_on a label"] += any(d in ours.branch_labels for _, _, deps, _ in spec for d in deps)
        found["label"] += bool(ours.branch_labels)
    assert all(v >= 10 for v in found.values()), found
