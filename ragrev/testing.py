"""ragrev's built-in tests for a project's revisions; one line in a test
file turns them all on (the pytest plugin, :mod:`ragrev.pytest_plugin`,
provides their fixture)::

    from ragrev.testing import *  # noqa: F401,F403

or import only some by name. Each runs on fresh stores (embedded engines
unless ``[test]`` in ``ragrev.toml`` says otherwise).
"""
from __future__ import annotations

__all__ = [
    "test_ragrev_single_head", "test_ragrev_sum_up_to_date", "test_ragrev_lint_clean",
    "test_ragrev_upgrade_base_to_head", "test_ragrev_stairway", "test_ragrev_downgrade_leaves_no_trace",
]


def test_ragrev_single_head(ragrev_project):
    """One head, or several that branch labels set apart (as ``ragrev check``)."""
    from ragrev.lint import unintended_heads

    graph = ragrev_project.graph
    loose = unintended_heads(graph)
    assert not loose, f"the revision graph has {len(loose)} heads: {', '.join(loose)}; " \
                      f"run: ragrev merge -m \"merge heads\" heads"


def test_ragrev_sum_up_to_date(ragrev_project):
    """``revisions/ragrev.sum`` matches the revision files."""
    from ragrev.integrity import verify_sum

    problems = verify_sum(ragrev_project.source_config.script_location).problems
    assert not problems, "; ".join(problems) + " (run 'ragrev hash' if the change is intended)"


def test_ragrev_lint_clean(ragrev_project):
    """``ragrev check`` finds nothing but (at most) an out-of-date ``ragrev.sum``
    (its own test): no lint error or warning that the revision does not allow."""
    from ragrev.review import check, check_text

    config = ragrev_project.source_config
    report = check(config)  # as the command: with the declared state against head
    report["findings"] = [f for f in report["findings"] if f["rule"] != "sum-file"]
    assert not report["findings"], "\n" + check_text(report)


def test_ragrev_upgrade_base_to_head(ragrev_project):
    """``upgrade heads`` from empty stores works, and every store ends at the heads."""
    ragrev_project.upgrade("heads")
    heads = set(ragrev_project.graph.heads)
    assert {name: set(h) for name, h in ragrev_project.heads().items()} == \
        {name: heads for name in ragrev_project.config.stores}


def test_ragrev_stairway(ragrev_project):
    """Every revision, in graph order: up, down, up again. "Down" is a
    downgrade to its (first) parent, or to base for a base revision; on a
    branched graph that also reverts the other branches, which the next
    revisions' upgrades bring back."""
    graph = ragrev_project.graph
    for rev in graph.topological():
        parents = graph.revisions[rev].down_revision
        ragrev_project.upgrade(rev)
        ragrev_project.downgrade(parents[0] if parents else "base")
        ragrev_project.upgrade(rev)
        for store, heads in ragrev_project.heads().items():
            assert rev in graph.applied_from_heads(heads), f"store {store!r}: revision {rev} not applied after up, down, up"


def test_ragrev_downgrade_leaves_no_trace(ragrev_project):
    """After ``upgrade heads`` then ``downgrade base`` every store holds what it
    held before (ragrev's own tables and collections, trash included, aside)."""
    before = ragrev_project.fingerprint()
    ragrev_project.upgrade("heads").downgrade("base")
    after = ragrev_project.fingerprint()
    for store in before:
        gone = sorted(set(before[store]) - set(after[store]))
        left = sorted(set(after[store]) - set(before[store]))
        changed = sorted(k for k in set(before[store]) & set(after[store]) if before[store][k] != after[store][k])
        assert not (gone or left or changed), (
            f"store {store!r} after upgrade heads + downgrade base: left behind {left}, gone {gone}, changed {changed}")
