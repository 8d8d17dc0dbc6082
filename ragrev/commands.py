"""One plain function per command (as Alembic's ``command.py``).

Each function takes a :class:`~ragrev.config.Config` (or a path) and plain
arguments, and returns data or text; ``ragrev.cli`` is the thin click layer
that prints it and turns errors into exit codes. Nothing here imports a
driver: stores are opened through :mod:`ragrev.stores` only by the commands
that need them.
"""
from __future__ import annotations

import datetime as _dt
import re
import shutil
from pathlib import Path

from ragrev.config import Config
from ragrev.errors import BadInput, MultipleHeads
from ragrev.graph import Revision, RevisionMap
from ragrev.script import ScriptDirectory, new_rev_id
from ragrev.templating import find_template, render_revision


# --- init / revision / merge -------------------------------------------------------

def init(directory: str | Path, template: str = "generic") -> list[Path]:
    """Write a new project (``ragrev.toml``, ``revisions/``) from a template."""
    src = find_template(template, None)
    if not (src / "ragrev.toml").is_file():
        from ragrev.templating import project_templates

        raise BadInput(f"template {template!r} is a revision template only; project templates: "
                       f"{', '.join(project_templates())}")
    dest = Path(directory)
    if (dest / "ragrev.toml").exists():
        raise BadInput(f"{dest / 'ragrev.toml'} already exists")
    written = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.name in ("revision.py.tmpl", "__init__.py") or "__pycache__" in rel.parts:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    (dest / "revisions").mkdir(parents=True, exist_ok=True)
    return written


def revision(config: Config, message: str, template: str | None = None, head: str | None = None,
             branch_label: str | None = None, depends_on=(), rev_id: str | None = None,
             splice: bool = False) -> Path:
    """Write a new revision file on top of ``head`` (default: the single
    head; ``base`` starts a new base; any target, e.g. a branch point or
    ``LABEL@head``, names the parent). ``depends_on`` entries are checked and
    written as ids, except branch labels, which are kept (as Alembic)."""
    scripts = ScriptDirectory(config.script_location)
    graph = scripts.revision_map
    rev_id = rev_id or new_rev_id()
    if head is None:
        if len(graph.heads) > 1:
            raise MultipleHeads(graph.heads, "head")
        parents = graph.heads
    else:
        parents = graph.resolve(head)
    deps = tuple(d if d in graph.branch_labels else graph.get(d).revision for d in depends_on or ())
    _check_new(graph, rev_id, parents, branch_label, deps)
    return _write_revision(config, scripts, rev_id, message, parents, branch_label, deps, template)


#: what ``--rev-id`` may hold: it becomes a file name and a Python string
_REV_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")


def _check_new(graph: RevisionMap, rev_id: str, parents, branch_label, deps) -> None:
    """Refuse (before writing) a revision the graph would reject: an id taken,
    reserved or with ``@+-:``, a label taken, a cycle... and an id that is
    not a plain name (``../x``: it becomes the file name)."""
    if rev_id in graph.revisions:
        raise BadInput(f"revision id {rev_id!r} already exists")
    new = Revision(rev_id, tuple(parents), branch_label or (), deps, path="(new revision)")
    RevisionMap(lambda: [*graph.revisions.values(), new]).heads  # noqa: B018 - validates
    if not _REV_ID.fullmatch(rev_id) or ".." in rev_id:
        raise BadInput(f"revision id {rev_id!r}: use letters, digits, '_' and '.' only (it names the file)")


def merge(config: Config, message: str, revisions: list[str], rev_id: str | None = None) -> Path:
    """Write a merge revision whose ``down_revision`` is ``revisions`` (``heads`` allowed)."""
    scripts = ScriptDirectory(config.script_location)
    graph = scripts.revision_map
    parents: list[str] = []
    for r in revisions:
        for rid in graph.resolve(r):
            if rid not in parents:
                parents.append(rid)
    if len(parents) < 2:
        raise BadInput(f"merge needs at least two revisions; {' '.join(revisions)} names {len(parents)}")
    rev_id = rev_id or new_rev_id()
    _check_new(graph, rev_id, parents, None, ())
    return _write_revision(config, scripts, rev_id, message, tuple(parents), None, (), "merge")


def _write_revision(config, scripts, rev_id, message, parents, branch_label, deps, template) -> Path:
    path = scripts.new_file_path(rev_id, message, config.file_template)
    directory = config.script_location.resolve()
    if directory not in path.resolve().parents:
        raise BadInput(f"the new revision file {path} would be outside {config.script_location}; "
                       f"check --rev-id and file_template")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_revision(
        template or "generic", config.templates_dir,
        rev_id=rev_id, message=_docstring_safe(message), down_revision=_literal(parents), revises=", ".join(parents),
        branch_labels=repr(branch_label) if branch_label else "None", depends_on=_literal(deps),
        create_date=_dt.datetime.now(_dt.timezone.utc).isoformat(sep=" ", timespec="seconds"),
        stores=list(config.stores), store_kinds={n: s.kind for n, s in config.stores.items()},
    )
    path.write_text(text, encoding="utf-8")
    _after_write(config)
    return path


def _after_write(config: Config) -> None:
    """Rewrite ``revisions/ragrev.sum`` when the project keeps one (ragrev.review)."""
    try:
        from ragrev import integrity
    except ImportError:  # pragma: no cover - the integrity file is optional
        return
    integrity.write_sum(config.script_location)


def _docstring_safe(message: str) -> str:
    """``message`` as text inside a ``\"\"\"`` docstring: backslashes and
    double quotes escaped, so that no message ends the docstring and becomes
    code (Python reads the escapes back as the message)."""
    return message.replace("\\", "\\\\").replace('"', '\\"')


def _literal(ids) -> str:
    ids = tuple(ids)
    if not ids:
        return "None"
    if len(ids) == 1:
        return repr(ids[0])
    return "(" + ", ".join(repr(i) for i in ids) + ")"


# --- graph commands --------------------------------------------------------------------

def _graph(config: Config) -> RevisionMap:
    return ScriptDirectory(config.script_location).revision_map


class _Shape:
    """What the graph commands print about each revision, computed once per
    graph: the branch labels that cover it, and who depends on it.

    As Alembic shows them, a label covers the labelled revision, its
    descendants (``down_revision``), and its ancestors down to (not including)
    the nearest revision that has several children or dependents, or is a
    merge point.
    """

    def __init__(self, graph: RevisionMap):
        self.graph = graph
        self.heads = set(graph.heads)
        self.dependents: dict[str, int] = {}
        for rid in graph.revisions:
            for d in graph.dependencies(rid):
                self.dependents[d] = self.dependents.get(d, 0) + 1
        labels: dict[str, list[str]] = {}
        revs = graph.revisions
        for label, rid in sorted(graph.branch_labels.items()):
            covered = graph.descendants([rid], include_depends=False)
            node = rid
            while len(graph.children(node)) + self.dependents.get(node, 0) <= 1 and not revs[node].is_merge:
                covered.add(node)
                if not revs[node].down_revision:
                    break
                node = revs[node].down_revision[0]
            for r in covered:
                labels.setdefault(r, []).append(label)
        self.labels = {r: tuple(ls) for r, ls in labels.items()}

    def head_flag(self, rid: str, effective: bool = True) -> str:
        if rid not in self.heads:
            return ""
        return " (effective head)" if effective and self.dependents.get(rid) else " (head)"

    def tree_flags(self, rid: str) -> str:
        return ((" (branchpoint)" if len(self.graph.children(rid)) > 1 else "")
                + (" (mergepoint)" if len(self.graph.revisions[rid].down_revision) > 1 else ""))


_SHAPES: dict[int, _Shape] = {}


def _shape(graph: RevisionMap) -> _Shape:
    shape = _SHAPES.get(id(graph))
    if shape is None or shape.graph is not graph:
        _SHAPES.clear()  # one graph at a time: a CLI process loads one
        shape = _SHAPES[id(graph)] = _Shape(graph)
    return shape


def fmt_rev(graph: RevisionMap, rev: Revision, *, parents=False, doc=False, branches=True, tree=True,
            heads=True, current: str = "") -> str:
    """A revision on one line, as ``alembic history`` prints it:
    ``DOWN (DEPENDS_ON) -> REV (LABELS) (head) (CURRENT) (branchpoint)
    (mergepoint), MESSAGE``. A head that other revisions depend on is an
    ``(effective head)``, as in Alembic."""
    shape = _shape(graph)
    rid = rev.revision
    text = rid
    if parents:
        down = ", ".join(rev.down_revision) if rev.down_revision else "<base>"
        if rev.depends_on:
            text = f"{down} ({', '.join(rev.depends_on)}) -> {text}"
        else:
            text = f"{down} -> {text}"
    if branches and rid in shape.labels:
        text += f" ({', '.join(shape.labels[rid])})"
    if heads:
        text += shape.head_flag(rid)
    if current:
        text += f" ({current})"
    if tree:
        text += shape.tree_flags(rid)
    if doc:
        text += f", {rev.message}"
    return text


def fmt_verbose(graph: RevisionMap, rev: Revision, current: str = "") -> str:
    """A revision as a block, as ``alembic history -v`` and ``alembic show``
    print it (ending with an empty line)."""
    shape = _shape(graph)
    rid = rev.revision
    children = graph.children(rid)
    flags = shape.head_flag(rid, effective=False) + shape.tree_flags(rid)
    if current:
        flags += f" ({current})"
    lines = [f"Rev: {rid}{flags}"]
    down = ", ".join(rev.down_revision) if rev.down_revision else "<base>"
    lines.append(("Merges: " if len(rev.down_revision) > 1 else "Parent: ") + down)
    if rev.depends_on:
        lines.append("Also depends on: " + ", ".join(rev.depends_on))
    if len(children) > 1:
        lines.append("Branches into: " + ", ".join(children))
    if rid in shape.labels:
        lines.append("Branch names: " + ", ".join(shape.labels[rid]))
    lines.append(f"Path: {rev.path}")
    doc = rev.payload.doc.strip() if rev.payload is not None else rev.message
    lines.append("")
    lines += ["    " + ln for ln in doc.splitlines()] or [""]
    return "\n".join(lines) + "\n"


def rev_json(graph: RevisionMap, rev: Revision) -> dict:
    return {
        "revision": rev.revision, "down_revision": list(rev.down_revision), "branch_labels": list(rev.branch_labels),
        "depends_on": list(rev.depends_on), "message": rev.message, "path": rev.path,
        "is_head": rev.revision in graph.heads, "is_branch_point": len(graph.children(rev.revision)) > 1,
        "is_merge_point": len(rev.down_revision) > 1, "children": list(graph.children(rev.revision)),
    }


def heads(config: Config) -> tuple[RevisionMap, list[Revision]]:
    graph = _graph(config)
    return graph, [graph.revisions[h] for h in graph.heads]


def branches(config: Config) -> tuple[RevisionMap, list[Revision]]:
    graph = _graph(config)
    order = graph.iterate()
    return graph, [r for r in order if len(graph.children(r.revision)) > 1]


def history(config: Config, rev_range: str | None = None, current: dict | None = None):
    graph = _graph(config)
    cur = [h for hs in (current or {}).values() for h in hs]
    return graph, graph.iterate(rev_range, current=cur)


def show(config: Config, rev: str):
    """The revisions ``rev`` names: an id, prefix or label, ``head``/``heads``,
    ``LABEL@head``, ``REV+N``...; ``base`` shows the bases."""
    graph = _graph(config)
    if rev == "base":
        return graph, [graph.revisions[b] for b in graph.bases]
    return graph, [graph.revisions[r] for r in graph.resolve(rev)]


# --- store commands -------------------------------------------------------------------------

def current(config: Config, store_names=None) -> list[dict]:
    """One row per store: its heads, whether it is at the graph's heads, and
    any half-applied revision, with the command that fixes it.

    Each store's version table and journal are read from the store itself.
    With stores of several kinds, each kind but one is read by a forked
    child process (see :func:`ragrev.forking.forked`) while this process reads the rest:
    importing and starting the drivers is CPU work that threads would run one
    at a time. Embedded stores are read in process, without their clients
    (:mod:`ragrev.drivers.milvus.lite_read`, :mod:`ragrev.drivers.mongo.secantus_read`,
    :mod:`ragrev.drivers.sql.sqlite_read`)."""
    import importlib
    import os

    from ragrev.forking import collect, forked
    from ragrev.runner import Runner
    from ragrev.stores import connects_in_main_thread

    with Runner(config, store_names=store_names) as runner:
        graph = runner.graph
        _ = graph.heads  # validates the graph (before any child starts)
        everything = graph.applied_from_heads(graph.heads)
        order = [r for r in graph.topological() if r in everything]

        def rows_of(names):
            for n in names:
                if n in readers and n not in runner.stores:
                    module, _, cls = readers[n].partition(":")
                    reader = getattr(importlib.import_module(module), cls).open(config.store(n))
                    if reader is not None:
                        runner.stores[n] = reader
            # headers only: a half-applied revision's file is imported when one is found
            runner.open(load=False, graph=False, names=names)
            return {n: _current_row(runner, n, order) for n in names}

        def in_child(names):
            try:
                return rows_of(names)
            finally:
                runner.close()

        # embedded stores are read in process, not through a client: Milvus Lite from its files or
        # milvus-lite's engine (LiteReader; unless two stores name one directory), SecantusDB through its
        # storage engine (SecantusReader), SQLite with sqlite3 (SqliteReader, without SQLAlchemy). A
        # reader that cannot open its store leaves it to the store.
        lite = [n for n in runner.store_names if config.store(n).url.lower().startswith("milvus-lite://")]
        paths = [os.path.abspath(config.store(n).path) for n in lite]
        readers = {n: "ragrev.drivers.milvus.lite_read:LiteReader" for n, p in zip(lite, paths) if paths.count(p) == 1}
        readers.update({n: "ragrev.drivers.mongo.secantus_read:SecantusReader" for n in runner.store_names
                        if config.store(n).url.lower().startswith("secantus://")})
        readers.update({n: "ragrev.drivers.sql.sqlite_read:SqliteReader" for n in runner.store_names
                        if config.store(n).url.lower().startswith("sqlite:///")})
        kinds: dict[str, list] = {}
        for n in runner.store_names:
            kinds.setdefault(config.store(n).kind, []).append(n)
        # a kind with an embedded SecantusDB store stays here (it is opened by the main thread, and a
        # directory is served by one process); with none, the last kind does
        here = {k for k, names in kinds.items() if any(connects_in_main_thread(config.store(n)) for n in names)}
        aside = [names for k, names in kinds.items() if k not in here][:len(kinds) - 1]
        children = forked(aside, in_child)
        try:
            rows = rows_of([n for n in runner.store_names if not any(n in names for names in children)])
        except BaseException:
            collect(children, stop=True)
            raise
        if children:  # done with this process's stores: drivers read through a client (an embedded SecantusDB's
            runner.close()  # server, pymongo's threads) wind down while the children finish
        rows.update(collect(children))
        rows = [rows[n] if n in rows else rows_of([n])[n] for n in runner.store_names]  # a child that died
    all_heads = {tuple(sorted(r["heads"])) for r in rows}
    if len(all_heads) > 1:
        for r in rows:
            if not r["at_head"] and r["pending"]:
                r["notes"].append("out of step with other stores: 'ragrev upgrade heads' brings it up")
    return rows


def _current_row(runner, name: str, order: list) -> dict:
    """``current``'s row of one store (opened here if not yet)."""
    from ragrev.journal import Journal

    graph = runner.graph
    if name not in runner.stores:
        runner.open(load=False, graph=False, names=[name])
    store = runner.stores[name]
    heads_ = store.read_heads()
    row = {"store": name, "kind": store.kind, "url": store.config.display_url, "heads": list(heads_),
           "at_head": set(heads_) == set(graph.heads), "pending": [], "notes": []}
    known = [h for h in heads_ if h in graph.revisions]
    if len(known) != len(heads_):
        row["notes"].append("at a revision missing from the revision directory")
    else:
        applied = graph.applied_from_heads(heads_)
        row["pending"] = [r for r in order if r not in applied]
    applied_revs = graph.applied_from_heads(known) if len(known) == len(heads_) else None
    for rev, st in Journal(store).open_runs(applied_revs).items():
        done = len(st.done_steps())
        if rev not in graph.revisions:
            row["notes"].append(f"revision {rev} has a {st.outcome} run but its file no longer exists: "
                                f"'ragrev repair' forgets it")
            row.setdefault("half_applied", []).append(
                {"revision": rev, "direction": st.direction, "steps_done": done, "error": st.run.get("error"),
                 "missing_file": True})
            continue
        total = len(runner.plan_of(rev).up_for(name)) if rev in graph.revisions else "?"
        if st.direction == "up":
            row["notes"].append(
                f"revision {rev} half-applied ({done}/{total} steps): 'ragrev upgrade' finishes it, "
                f"'ragrev downgrade {_parent_target(graph, rev)}' reverts it"
            )
        else:
            row["notes"].append(f"revision {rev} half-reverted ({done} steps): run 'ragrev downgrade' again")
        row.setdefault("half_applied", []).append(
            {"revision": rev, "direction": st.direction, "steps_done": done, "error": st.run.get("error")})
    return row


def _parent_target(graph: RevisionMap, rev: str) -> str:
    parents = graph.revisions[rev].down_revision
    return parents[0] if len(parents) == 1 else "base" if not parents else " ".join(parents)


def migrate(config: Config, direction: str, target: str, plan_only=False, store_names=None, allow_edited=False,
            reporter=None):
    """``upgrade``/``downgrade``: returns the actions (planned or done)."""
    from ragrev.runner import Runner

    with Runner(config, store_names=store_names, allow_edited=allow_edited, reporter=reporter) as runner:
        actions = runner.run(direction, target, plan_only=plan_only)
        if plan_only:
            return [_action_json(runner, a) for a in actions]
        return [_action_json(runner, a, estimate=False) for a in actions]


def _action_json(runner, action, estimate=True) -> dict:
    store = runner.stores[action.store]
    steps = []
    for i, op in enumerate(action.ops):
        steps.append({
            "index": i + 1, "op": op.name if op.kind != "sql" else getattr(op, "op_name", op.name),
            "description": op.describe(), "done": i in action.skip,
            "rows": store.estimate_rows(op) if estimate and i not in action.skip else None,
        })
        if estimate and i not in action.skip and op.kind == "vector" and op.name == "reembed":
            from ragrev.drivers.milvus.online import embed_cost

            steps[-1]["embedding"] = embed_cost(store, op, steps[-1]["rows"], runner.config.options)
    return {"store": action.store, "revision": action.revision, "direction": action.direction, "mode": action.mode,
            "message": runner.plan_of(action.revision).script.message, "steps": steps}


def stamp(config: Config, rev: str, store_names=None, purge: bool = False) -> list[dict]:
    """Set stores' versions to ``rev`` without running anything."""
    from ragrev.journal import Journal
    from ragrev.lock import Leases
    from ragrev.runner import Runner

    out = []
    with Runner(config, store_names=store_names) as runner:
        graph = runner.graph
        runner.open(load=False)  # a stamp runs nothing: headers are enough
        stores = [runner.stores[n] for n in runner.store_names]
        with Leases(stores, config.lock_timeout, config.lock_lease) as leases:
            for store in stores:
                if purge:
                    store.write_heads(())
                    store.log_clear()
                old = store.read_heads()
                heads_ = graph.resolve(rev, old)
                new = graph.heads_of(graph.applied_from_heads(heads_))
                store.write_heads(new)
                j = Journal(store, {})
                run = j.start_run(",".join(new) or "base", "stamp", None, leases.owner)
                j.finish_run(run, "done")
                out.append({"store": store.name, "from": list(old), "to": list(new)})
    return out


def _connect(runner, name):
    """Open one of ``runner``'s stores (the runner keeps it, and closes it)."""
    store = runner._connect(name)
    runner.stores[name] = store
    return store


def purge(config: Config, older_than: float | None = None, store_names=None) -> dict:
    """Delete soft-dropped collections/tables (trash) for good."""
    from ragrev.lock import Leases
    from ragrev.runner import Runner

    out = {}
    with Runner(config, store_names=store_names) as runner:
        runner.open(load=False, graph=False)
        stores = [runner.stores[n] for n in runner.store_names]
        with Leases(stores, config.lock_timeout, config.lock_lease):
            for store in stores:
                out[store.name] = store.purge(older_than)
    return out


def applied_by_store(config: Config) -> dict[str, tuple]:
    """Heads of every store (for ``history -i``)."""
    from ragrev.runner import Runner

    out = {}
    with Runner(config) as runner:
        runner.open(load=False)
        for name in runner.store_names:
            out[name] = runner.stores[name].read_heads()
    return out



def repair(config: Config, store_names=None) -> list[dict]:
    """``ragrev repair`` (as Flyway's): make the stores' journals agree with
    the revision files again, under every store's lease, changing no user
    data. Per store:

    - an applied revision whose file was edited since (its operations'
      checksum differs from the one recorded when it was applied) is
      accepted as it is now: the applied run's checksum becomes the file's,
      and a ``repair`` record in the log keeps the old one;
    - a failed (or interrupted) run of a revision whose file no longer
      exists is forgotten (its outcome becomes ``forgotten``);
    - a failed run of an existing revision whose file changed since, and
      that completed no step, is forgotten too: the next ``upgrade`` runs
      the revision afresh. One that completed steps is refused (its journal
      belongs to the operations as they were): restore the file and revert
      it first.

    Returns one row per change: ``{"store", "revision", "action", "detail"}``.
    """
    from ragrev.errors import BadInput
    from ragrev.journal import Journal, next_seq, now_iso, who
    from ragrev.lock import Leases
    from ragrev.runner import Runner
    import uuid

    changes: list[dict] = []
    with Runner(config, store_names=store_names) as runner:
        graph = runner.graph
        runner.open()
        stores = [runner.stores[n] for n in runner.store_names]
        with Leases(stores, config.lock_timeout, config.lock_lease) as leases:
            todo = []  # every store is checked before any is changed
            for store in stores:
                journal = Journal(store)
                known = [h for h in store.read_heads() if h in graph.revisions]
                applied = graph.applied_from_heads(known)
                open_runs = journal.open_runs(applied)
                for rev in graph.topological():
                    last = journal.last_applied_run(rev) if rev in applied else None
                    old, new = (last.run.get("checksum") if last else None), None
                    if old is not None and not runner.plan_of(rev).matches(old) and (new := runner.plan_of(rev).checksum):
                        todo.append((store, journal, rev, "accepted", [], old, new,
                                     f"accepted the edited revision {rev}: plan checksum {old} -> {new}"))
                for rev, st in open_runs.items():
                    done = len(st.done_steps())
                    if rev not in graph.revisions:
                        detail = f"forgot the {st.outcome} {st.direction} run of {rev}, whose file no longer exists"
                        if done:
                            detail += f" ({done} step(s) it completed stay as they are)"
                    elif not runner.plan_of(rev).matches(st.run.get("checksum")):
                        if done or any(s.get("resume_token") or s.get("captured") or s.get("rows_done")
                                       for s in st.steps.values()):
                            raise BadInput(
                                f"store {store.name!r}: revision {rev} is half-applied ({done} step(s) done) and its "
                                f"file changed since; restore the file and finish it ('ragrev upgrade') or revert it "
                                f"('ragrev downgrade'), then edit it; nothing was repaired")
                        detail = f"forgot the {st.outcome} {st.direction} run of the edited revision {rev} " \
                                 f"(no step completed): the next upgrade runs it afresh"
                    else:
                        continue
                    runs = [st.run] + ([st.reverting.run] if st.reverting else [])
                    todo.append((store, journal, rev, "forgot", runs, st.run.get("checksum"), None, detail))
            for store, journal, rev, action, runs, old, new, detail in todo:
                journal.close_unclosed()
                if action == "accepted":
                    store.log_update(journal.last_applied_run(rev).run["id"], {"checksum": new})
                for run in runs:
                    journal.finish_run(run, "forgotten")
                store.log_append({"id": uuid.uuid4().hex, "seq": next_seq(), "type": "repair", "revision": rev,
                                  "direction": action, "checksum": new, "outcome": "done", "started": now_iso(),
                                  "finished": now_iso(), "description": detail[:500], "owner": leases.owner,
                                  "error": old, **who()})
                changes.append({"store": store.name, "revision": rev, "action": action, "detail": detail,
                                "old_checksum": old, "new_checksum": new})
    return changes
