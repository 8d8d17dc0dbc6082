"""The revision graph: which revisions exist, how they hang together, and
which ones to apply or revert to reach a target.

Pure: no files, no stores, no click. A :class:`RevisionMap` is built from a
callable that returns :class:`Revision` objects (the loader reads the files),
so tests build graphs from literals::

    RevisionMap(lambda: [Revision("a"), Revision("b", ("a",))])

Semantics are Alembic's (``alembic.script.revision``), checked against it by
``tests/test_graph_vs_alembic.py``:

- ``down_revision`` makes ancestry. A revision with none is a *base*; one that
  no revision names as ``down_revision`` is a *head*; one named by several is a
  *branch point*; one naming several is a *merge point*.
- ``depends_on`` orders without ancestry: the dependency is applied first and
  reverted after, but it does not stop being a head of its own branch (in the
  graph). It may name a revision id, a unique prefix or a branch label.
- ``branch_labels`` name a branch: ``LABEL`` alone means the labelled revision,
  ``LABEL@head`` the head of the line through it.

Targets (:meth:`RevisionMap.resolve`), as in Alembic:

=====================  ======================================================
``head`` / ``heads``   the single head (else :class:`MultipleHeads`) / all
``base``               nothing applied (resolves to ``()``)
``ID`` / ``PREFIX``    a revision; a prefix must be unique
``LABEL``              the labelled revision
``X@head``, ``X@heads``, ``X@base``
                       the same, limited to the line through ``X`` (a label
                       or a revision): its ancestors and descendants
``X@ID``               ``ID``, which must be on the line through ``X``
``+N`` / ``-N``        N steps up / down from the single current head
``X@+N`` / ``X@-N``    the same from the current head on the line through X
``REV+N`` / ``REV-N``  N steps up / down from ``REV`` (also ``head-1``,
                       ``base+2``, ``X@REV+N``)
=====================  ======================================================

Walking up follows ``down_revision`` children (filtered to ``X``'s line when
``X@`` is given) and stops with :class:`UnreachableTarget` at a branch point
it cannot choose at, or past a head; walking down stops at a merge point or
past base.

Every query is iterative and O(n) or O(n log n) in the number of revisions,
so a 10,000-revision chain is no harder than a short one.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

from ragrev.errors import (
    AmbiguousRevision,
    BadTarget,
    CycleError,
    DuplicateBranchLabel,
    DuplicateRevision,
    MultipleHeads,
    RevisionFileError,
    UnknownRevision,
    UnreachableTarget,
)

#: Characters a revision id may not contain: they separate parts of targets
#: (``label@rev``, ``rev+1``, ``rev-1``) and ranges (``a:b``). As Alembic.
ILLEGAL_ID_CHARS = "@+-:"
#: Characters a branch label may not contain.
ILLEGAL_LABEL_CHARS = "@:"
#: Words that are targets of their own, so no revision id or label may be one.
RESERVED = frozenset({"head", "heads", "base", "current"})

_BAD_ID = re.compile(r"[@+\-:]")
_TARGET = re.compile(
    r"^(?:(?P<label>[^@:]+)@)?(?P<symbol>[^@:+\-]+)?(?P<steps>[+-]\d+)?$"
)


def normalize_ids(value) -> tuple[str, ...]:
    """``None`` -> ``()``, ``"a"`` -> ``("a",)``, a tuple/list -> a tuple of
    its strings, duplicates dropped, order kept. Anything else (a number, a
    tuple holding a non-string) raises :class:`TypeError`."""
    if value is None or value == "":
        return ()
    if value.__class__ is str:
        return (value,)
    if value.__class__ is tuple and len(value) == 1 and value[0].__class__ is str and value[0]:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(v for v in value if v))
    raise TypeError(f"expected a revision id or a tuple of ids, got {value!r}")


@dataclass(eq=False, slots=True)
class Revision:
    """One revision file, as the graph sees it.

    ``down_revision``, ``branch_labels`` and ``depends_on`` accept ``None``, a
    string or a tuple/list and are normalized to tuples. ``payload`` is
    whatever the loader attaches (the script module); the graph ignores it.
    """

    revision: str
    down_revision: tuple[str, ...] = ()
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    message: str = ""
    path: str | None = None
    payload: object = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.revision, str) or not self.revision:
            raise RevisionFileError(f"revision must be a non-empty string, got {self.revision!r}", self.path)
        name = ""
        try:  # the common values first: a loader builds thousands of these
            name = "down_revision"
            down = self.down_revision
            self.down_revision = (down,) if down.__class__ is str and down else normalize_ids(down)
            name = "branch_labels"
            if self.branch_labels:
                self.branch_labels = normalize_ids(self.branch_labels)
            else:
                self.branch_labels = ()
            name = "depends_on"
            if self.depends_on:
                self.depends_on = normalize_ids(self.depends_on)
            else:
                self.depends_on = ()
        except TypeError as exc:
            raise RevisionFileError(f"{name}: {exc}", self.path) from None

    @property
    def is_base(self) -> bool:
        """No ``down_revision`` (it may still have ``depends_on``)."""
        return not self.down_revision

    @property
    def is_merge(self) -> bool:
        """More than one ``down_revision``."""
        return len(self.down_revision) > 1


class _Target(NamedTuple):
    """A parsed target: ``ids`` to reach (``()`` is base) and ``anchor``, the
    revision whose line a ``X@...`` or ``-N`` target was limited to."""

    ids: tuple[str, ...]
    anchor: str | None


class RevisionMap:
    """The graph of every revision, loaded lazily from ``loader()`` on first
    use and validated then (raising a :class:`~ragrev.errors.GraphError`):
    duplicate ids (:class:`DuplicateRevision`), illegal or reserved ids and
    labels (:class:`RevisionFileError`), a label used twice or equal to an id
    (:class:`DuplicateBranchLabel`), an unknown ``down_revision`` or
    ``depends_on`` (:class:`UnknownRevision` with ``referenced_by`` and
    ``attribute``), an ambiguous ``depends_on`` prefix
    (:class:`AmbiguousRevision`), and cycles through ``down_revision`` and
    ``depends_on`` (:class:`CycleError`, whose ``revisions`` list one cycle in
    upgrade order, its first id repeated at the end).

    Tuples of ids (heads, bases, children, ...) are sorted by id, so output
    never depends on the order files were listed in.
    """

    def __init__(self, loader: Callable[[], Iterable[Revision]]):
        self._loader = loader
        self._loaded = False

    # -- loading and validation ---------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        revs: dict[str, Revision] = {}
        bad_id = _BAD_ID.search
        for rev in self._loader():
            rid = rev.revision
            if rid in revs:
                raise DuplicateRevision(rid, [p for p in (revs[rid].path, rev.path) if p])
            if bad_id(rid) or rid in RESERVED:
                why = "is a reserved word" if rid in RESERVED else f"contains one of {ILLEGAL_ID_CHARS!r}"
                raise RevisionFileError(f"revision id {rid!r} {why}", rev.path)
            revs[rid] = rev
        self._revs = revs
        self._sorted_ids = sorted(revs)

        labels: dict[str, str] = {}
        for rev in revs.values():
            for label in rev.branch_labels:
                if set(label) & set(ILLEGAL_LABEL_CHARS) or label in RESERVED:
                    raise RevisionFileError(f"branch label {label!r} of {rev.revision} is not allowed", rev.path)
                if label in labels or label in revs:
                    raise DuplicateBranchLabel(label, (labels.get(label, label), rev.revision))
                labels[label] = rev.revision
        self._labels = labels

        # adjacency: _parents_down/_children by down_revision; _up/_down with
        # depends_on (resolved, minus what down_revision already names) too
        children: dict[str, list[str]] = {}
        dependents: dict[str, list[str]] = {}
        parents_down, up, deps = {}, {}, {}
        for rid, rev in revs.items():
            downs = parents_down[rid] = rev.down_revision
            for down in downs:
                if down not in revs:
                    raise UnknownRevision(down, referenced_by=rid, attribute="down_revision")
                children.setdefault(down, []).append(rid)
            resolved = ()
            for dep in rev.depends_on:
                try:
                    target = self._lookup(dep)
                except UnknownRevision:
                    raise UnknownRevision(dep, referenced_by=rid, attribute="depends_on") from None
                if target not in downs and target not in resolved:
                    resolved += (target,)
                    dependents.setdefault(target, []).append(rid)
            deps[rid] = resolved
            up[rid] = downs + resolved if resolved else downs
        self._children = dict.fromkeys(revs, ())
        self._children.update((r, tuple(sorted(k))) for r, k in children.items())
        self._dependents = dict.fromkeys(revs, ())
        self._dependents.update((r, tuple(sorted(k))) for r, k in dependents.items())
        self._parents_down, self._deps, self._up = parents_down, deps, up
        self._down = self._children.copy()
        self._down.update((r, self._children[r] + k) for r, k in self._dependents.items() if k)

        self._topo = self._order(set(revs), newest_first=False)
        if len(self._topo) < len(revs):
            raise CycleError(self._find_cycle(set(revs) - set(self._topo)))

        self._heads = tuple(r for r in self._sorted_ids if not self._children[r])
        self._bases = tuple(r for r in self._sorted_ids if revs[r].is_base)
        self._branch_points = tuple(r for r in self._sorted_ids if len(self._children[r]) > 1)
        self._merge_points = tuple(r for r in self._sorted_ids if revs[r].is_merge)
        self._loaded = True

    def _find_cycle(self, stuck: set[str]) -> list[str]:
        """One cycle among ``stuck``, the revisions a topological sort could
        not place. Each has a parent in ``stuck``, so walking parents repeats."""
        node, seen, path = min(stuck), {}, []
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min(p for p in self._parents(node) if p in stuck)
        cycle = path[seen[node]:]
        cycle.reverse()  # walked child -> parent; report parent -> child
        first = cycle.index(min(cycle))
        cycle = cycle[first:] + cycle[:first]
        return cycle + [cycle[0]]

    def _parents(self, rid: str) -> tuple[str, ...]:
        return self._up[rid]

    def _kids(self, rid: str) -> tuple[str, ...]:
        return self._down[rid]

    # -- the shape ----------------------------------------------------------

    @property
    def revisions(self) -> dict[str, Revision]:
        """Every revision by id, in loader order."""
        self._load()
        return self._revs

    @property
    def heads(self) -> tuple[str, ...]:
        """Revisions no other revision names as ``down_revision``."""
        self._load()
        return self._heads

    @property
    def bases(self) -> tuple[str, ...]:
        """Revisions without ``down_revision``."""
        self._load()
        return self._bases

    @property
    def branch_points(self) -> tuple[str, ...]:
        """Revisions named as ``down_revision`` by more than one revision."""
        self._load()
        return self._branch_points

    @property
    def merge_points(self) -> tuple[str, ...]:
        """Revisions with more than one ``down_revision``."""
        self._load()
        return self._merge_points

    @property
    def branch_labels(self) -> dict[str, str]:
        """Each branch label -> the revision that declares it."""
        self._load()
        return dict(self._labels)

    def children(self, rev_id: str) -> tuple[str, ...]:
        """Revisions naming ``rev_id`` as ``down_revision``."""
        rid = self.get(rev_id).revision  # loads the map first
        return self._children[rid]

    def dependencies(self, rev_id: str) -> tuple[str, ...]:
        """``depends_on`` of ``rev_id`` resolved to ids (labels and prefixes
        replaced; entries already in ``down_revision`` dropped)."""
        rid = self.get(rev_id).revision  # loads the map first
        return self._deps[rid]

    def branch_labels_of(self, rev_id: str) -> tuple[str, ...]:
        """The labels that mark ``rev_id`` as Alembic shows them: a label
        covers its revision, the revision's descendants, and its ancestors
        down to (not including) the nearest branch or merge point."""
        rid = self.get(rev_id).revision
        found = set()
        for label, labelled in self._labels.items():
            if labelled == rid or rid in self.descendants([labelled], include_depends=False):
                found.add(label)
                continue
            node = labelled
            while len(self._kids(node)) <= 1 and not self._revs[node].is_merge:
                if node == rid:
                    found.add(label)
                    break
                if not self._revs[node].down_revision:
                    break
                node = self._revs[node].down_revision[0]
        return tuple(sorted(found))

    def get(self, ident: str) -> Revision:
        """The revision with id ``ident``, the one labelled ``ident``, or the
        only one whose id starts with ``ident`` (:class:`AmbiguousRevision` if
        several do, :class:`UnknownRevision` if none)."""
        self._load()
        return self._revs[self._lookup(ident)]

    def _lookup(self, ident: str, lineage: set[str] | None = None) -> str:
        if ident in self._revs:
            return ident
        if ident in self._labels:
            return self._labels[ident]
        ids = self._sorted_ids
        i = bisect.bisect_left(ids, ident)
        found = []
        while ident and i < len(ids) and ids[i].startswith(ident):
            if lineage is None or ids[i] in lineage:
                found.append(ids[i])
            i += 1
        if len(found) > 1:
            raise AmbiguousRevision(ident, found)
        if not found:
            raise UnknownRevision(ident)
        return found[0]

    def _ids(self, ids) -> list[str]:
        self._load()
        return [self._lookup(i) for i in normalize_ids(ids)]

    # -- traversal ------------------------------------------------------------

    def _walk_all(self, ids: Iterable[str], step: Callable[[str], Iterable[str]]) -> set[str]:
        seen = set(ids)
        todo = list(seen)
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def ancestors(self, ids, include_depends: bool = True) -> set[str]:
        """``ids`` and everything below them through ``down_revision`` (and
        ``depends_on`` unless ``include_depends=False``)."""
        ids = self._ids(ids)
        return self._walk_all(ids, (self._up if include_depends else self._parents_down).__getitem__)

    def descendants(self, ids, include_depends: bool = True) -> set[str]:
        """``ids`` and everything above them through ``down_revision`` (and
        ``depends_on`` unless ``include_depends=False``)."""
        ids = self._ids(ids)
        return self._walk_all(ids, (self._down if include_depends else self._children).__getitem__)

    def _lineage(self, ident: str) -> set[str]:
        """The line through ``ident`` (a label or a revision): its ancestors
        and descendants by ``down_revision``, itself included."""
        return self.ancestors(ident, False) | self.descendants(ident, False)

    def _order(self, ids: set[str], newest_first: bool) -> list[str]:
        """``ids`` sorted so that parents (``down_revision`` and
        ``depends_on``) come before children, or after them if
        ``newest_first``. A revision is taken as soon as it is free and the
        most recently freed goes first, so a line is followed to its end
        before the next starts; ties go to the smaller id."""
        before, after = (self._down, self._up) if newest_first else (self._up, self._down)
        if len(ids) == len(before):  # everything: no need to test membership
            waiting = {r: len(before[r]) for r in ids}
        else:
            waiting = {r: sum(1 for p in before[r] if p in ids) for r in ids}
        stack = sorted((r for r, n in waiting.items() if n == 0), reverse=True)
        out = []
        while stack:
            rid = stack.pop()
            out.append(rid)
            freed = []
            for nxt in after[rid]:
                if nxt in waiting:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        freed.append(nxt)
            if len(freed) == 1:
                stack.append(freed[0])
            elif freed:
                stack.extend(sorted(freed, reverse=True))
        return out

    def topological(self) -> list[str]:
        """Every revision id, parents (``down_revision`` and ``depends_on``)
        first; deterministic (see :meth:`_order`)."""
        self._load()
        return list(self._topo)

    # -- the version table ----------------------------------------------------

    def heads_of(self, applied) -> tuple[str, ...]:
        """What a version table holds when ``applied`` (closed under
        ancestry) is applied: the applied revisions with no applied child or
        dependent. As Alembic: after applying ``x`` that depends on ``y``,
        the table holds ``x`` alone, and ``y`` comes back when ``x`` is
        reverted (``applied_from_heads`` counts ``y`` as applied all along)."""
        applied = set(self._ids(tuple(applied)))
        return tuple(sorted(r for r in applied if not any(k in applied for k in self._kids(r))))

    def step_heads(self, heads, applied: set, rev: str, up: bool) -> tuple[str, ...]:
        """``heads_of(applied)`` after applying (``up``) or reverting ``rev``,
        from ``heads`` (``heads_of(applied)`` before), looking only at ``rev``
        and its neighbours; ``applied`` is updated in place. (The runner
        stamps every revision: a walk of the whole graph each time would make
        a long run quadratic.)"""
        self._load()
        heads = set(heads)
        below = self._up[rev]
        if up:
            applied.add(rev)
            heads.difference_update(below)
            heads.add(rev)
        else:
            applied.discard(rev)
            heads.discard(rev)
            heads.update(p for p in below if p in applied and not any(k in applied for k in self._down[p]))
        return tuple(sorted(heads))

    def applied_from_heads(self, heads) -> set[str]:
        """The applied revisions a version table ``heads`` stands for: the
        heads and all their ancestors, ``depends_on`` included."""
        return self.ancestors(tuple(heads), include_depends=True)

    # -- targets ------------------------------------------------------------

    def resolve(self, target: str, current: Iterable[str] = ()) -> tuple[str, ...]:
        """The revision ids ``target`` names (``()`` for base), given the
        ``current`` heads for relative targets. See the module docstring for
        the forms. Raises :class:`BadTarget` for text that does not parse,
        :class:`UnknownRevision`, :class:`AmbiguousRevision`,
        :class:`MultipleHeads` where one revision is needed and several
        qualify, :class:`UnreachableTarget` when a walk overruns or must
        choose."""
        return self._locate(target, current, "any").ids

    def _locate(self, text: str, current, mode: str) -> _Target:
        """Parse and resolve ``text``; ``mode`` is ``"upgrade"`` (no
        ``-N``), ``"downgrade"`` (no ``+N``) or ``"any"``."""
        self._load()
        if not isinstance(text, str):
            raise BadTarget(f"target must be a string, got {text!r}")
        m = _TARGET.match(text.strip())
        if not m or not (m["symbol"] or m["steps"]):
            raise BadTarget(f"cannot parse target {text!r}")
        label, symbol, steps = m["label"], m["symbol"], m["steps"]
        lineage = self._lineage(label) if label else None
        if steps is None:
            return _Target(self._absolute(symbol, lineage, text), label and self._lookup(label))

        n = int(steps)
        if symbol is not None:
            start = self._absolute(symbol, lineage, text)
            if len(start) > 1:
                raise MultipleHeads(start, text)
            end = self._walk(start[0] if start else None, n, lineage, text)
            return _Target((end,) if end else (), label and self._lookup(label))

        if n == 0 or (n > 0 and mode == "downgrade") or (n < 0 and mode == "upgrade"):
            word = "downgrade" if n < 0 else "upgrade"
            raise BadTarget(f"relative target {text!r} is not valid here; name a revision or use {word}")
        cur = self._ids(tuple(current))
        if label:
            starts = [c for c in cur if c in lineage]
            if not starts:
                # not at a head of the branch: the tips of what is applied on it
                applied = self.ancestors(cur) & lineage
                starts = sorted(a for a in applied if not any(k in applied for k in self._kids(a)))
        else:
            starts = sorted(set(cur))
        if len(starts) > 1:
            raise MultipleHeads(starts, text)
        if n < 0 and not starts:
            raise UnreachableTarget(text, "nothing is applied" + (f" on branch {label!r}" if label else ""))
        start = starts[0] if starts else None
        end = self._walk(start, n, lineage if n > 0 else None, text)
        anchor = self._lookup(label) if label else (start if n < 0 else None)
        return _Target((end,) if end else (), anchor)

    def _absolute(self, symbol: str, lineage: set[str] | None, text: str) -> tuple[str, ...]:
        if symbol in ("head", "heads"):
            heads = tuple(h for h in self.heads if lineage is None or h in lineage)
            if symbol == "head" and len(heads) > 1:
                raise MultipleHeads(heads, text)
            return heads
        if symbol == "base":
            return ()
        rid = self._lookup(symbol, lineage)
        if lineage is not None and rid not in lineage:
            raise UnreachableTarget(text, f"{rid} is not on the branch of {text.split('@')[0]!r}")
        return (rid,)

    def _walk(self, start: str | None, steps: int, lineage: set[str] | None, text: str) -> str | None:
        """Walk ``steps`` up (children) or down (``down_revision``) from
        ``start`` (``None`` is base); return the revision reached (``None``
        for base)."""
        node = start
        for _ in range(abs(steps)):
            if steps > 0:
                nxt = self._bases if node is None else self._children[node]
                if lineage is not None:
                    nxt = tuple(r for r in nxt if r in lineage)
                if not nxt:
                    raise UnreachableTarget(text, f"walks past head {node}" if node else "no revisions")
                if len(nxt) > 1:
                    where = f"branch point {node}" if node else "base"
                    raise UnreachableTarget(
                        text, f"{where} has several children ({', '.join(nxt)}); name one or a branch label")
                node = nxt[0]
            else:
                if node is None:
                    raise UnreachableTarget(text, "walks past base")
                downs = self._revs[node].down_revision
                if len(downs) > 1:
                    raise UnreachableTarget(
                        text, f"merge point {node} has several parents ({', '.join(downs)}); name one")
                node = downs[0] if downs else None
        return node

    # -- plans ----------------------------------------------------------------

    def upgrade_path(self, current: Iterable[str], target: str) -> list[Revision]:
        """The revisions to apply, parents and dependencies first, to move a
        store whose version table holds ``current`` to ``target``: the
        target's ancestors (``depends_on`` included) not yet applied. A target
        at or below the current state gives ``[]``, as Alembic."""
        current = tuple(current)
        wanted = self.ancestors(self._locate(target, current, "upgrade").ids)
        need = wanted - self.applied_from_heads(current)
        return [self._revs[r] for r in self._order(need, newest_first=False)]

    def downgrade_path(self, current: Iterable[str], target: str) -> list[Revision]:
        """The revisions to revert, children and dependents first, to move a
        store at ``current`` down to ``target``. As Alembic: reverts the
        applied descendants (``depends_on`` included) of the target's
        children, not the target itself nor unrelated branches. ``base``
        reverts everything; ``X@base`` the bases of ``X``'s line and what
        grew on them (everything, when the line shares its base); ``-N``
        walks down from the single current head. :class:`UnreachableTarget`
        if the target is not applied below ``current``."""
        current = tuple(current)
        goal, anchor = self._locate(target, current, "downgrade")
        if len(goal) > 1:
            raise MultipleHeads(goal, target)
        roots = self._children[goal[0]] if goal else self._bases
        if anchor and len(roots) > 1:
            line = self.ancestors(anchor, include_depends=False)
            roots = tuple(r for r in roots if r in line)
            if not roots:
                raise UnreachableTarget(target, "no applied revision of that branch above it")
        active = self.applied_from_heads(current)
        drop = self.descendants(roots) & active if roots else set()
        if goal and not drop and goal[0] not in current:
            raise UnreachableTarget(target, f"{goal[0]} is not below the current heads "
                                            f"({', '.join(sorted(current)) or 'base'}): nothing to revert")
        return [self._revs[r] for r in self._order(drop, newest_first=True)]

    def iterate(self, range_: str | None = None, *, current: Iterable[str] = ()) -> list[Revision]:
        """The revisions ``history -r LOWER:UPPER`` lists, newest first: the
        ancestors of ``UPPER`` (default ``heads``) down to and including
        ``LOWER`` (default ``base``), limited to descendants of ``LOWER``.
        Either side may be ``current`` (the ``current`` heads); ``UPPER`` may
        be ``+N`` from ``LOWER`` and ``LOWER`` ``-N`` from ``UPPER``;
        ``X@base:...`` keeps the heads of ``X``'s line. ``LOWER`` must be an
        ancestor of ``UPPER`` (:class:`UnreachableTarget`)."""
        self._load()
        if range_ is None:
            range_ = ":"
        if range_.count(":") != 1:
            raise BadTarget(f"a history range is LOWER:UPPER, LOWER: or :UPPER, not {range_!r}")
        lower, upper = (s.strip() for s in range_.split(":"))
        current = tuple(current)
        lower, upper = lower or "base", upper or "heads"

        def side(text, other, mode):
            if text == "current":
                return tuple(sorted(set(self._ids(current)))), None
            return self._locate(text, other, mode)

        m = _TARGET.match(upper)
        if m and m["steps"] and not m["symbol"]:  # '+N' counts from LOWER
            lows, _ = side(lower, (), "any")
            ups, _ = side(upper, lows, "upgrade")
        else:
            ups, _ = side(upper, (), "any")
            lows, _ = side(lower, ups, "downgrade")
        if "@" in lower and upper != "current":
            if upper == "heads":  # as Alembic: heads nothing depends on either
                ups = tuple(u for u in ups if not self._dependents[u])
            line = self._lineage(lower.split("@")[0])
            ups = tuple(u for u in ups if u in line)
        if upper == "current" and not ups:
            return []
        need = self.ancestors(ups)
        for low in lows:
            if low not in need:
                raise UnreachableTarget(range_, f"{low} is not an ancestor of {upper}")
        if lows:
            need -= self.ancestors(lows)
            need |= set(lows)
            need &= self.descendants(lows, include_depends=False)
        return [self._revs[r] for r in self._order(need, newest_first=True)]
