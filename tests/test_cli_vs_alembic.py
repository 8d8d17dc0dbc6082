"""The graph commands' output against Alembic's, on seeded random revision DAGs.

Each seed draws a DAG of 2 to 30 revisions (12-hex ids): new bases, children
of heads and of older revisions (branches), merges of two or three heads,
``depends_on`` on a revision of another line (by id or by its branch label),
and branch labels. The same files are written twice, into a ragrev project
(``ragrev.toml`` + ``revisions/``) and into an Alembic script directory, and
the test checks that, line for line,

- ``ragrev heads`` prints what ``alembic heads`` prints, and likewise
  ``heads -v`` (file paths made relative);
- ``ragrev branches [-v]`` prints the blocks ``alembic branches [-v]`` prints;
- ``ragrev history`` and ``ragrev history -r base:REV`` for every REV print the
  lines ``alembic history -r base:REV`` prints (``(head)``, ``(effective
  head)``, ``(branchpoint)``, ``(mergepoint)``, labels, ``depends_on``);
- ``ragrev show REV`` prints ``alembic show REV``'s block.

Where the order of lines differs by design, the lines are compared as
multisets: Alembic lists heads in file-loading order and the children of a
branch point in set-iteration order (which changes with the hash seed), and
orders unrelated lines of history by internal set order; ragrev sorts heads
and children by id and walks history newest first, following one line to its
end before the next. For history the test also checks that ragrev's order is
topological (every revision before its ``down_revision`` and ``depends_on``),
and on a linear chain it must equal Alembic's exactly. A revision with
several branch labels lists them in set order in Alembic and sorted in
ragrev, and ``Branches into:`` (``show``, ``-v``) lists children in set
order in Alembic and by id in ragrev; both lists are sorted before comparing.

Branch labels go only on bases, merge points and first revisions after a
branch point: there Alembic's label propagation is well defined. (On the
first revision of a line that continues an unbranched one, Alembic also
labels the ancestors down to the previous branch point, but only if the last
descendant its depth-first walk reaches is on an unbranched path from the
labelled revision, which depends on set order; ragrev always labels them.)
"""
from __future__ import annotations

import io
import random
import re
import warnings
from collections import Counter

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from click.testing import CliRunner

from ragrev.cli import cli

SEEDS = range(40)


def make_graph(seed):
    """[(id, down_revision, depends_on, branch_labels, message)] for ``seed``."""
    rng = random.Random(seed)
    n = 2 + seed % 29
    ids = []
    while len(ids) < n:
        rid = "%012x" % rng.getrandbits(48)
        if rid not in ids:
            ids.append(rid)
    down, kids, deps = {}, {}, {}

    def below(r):
        seen, todo = {r}, [r]
        while todo:
            for d in down[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    for i, rid in enumerate(ids):
        heads = [r for r in ids[:i] if not kids[r]]
        roll = rng.random()
        if i == 0 or roll < 0.1:
            d = ()
        elif roll < 0.25 and len(heads) >= 2:
            d = tuple(rng.sample(heads, min(len(heads), rng.choice((2, 2, 3)))))
        elif roll < 0.7:
            d = (rng.choice(heads),)
        else:
            d = (rng.choice(ids[:i]),)
        down[rid], kids[rid], deps[rid] = d, [], ()
        for p in d:
            kids[p].append(rid)
        if i and rng.random() < 0.25:
            anc = set().union(*(below(p) for p in d)) if d else set()
            others = [r for r in ids[:i] if r not in anc]
            if others:
                deps[rid] = (rng.choice(others),)
    dependents = Counter(x for r in ids for x in deps[r])

    def splits(r):  # Alembic's "real branch point"
        return len(kids[r]) + dependents[r] > 1

    labels = {}
    for i, rid in enumerate(ids):
        d = down[rid]
        well_defined = len(d) != 1 or splits(d[0])
        if well_defined and rng.random() < 0.4:
            labels[rid] = f"line{i}"
    spec = []
    for rid in ids:
        dep = tuple(labels.get(x, x) if rng.random() < 0.5 else x for x in deps[rid])
        spec.append((rid, down[rid], dep, (labels[rid],) if rid in labels else (), f"change number {rid[:4]}"))
    return spec


def literal(ids):
    if not ids:
        return "None"
    return repr(ids[0]) if len(ids) == 1 else repr(tuple(ids))


def write(spec, directory):
    directory.mkdir(parents=True)
    for rid, down, deps, labels, message in spec:
        (directory / f"{rid}_change.py").write_text(
            f'"""{message}\n\nRevision ID: {rid}\nRevises: {", ".join(down)}\n"""\n'
            f"revision = {rid!r}\ndown_revision = {literal(down)}\n"
            f"branch_labels = {literal(labels)}\ndepends_on = {literal(deps)}\n\n\n"
            "def upgrade(op=None):\n    pass\n\n\ndef downgrade(op=None):\n    pass\n")


_LABELS = re.compile(r"\(((?:line\d+, )+line\d+)\)")
_LISTS = re.compile(r"^(Branch names|Branches into): (.*)$", re.M)


def sort_lists(text: str) -> str:
    """Several branch labels (``lineN``) of one revision, and ``Branch
    names:`` / ``Branches into:`` lists, sorted."""
    text = _LABELS.sub(lambda m: "(" + ", ".join(sorted(m.group(1).split(", "))) + ")", text)
    return _LISTS.sub(lambda m: f"{m.group(1)}: " + ", ".join(sorted(m.group(2).split(", "))), text)


class Both:
    """One graph as a ragrev project and as an Alembic script directory."""

    def __init__(self, spec, root):
        self.root = root
        self.ours_dir = root / "ragrev"
        self.theirs_dir = root / "alembic"
        write(spec, self.ours_dir / "revisions")
        write(spec, self.theirs_dir / "versions")
        self.config = self.ours_dir / "ragrev.toml"
        self.config.write_text('[ragrev]\nscript_location = "revisions"\n\n'
                               '[stores.meta]\nurl = "sqlite:///./var/meta.db"\n')

    def ours(self, *args) -> str:
        result = CliRunner().invoke(cli, ["-c", str(self.config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return sort_lists(result.stdout.replace(str(self.ours_dir / "revisions"), "DIR"))

    def theirs(self, fn, *args, **kw) -> str:
        out = io.StringIO()
        cfg = AlembicConfig(stdout=out)
        cfg.set_main_option("script_location", str(self.theirs_dir))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(cfg, *args, **kw)
        return sort_lists(out.getvalue().replace(str(self.theirs_dir / "versions"), "DIR"))


def blocks(text):
    """``branches`` output as a multiset of (branch point line, set of child lines)."""
    found = Counter()
    for block in text.split("\n\n"):
        if block.strip():
            first, *children = block.split("\n")
            found[(first, frozenset(children))] += 1
    return found


def assert_topological(spec, text):
    """Each history line before the lines of its parents and dependencies."""
    pos = {}
    for i, line in enumerate(text.splitlines()):
        rid = line.split(" -> ")[1].split(" ")[0].rstrip(",")
        pos[rid] = i
    ids = {r for r, *_ in spec}
    labels = {lab: r for r, _, _, labs, _ in spec for lab in labs}
    for rid, down, deps, _, _ in spec:
        if rid in pos:
            for p in down + tuple(labels.get(d, d) for d in deps):
                assert p in ids
                if p in pos:
                    assert pos[p] > pos[rid], f"{rid} listed after its parent {p}:\n{text}"


@pytest.mark.parametrize("seed", [
    # graphs of 20 revisions and more take seconds each (both tools, every command): the full suite runs them
    pytest.param(s, marks=pytest.mark.slow) if len(make_graph(s)) >= 20 else s for s in SEEDS])
def test_graph_commands_print_what_alembic_prints(seed, tmp_path):
    spec = make_graph(seed)
    both = Both(spec, tmp_path)
    linear = all(len(d) <= 1 for _, d, *_ in spec) and len([1 for _, d, *_ in spec if not d]) == 1 and \
        len({d for _, d, *_ in spec if d}) == len(spec) - 1

    for args, kw in (((), {}), ((), {"verbose": True})):
        mine = both.ours("heads", *(["-v"] if kw else []))
        theirs = both.theirs(command.heads, *args, **kw)
        assert sorted(mine.split("\n")) == sorted(theirs.split("\n")), (mine, theirs)

    mine, theirs = both.ours("branches"), both.theirs(command.branches)
    assert blocks(mine) == blocks(theirs), (mine, theirs)
    assert mine.count("\n") == theirs.count("\n")
    mine, theirs = both.ours("branches", "-v"), both.theirs(command.branches, verbose=True)
    assert Counter(mine.split("\n")) == Counter(theirs.split("\n")), (mine, theirs)

    ranges = [None] + [f"base:{rid}" for rid, *_ in spec]
    for rng in ranges:
        mine = both.ours("history", *(["-r", rng] if rng else []))
        theirs = both.theirs(command.history, rng)
        assert Counter(mine.splitlines()) == Counter(theirs.splitlines()), (rng, mine, theirs)
        assert_topological(spec, mine)
        if linear:
            assert mine == theirs

    for rid, *_ in spec:
        assert both.ours("show", rid) == both.theirs(command.show, rid)


def test_generator_covers_the_shapes():
    """The seeds together draw every feature the comparison is about."""
    specs = [make_graph(s) for s in SEEDS]
    flat = [row for spec in specs for row in spec]
    assert any(len(d) == 2 for _, d, *_ in flat) and any(len(d) == 3 for _, d, *_ in flat)  # merges
    assert any(deps for _, _, deps, *_ in flat)  # depends_on
    assert any(dep.startswith("line") for _, _, deps, *_ in flat for dep in deps)  # by label
    assert any(labels for _, _, _, labels, _ in flat)
    kids = Counter(p for _, d, *_ in flat for p in d)
    assert any(c > 1 for c in kids.values())  # branch points
    assert any(len([1 for _, d, *_ in spec if not d]) > 1 for spec in specs)  # several bases
    labels = {lab: r for r, _, _, labs, _ in flat for lab in labs}
    depended = {labels.get(x, x) for _, _, deps, *_ in flat for x in deps}
    assert depended - set(kids)  # an "(effective head)": a head that another revision depends on
