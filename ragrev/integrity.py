"""The integrity file ``revisions/ragrev.sum``: a chained SHA-256 over the
revision files, in graph order.

Why: two branches that each add a revision on the same head merge cleanly in
git (they add different files) and leave the revision graph with two heads,
which nobody notices until ``ragrev upgrade head`` fails in a deploy. The sum
file turns that into a merge conflict: every branch that adds a revision
rewrites its ``total`` line and appends a line after the same last line, so
git cannot merge two such branches without asking. (Atlas's ``atlas.sum``
works the same way.) Resolve the conflict with ``ragrev merge -m MSG heads``,
which writes a merge revision and rewrites the file, then ``git add`` it.

Format (one revision a line, after a ``total`` line)::

    # ragrev.sum: SHA-256 of each revision file, chained in graph order.
    # ...
    total 4c1f...e9
    3b52d14b909d 3b52d14b909d_first_one.py 5a0c...71 9d3e...02
    58f8c3c06946 58f8c3c06946_second.py b7e1...4a 4c1f...e9

Each revision line holds the revision id, the file's path relative to the
revision directory, the SHA-256 of the file's bytes (``\\r\\n`` read as
``\\n``, so a Windows checkout hashes the same) and the chain:
``chain_i = sha256(chain_{i-1} | id | path | file_sha)``, starting from the
SHA-256 of the empty string. ``total`` repeats the last chain, so any change
anywhere changes the first line too.

``ragrev revision`` and ``ragrev merge`` rewrite the file; ``ragrev hash``
rewrites it by hand (after a deliberate edit); ``ragrev check`` verifies it.
The file is always written, even in a project that had none (as Atlas).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SUM_NAME = "ragrev.sum"

_HEADER = (
    "# ragrev.sum: SHA-256 of each revision file, chained in graph order.\n"
    "# Rewritten by 'ragrev revision', 'ragrev merge' and 'ragrev hash'; checked by 'ragrev check'.\n"
    "# A git conflict here means both branches added revisions: merge the branch, then run\n"
    "# 'ragrev merge -m \"merge\" heads' (it rewrites this file) and 'git add' it.\n"
)
_EMPTY = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class SumLine:
    """One revision's line of the sum file."""

    revision: str
    path: str
    file_sha: str
    chain: str

    def render(self) -> str:
        return f"{self.revision} {self.path} {self.file_sha} {self.chain}"


@dataclass
class SumCheck:
    """What :func:`verify_sum` found. ``ok`` when ``problems`` is empty."""

    path: Path
    problems: list[str] = field(default_factory=list)
    #: revision ids whose line differs (changed file, new, or missing)
    revisions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def file_sha(path: Path) -> str:
    """SHA-256 of a file's bytes, ``\\r\\n`` read as ``\\n``."""
    return hashlib.sha256(Path(path).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def _link(previous: str, revision: str, path: str, sha: str) -> str:
    return hashlib.sha256(f"{previous}\n{revision}\n{path}\n{sha}\n".encode()).hexdigest()


def compute(directory) -> list[SumLine]:
    """The sum lines of the revision files under ``directory``, in graph order.
    Raises the graph's errors (:class:`~ragrev.errors.GraphError`,
    :class:`~ragrev.errors.RevisionFileError`) when it does not load."""
    from ragrev.script import ScriptDirectory

    directory = Path(directory)
    scripts = ScriptDirectory(directory)
    graph = scripts.revision_map
    lines, chain = [], _EMPTY
    for rid in graph.topological():
        path = Path(graph.revisions[rid].path)
        rel = path.relative_to(directory).as_posix()
        sha = file_sha(path)
        chain = _link(chain, rid, rel, sha)
        lines.append(SumLine(rid, rel, sha, chain))
    return lines


def render(lines: list[SumLine]) -> str:
    """The text of a sum file holding ``lines``."""
    total = render_total(lines)
    body = "".join(x.render() + "\n" for x in lines)
    return f"{_HEADER}total {total}\n{body}"


def write_sum(directory) -> Path:
    """Rewrite ``directory/ragrev.sum`` from the revision files (always, even
    when the project had none). Returns its path."""
    return rewrite(directory)[0]


def rewrite(directory) -> tuple[Path, list[SumLine]]:
    """:func:`write_sum`, returning the path and the lines written."""
    directory = Path(directory)
    path = directory / SUM_NAME
    lines = compute(directory)
    text = render(lines)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path, lines


def parse(text: str) -> tuple[str | None, list[SumLine], list[str]]:
    """``(total, lines, errors)`` of a sum file's text."""
    total, lines, errors = None, [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("<<<<<<<", "=======", ">>>>>>>", "|||||||")):
            errors.append(f"line {n}: unresolved git merge conflict")
            continue
        parts = line.split()
        if parts[0] == "total" and len(parts) == 2 and total is None:
            total = parts[1]
        elif len(parts) == 4:
            lines.append(SumLine(*parts))
        else:
            errors.append(f"line {n}: not a sum line: {raw.strip()[:60]!r}")
    return total, lines, errors


def verify_sum(directory) -> SumCheck:
    """Compare ``directory/ragrev.sum`` with the revision files. Reports a
    missing file, git conflict markers, malformed lines, and each revision
    that is new, gone, edited, renamed or out of order since the file was
    written. Raises the graph's errors when the graph does not load."""
    directory = Path(directory)
    result = SumCheck(directory / SUM_NAME)
    expected = compute(directory)
    if not result.path.is_file():
        if expected:
            result.problems.append(f"{result.path.name} is missing: run 'ragrev hash' and commit it")
        return result
    total, recorded, errors = parse(result.path.read_text(encoding="utf-8", errors="replace"))
    if any("conflict" in e for e in errors):
        result.problems.append(
            f"{result.path.name} has an unresolved git merge conflict: two branches added revisions; "
            f"run 'ragrev merge -m \"merge\" heads' (or 'ragrev hash' if the graph has one head) and commit the file")
        return result
    result.problems += [f"{result.path.name} {e}" for e in errors]
    by_id = {x.revision: x for x in recorded}
    now = {x.revision: x for x in expected}
    for x in expected:
        old = by_id.get(x.revision)
        if old is None:
            result.problems.append(f"revision {x.revision} ({x.path}) is not in {result.path.name}")
        elif old.file_sha != x.file_sha:
            result.problems.append(f"revision {x.revision} ({x.path}) changed since {result.path.name} was written")
        elif old.path != x.path:
            result.problems.append(f"revision {x.revision} was renamed from {old.path} to {x.path}")
        else:
            continue
        result.revisions.append(x.revision)
    for old in recorded:
        if old.revision not in now:
            result.problems.append(f"revision {old.revision} ({old.path}) is in {result.path.name} but its file is gone")
            result.revisions.append(old.revision)
    if not result.problems:
        if [x.revision for x in recorded] != [x.revision for x in expected]:
            result.problems.append(f"{result.path.name} lists the revisions out of graph order")
        elif [x.chain for x in recorded] != [x.chain for x in expected] or total != render_total(expected):
            result.problems.append(f"{result.path.name} has a wrong chain or total (edited by hand?)")
    return result


def render_total(lines: list[SumLine]) -> str:
    return lines[-1].chain if lines else _EMPTY
