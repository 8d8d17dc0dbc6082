"""``ragrev check``, ``ragrev review`` and ``ragrev hash``: revisions in code review.

- :func:`check` — the graph (no cycles, no unknown or duplicate ids, one head
  unless branch labels make several intended), ``revisions/ragrev.sum``, lint
  of every revision (:mod:`ragrev.lint`) and, only when asked
  (``--stores``), applied revisions whose operations changed since (it
  connects to the stores, which for embedded Milvus/MongoDB means starting
  them, so it is not done by default).
- :func:`review` — against the merge base of ``HEAD`` and a git ref: the
  revisions the working tree adds, changes and deletes; whether merging the
  ref leaves several heads, and the ``ragrev merge`` that fixes it; lint of
  those revisions; their plan per store. :func:`to_markdown` renders it for a
  pull-request comment. GitPython is imported only here, inside ``review``.
- :func:`hash_revisions` — rewrite ``ragrev.sum``.

Each returns data; ``ragrev.cli`` prints it and exits 4
(:class:`~ragrev.errors.ProblemsFound`) when there are findings.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ragrev import integrity
from ragrev.errors import BadInput, GraphError, RagrevError
from ragrev.graph import RevisionMap
from ragrev.lint import Finding, LintResult, lint, load_plans, split_allowed, unintended_heads
from ragrev.script import read_header

DEFAULT_BASES = ("origin/HEAD", "origin/main", "main", "origin/master", "master")


def _rel(path, root: Path) -> str | None:
    if not path:
        return path
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def _ordered(findings, graph) -> list[Finding]:
    """Findings in graph order of their revision (then by line); the others first."""
    order = {r: i for i, r in enumerate(graph.topological())} if graph is not None else {}
    return sorted(findings, key=lambda f: (f.revision is not None, order.get(f.revision, len(order)), f.line or 0))


def _relativize(findings, root: Path):
    for f in findings:
        f.path = _rel(f.path, root)
    return findings


def read_graph(files) -> tuple[RevisionMap | None, list[Finding]]:
    """The graph of revision ``files`` and a finding for each file that does
    not read and each graph problem (duplicate ids, unknown parents, cycles)."""
    scripts, problems, seen = [], [], {}
    for path in files:
        try:
            s = read_header(Path(path))
        except RagrevError as e:
            problems.append(Finding("load-error", str(e), path=str(path)))
            continue
        if s.revision in seen:
            problems.append(Finding("graph", f"duplicate revision id {s.revision!r} ({seen[s.revision]}, {path})",
                                    s.revision, str(path)))
            continue
        seen[s.revision] = str(path)
        scripts.append(s)
    for s in scripts:
        for attr in ("down_revision",):
            for parent in getattr(s, attr):
                if parent not in seen:
                    problems.append(Finding("graph", f"revision {s.revision!r} names unknown {attr} {parent!r}",
                                            s.revision, str(s.path)))
    if problems:
        return None, problems
    graph = RevisionMap(lambda: [s.as_revision() for s in scripts])
    try:
        graph.topological()
    except GraphError as e:
        return None, [Finding("graph", str(e))]
    return graph, []


# --- check ----------------------------------------------------------------------------------

def check(config, with_stores: bool = False, store_names=None, isolate: bool = True) -> dict:
    """Everything ``ragrev check`` verifies, as data (see the module docstring).

    With ``isolate`` (the default) the revision files are loaded in a child
    process without the stores' secrets (:mod:`ragrev.isolation`); with
    ``--stores`` this process then compares the child's checksums with each
    store's journal."""
    if not isolate:
        return check_report(config, with_stores, store_names)[0]
    from types import SimpleNamespace

    from ragrev import isolation
    from ragrev.graph import Revision

    answer = isolation.run(config, "check")
    report = answer["report"]
    if (with_stores or store_names) and answer["graph"] is not None:
        heads = answer["graph"]
        graph = RevisionMap(lambda: [Revision(g["revision"], tuple(g["down_revision"]), tuple(g["branch_labels"]),
                                              tuple(g["depends_on"]), path=g["path"]) for g in heads])
        plans = {rid: SimpleNamespace(checksum=c, former_checksum=answer.get("former_checksums", {}).get(rid),
                                      script=SimpleNamespace(path=Path(answer["paths"][rid])))
                 for rid, c in answer["checksums"].items()}
        extra = applied_edits(config, graph, plans, store_names)
        _relativize(extra, config.directory)
        report["findings"] += [f.to_json() for f in extra]
        report["ok"] = not report["findings"]
        report["stores_checked"] = True
    return report


def check_report(config, with_stores: bool = False, store_names=None):
    """``(report, plans, graph)`` of :func:`check`, in this process."""
    from ragrev.script import ScriptDirectory

    root = config.directory
    graph, problems = read_graph(ScriptDirectory(config.script_location).files())
    result, plans = LintResult(findings=problems), []
    if graph is not None:
        try:
            sums = integrity.verify_sum(config.script_location)
        except RagrevError:  # the graph loaded above; only a racing edit gets here
            sums = None
        for p in sums.problems if sums else ():
            result.findings.append(Finding("sum-file", p, path=str(sums.path)))
        plans, load_problems = load_plans(graph, config.stores)
        linted = lint(plans, graph)
        result.findings += load_problems + linted.findings
        result.allowed += linted.allowed
        if with_stores or store_names:
            good = {p.revision: p for p in plans}
            result.findings += applied_edits(config, graph, good, store_names)
    _relativize(result.findings + result.allowed, root)
    result.findings, result.allowed = _ordered(result.findings, graph), _ordered(result.allowed, graph)
    findings = [f.to_json() for f in result.findings]
    if graph is not None:
        from ragrev.autogen import declared_findings

        # the declared state ([ragrev] models) against head: its file is user code too,
        # so it is imported here, in the isolated child, like the revisions
        findings += declared_findings(config)
    return {
        "ok": not findings,
        "revisions": len(graph.revisions) if graph is not None else None,
        "heads": list(graph.heads) if graph is not None else None,
        "stores_checked": bool(with_stores or store_names),
        "findings": findings,
        "allowed": [f.to_json() for f in result.allowed],
    }, plans, graph


def applied_edits(config, graph, plans: dict, store_names=None) -> list[Finding]:
    """``edited-applied`` findings: in each store, applied revisions whose
    journaled checksum differs from the plan of the file now, and versions
    naming revisions that are not in the revision directory."""
    from ragrev.journal import Journal
    from ragrev.plan import checksum_matches
    from ragrev.stores import open_store

    out = []
    for name in store_names or list(config.stores):
        store = open_store(config.store(name))
        store.connect()
        try:
            heads = store.read_heads()
            missing = [h for h in heads if h not in graph.revisions]
            for h in missing:
                out.append(Finding("edited-applied", f"store {name!r} is at revision {h!r}, which has no file",
                                   h, store=name, fix="restore the revision file"))
            if missing:
                continue
            journal, applied_revs = Journal(store), graph.applied_from_heads(heads)
            for rid in graph.topological():
                if rid not in applied_revs or rid not in plans:
                    continue
                applied = journal.applied_checksum(rid)
                if applied is not None and not checksum_matches(plans[rid], applied):
                    out.append(Finding("edited-applied", f"revision {rid} was edited after it was applied to store "
                                       f"{name!r}: its operations changed", rid, str(plans[rid].script.path),
                                       store=name))
        finally:
            store.close()
    return out


def hash_revisions(config) -> tuple[Path, int]:
    """Rewrite ``ragrev.sum``; returns its path and the number of revisions."""
    path, lines = integrity.rewrite(config.script_location)
    return path, len(lines)


# --- review -----------------------------------------------------------------------------------

def _git():
    try:
        import git
    except ImportError:  # pragma: no cover - the 'review' extra is not installed
        raise BadInput("ragrev review needs GitPython: pip install 'ragrev[review]'") from None
    return git


def _tree_files(commit, rel_dir: str) -> dict[str, bytes]:
    """Revision files (``*.py``, not ``_*``/``.*``) directly under ``rel_dir`` in ``commit``."""
    try:
        tree = commit.tree / rel_dir if rel_dir not in ("", ".") else commit.tree
    except KeyError:
        return {}
    return {b.name: b.data_stream.read() for b in tree.blobs
            if b.name.endswith(".py") and not b.name.startswith(("_", "."))}


def _headers(files: dict[str, bytes], folder: Path) -> dict[str, tuple[str, bytes, object]]:
    """``rev id -> (file name, bytes, Script)`` for files written into ``folder``
    (files whose header does not read are left out)."""
    folder.mkdir(parents=True)
    out = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        try:
            s = read_header(path)
        except RagrevError:
            continue
        out[s.revision] = (name, data, s)
    return out


def _norm(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def review(config, base: str | None = None, isolate: bool = True) -> dict:
    """Review the revisions of the working tree against the merge base of
    ``HEAD`` and ``base`` (default: the first of origin/HEAD, origin/main,
    main, origin/master, master that exists). See the module docstring.
    With ``isolate`` (the default) it runs in a child process without the
    stores' secrets (:mod:`ragrev.isolation`): it loads revision files."""
    if isolate:
        from ragrev import isolation

        return isolation.run(config, "review", base=base)["report"]
    from ragrev.script import ScriptDirectory

    ref, ref_commit, merge_base, work_tree, rel_dir = _locate(config, base)
    files = ScriptDirectory(config.script_location).files()
    with tempfile.TemporaryDirectory(prefix="ragrev-review-") as tmp:
        old = _headers(_tree_files(merge_base, rel_dir), Path(tmp) / "base")
        theirs = _headers(_tree_files(ref_commit, rel_dir), Path(tmp) / "ref")
        graph, problems = read_graph(files)
        ours = _working_revisions(files, graph)
        changes = _diff(ours, old, graph)
        touched = {rid for status, rid in changes if status != "deleted"}

        result, plans = LintResult(findings=problems), []
        if graph is not None:
            plans, load_problems = load_plans(graph, config.stores)
            linted = lint(plans, graph, only=touched)
            result.findings += [f for f in load_problems if f.revision in touched] + linted.findings
            result.allowed += linted.allowed
            try:
                for p in integrity.verify_sum(config.script_location).problems:
                    result.findings.append(Finding("sum-file", p, path=str(config.script_location / integrity.SUM_NAME)))
            except RagrevError:
                pass
        by_rev = {p.revision: p for p in plans}
        notes, edits = _edits(changes, old, ours, by_rev, ref, rel_dir, config.stores)
        result.findings += edits.findings
        result.allowed += edits.allowed
        merged = _after_merge(theirs, ours, changes)

    heads_fix = None
    if merged["loose"]:
        heads_fix = f"git merge {ref} && ragrev merge -m \"merge {ref}\" {' '.join(merged['loose'])}"
    _relativize(result.findings + result.allowed, work_tree)
    findings, allowed = _ordered(result.findings, graph), _ordered(result.allowed, graph)
    rows = []
    for status, rid in changes:
        name, _data, script = ours.get(rid) or old[rid]
        rows.append({"status": status, "revision": rid, "message": script.message, "path": f"{rel_dir}/{name}",
                     "note": notes.get(rid)})
    return {
        "base": ref, "merge_base": merge_base.hexsha[:10], "directory": rel_dir,
        "revisions": rows,
        "after_merge": {"heads": merged["heads"], "multiple_heads": bool(merged["loose"]), "fix": heads_fix,
                        "error": merged["error"]},
        "findings": [f.to_json() for f in findings],
        "allowed": [f.to_json() for f in allowed],
        "plan": [plan_json(by_rev[rid], config) for status, rid in changes if rid in by_rev],
        "ok": not findings and not merged["loose"] and not merged["error"],
    }


def _locate(config, base):
    """``(ref, ref commit, merge base, work tree, revision dir relative to it)``."""
    git = _git()
    root = config.directory
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(f"{root} is not in a git repository (ragrev review compares git revisions)") from None
    ref, ref_commit = _resolve_base(repo, base)
    try:
        head_commit = repo.head.commit
    except ValueError:
        raise BadInput("the repository has no commit yet") from None
    bases = repo.merge_base(head_commit, ref_commit)
    if not bases:
        raise BadInput(f"HEAD and {ref} have no common ancestor (in CI, fetch the whole history: "
                       "actions/checkout with fetch-depth: 0)")
    work_tree = Path(repo.working_tree_dir).resolve()
    try:
        rel_dir = config.script_location.resolve().relative_to(work_tree).as_posix()
    except ValueError:
        raise BadInput(f"{config.script_location} is outside the git work tree {work_tree}") from None
    return ref, ref_commit, bases[0], work_tree, rel_dir


def _working_revisions(files, graph) -> dict[str, tuple[str, bytes, object]]:
    """``rev id -> (file name, bytes, Script)`` of the files on disk."""
    if graph is not None:
        by_name = {Path(r.path).name: r.payload for r in graph.revisions.values()}
    else:  # a broken graph: still say which files changed
        by_name = {}
        for path in files:
            try:
                by_name[path.name] = read_header(path)
            except RagrevError:
                pass
    return {s.revision: (name, (s.path).read_bytes(), s) for name, s in sorted(by_name.items())}


def _diff(ours, old, graph) -> list[tuple[str, str]]:
    """``(status, rev id)`` for revisions added, changed and deleted, in graph order."""
    changes = []
    for rid, (name, data, _s) in ours.items():
        if rid not in old:
            changes.append(("added", rid))
        elif _norm(old[rid][1]) != _norm(data) or old[rid][0] != name:
            changes.append(("changed", rid))
    changes += [("deleted", rid) for rid in old if rid not in ours]
    order = {r: i for i, r in enumerate(graph.topological())} if graph is not None else {}
    return sorted(changes, key=lambda c: (order.get(c[1], len(order)), c[1]))


def _edits(changes, old, ours, by_rev, ref, rel_dir, stores) -> tuple[dict, LintResult]:
    """``edited-after-base`` findings, and notes for changes that are text only."""
    from ragrev.plan import RevisionPlan

    notes, found = {}, []
    for status, rid in changes:
        if status == "deleted":
            found.append(Finding("edited-after-base", f"revision {rid} ({old[rid][0]}) is on {ref} and was deleted",
                                 rid, f"{rel_dir}/{old[rid][0]}"))
        elif status == "changed":
            renamed = f"renamed from {old[rid][0]}" if old[rid][0] != ours[rid][0] else ""
            before = _checksum(RevisionPlan, old[rid][2], stores)
            if before is not None and rid in by_rev and before == by_rev[rid].checksum:
                notes[rid] = ", ".join(x for x in ("text only: operations unchanged", renamed) if x)
                continue
            notes[rid] = renamed or None
            found.append(Finding("edited-after-base", f"revision {rid} is on {ref} and its operations were edited",
                                 rid, str(ours[rid][2].path)))
    return notes, split_allowed(found, {rid: _allows(v[1]) for rid, v in ours.items()})


def _resolve_base(repo, base):
    candidates = (base,) if base else DEFAULT_BASES
    for ref in candidates:
        try:
            return ref, repo.commit(ref)
        except Exception:  # gitdb BadName, ValueError: not a ref here
            continue
    if base:
        raise BadInput(f"unknown git ref {base!r}")
    raise BadInput(f"no base branch found (tried {', '.join(DEFAULT_BASES)}); pass --base REF")


def _allows(data: bytes) -> set[str]:
    from ragrev.lint import allowed_rules

    return allowed_rules(data.decode("utf-8", errors="replace"))


def _checksum(plan_cls, script, stores) -> str | None:
    try:
        return plan_cls(script, stores).checksum
    except RagrevError:
        return None


def _after_merge(theirs, ours, changes) -> dict:
    """The graph after merging: the ref's revisions with this branch's
    additions, changes and deletions applied; its heads."""
    revs = {rid: v[2] for rid, v in theirs.items()}
    for status, rid in changes:
        if status == "deleted":
            revs.pop(rid, None)
        else:
            revs[rid] = ours[rid][2]
    graph = RevisionMap(lambda: [s.as_revision() for s in revs.values()])
    try:
        return {"heads": list(graph.heads), "loose": unintended_heads(graph), "error": None}
    except GraphError as e:
        return {"heads": [], "loose": [], "error": str(e)}


def plan_json(plan, config) -> dict:
    """One revision's steps per store, up and down (explicit or derived)."""
    stores = []
    for name in plan.stores():
        kind = config.stores[name].kind if name in config.stores else "?"
        up = plan.up_for(name)
        down, note = plan.down_for(name), None
        steps_down = [o.describe() for o in down] if down is not None else None
        if down is None:
            missing = [o for o in up if not (o.is_check or getattr(o, "reversible", False))]
            note = ("cannot be derived: no inverse for " + ", ".join(o.describe() for o in missing)) if missing \
                else "derived from the inverse of each step, in reverse order"
        stores.append({"store": name, "kind": kind, "upgrade": [_step(o) for o in up], "downgrade": steps_down,
                       "downgrade_note": note})
    return {"revision": plan.revision, "message": plan.script.message, "stores": stores}


def _step(op) -> dict:
    from ragrev.lint import _sql_text, destroys

    declared = destroys(op) if _sql_text(op) is not None else bool(getattr(op, "destructive", False))
    flags = [f for f, on in (("check", op.is_check), ("destructive", declared),
                             ("data", getattr(op, "data_step", False))) if on]
    return {"description": op.describe(), "flags": flags}


# --- Markdown ---------------------------------------------------------------------------------------

_ICON = {"error": ":x:", "warning": ":warning:"}


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def to_markdown(r: dict) -> str:
    """A review as Markdown for a pull-request comment."""
    n = {s: sum(1 for x in r["revisions"] if x["status"] == s) for s in ("added", "changed", "deleted")}
    errors = sum(1 for f in r["findings"] if f["severity"] == "error")
    warnings = len(r["findings"]) - errors
    am = r["after_merge"]
    parts = [f"{k} {w}{'s' if k != 1 else ''}" for k, w in ((errors, "error"), (warnings, "warning")) if k]
    if am["multiple_heads"]:
        parts.append(f"{len(am['heads'])} heads after merge")
    if am["error"]:
        parts.append("broken graph after merge")
    verdict = ":x: " + ", ".join(parts) if parts else ":white_check_mark: no problems"
    out = [f"## ragrev review against `{r['base']}`", "",
           f"Merge base `{r['merge_base']}` · revisions in `{r['directory']}/`: "
           f"{n['added']} added, {n['changed']} changed, {n['deleted']} deleted · {verdict}", ""]
    if r["revisions"]:
        out += ["| | Revision | Message | File |", "|---|---|---|---|"]
        for x in r["revisions"]:
            msg = x["message"] + (f" ({x['note']})" if x["note"] else "")
            out.append(f"| {x['status']} | `{x['revision']}` | {_cell(msg)} | `{x['path']}` |")
        out.append("")
    out.append(f"### Heads after merging `{r['base']}`")
    out.append("")
    if am["error"]:
        out.append(f":x: the merged revision graph does not load: {am['error']}")
    elif am["multiple_heads"]:
        sum_file = f"{r['directory']}/{integrity.SUM_NAME}"
        out += [f":x: merging `{r['base']}` leaves {len(am['heads'])} heads: "
                + ", ".join(f"`{h}`" for h in am["heads"]) + ". Fix it in this branch:", "",
                "```sh", f"git merge {r['base']}    # stops on a conflict in {sum_file}",
                am["fix"].split(" && ", 1)[1] + f"    # writes a merge revision, rewrites {sum_file}",
                f"git add {r['directory']} && git commit --no-edit", "```"]
    else:
        out.append(":white_check_mark: one head: " + ", ".join(f"`{h}`" for h in am["heads"]) if len(am["heads"]) == 1
                   else ":white_check_mark: heads " + ", ".join(f"`{h}`" for h in am["heads"]) + " (branch labels)")
    out.append("")
    if r["findings"] or r["allowed"]:
        out += ["### Findings", "", "| | Rule | Where | Problem | Fix |", "|---|---|---|---|---|"]
        for f in r["findings"]:
            out.append(f"| {_ICON[f['severity']]} | `{f['rule']}` | `{_where(f)}` | {_cell(f['message'])} | {_cell(f['fix'])} |")
        for f in r["allowed"]:
            out.append(f"| allowed | `{f['rule']}` | `{_where(f)}` | {_cell(f['message'])} | |")
        out.append("")
    if r["plan"]:
        out += ["### Plan", ""]
        for p in r["plan"]:
            out += [f"#### `{p['revision']}` {p['message']}", ""]
            if not p["stores"]:
                out += ["No steps (stamp only).", ""]
            for s in p["stores"]:
                out.append(f"**{s['store']}** ({s['kind']})")
                out.append("")
                for i, step in enumerate(s["upgrade"], 1):
                    flags = "".join(f" *({f})*" for f in step["flags"])
                    out.append(f"{i}. `{step['description']}`{flags}")
                if s["downgrade"] is None:
                    out.append(f"- downgrade: {s['downgrade_note']}")
                elif not s["downgrade"]:
                    out.append("- downgrade: no steps")
                else:
                    out.append("- downgrade: " + "; ".join(f"`{d}`" for d in s["downgrade"]))
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def _where(f) -> str:
    return f"{f['path']}:{f['line']}" if f.get("line") else (f.get("path") or f.get("revision") or "")


def check_text(r: dict) -> str:
    """``ragrev check``'s plain-text report."""
    lines = []
    for f in r["findings"]:
        lines.append(f"{_where(f)}: {f['severity']} [{f['rule']}] {f['message']}")
        lines.append(f"    fix: {f['fix']}")
    for f in r["allowed"]:
        lines.append(f"{_where(f)}: allowed [{f['rule']}] {f['message']}")
    count = len(r["findings"])
    where = "" if r["revisions"] is None else f" in {r['revisions']} revision(s)"
    lines.append(f"{count} problem(s) found{where}." if count else f"No problems found{where}.")
    return "\n".join(lines)
