"""One error root for ragrev, carrying data; turned into a message and an exit
code once, at the command boundary (``ragrev.cli``).

Exit codes (docs/cli.md): 0 done; 1 a step or a check failed; 2 bad input
(usage, configuration, revision files); 3 lock not obtained; 4 ``check`` or
``review`` found problems.
"""
from __future__ import annotations


class RagrevError(Exception):
    """Root of every error ragrev raises on purpose.

    ``exit_code`` is what the CLI exits with; ``str(err)`` is the one line a
    user sees.
    """

    exit_code = 2

    def __init__(self, message: str = "", **data):
        self.message = message
        self.data = data
        super().__init__(message)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


# --- bad input: exit 2 -------------------------------------------------------

class BadInput(RagrevError):
    exit_code = 2


class ConfigError(BadInput):
    """ragrev.toml is missing, unreadable, or names an unknown scheme/variable."""


class RevisionFileError(BadInput):
    """A revision file fails to import or lacks a required attribute."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        loc = ""
        if path:
            loc = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(loc + message, path=path, line=line)


class GraphError(BadInput):
    """Base for errors in the shape of the revision graph or a target."""


class CycleError(GraphError):
    def __init__(self, revisions):
        self.revisions = tuple(revisions)
        super().__init__("cycle in the revision graph: " + " -> ".join(self.revisions))


class DuplicateRevision(GraphError):
    def __init__(self, revision: str, paths=()):
        self.revision = revision
        self.paths = tuple(paths)
        where = f" ({', '.join(self.paths)})" if self.paths else ""
        super().__init__(f"duplicate revision id {revision!r}{where}")


class UnknownRevision(GraphError):
    def __init__(self, revision: str, referenced_by: str | None = None, attribute: str = "down_revision"):
        self.revision = revision
        self.referenced_by = referenced_by
        if referenced_by:
            msg = f"revision {referenced_by!r} names unknown {attribute} {revision!r}"
        else:
            msg = f"no such revision {revision!r}"
        super().__init__(msg)


class AmbiguousRevision(GraphError):
    def __init__(self, prefix: str, candidates):
        self.prefix = prefix
        self.candidates = tuple(sorted(candidates))
        super().__init__(
            f"ambiguous revision prefix {prefix!r}: matches {', '.join(self.candidates)}"
        )


class MultipleHeads(GraphError):
    def __init__(self, heads, argument: str):
        self.heads = tuple(heads)
        self.argument = argument
        super().__init__(
            f"multiple heads ({', '.join(self.heads)}) where {argument!r} needs one; "
            f"name one, use 'heads', or merge them with 'ragrev merge -m MSG heads'"
        )


class UnreachableTarget(GraphError):
    def __init__(self, target: str, reason: str = ""):
        self.target = target
        super().__init__(f"target {target!r} is not reachable" + (f": {reason}" if reason else ""))


class BadTarget(GraphError):
    """A target or range that does not parse."""


class OperationError(BadInput):
    """An operation's arguments are invalid (wrong dim, unknown field, bad schema...)."""


class Irreversible(BadInput):
    """An operation has no inverse and the revision gives no ``downgrade``."""


class StoreUnreachable(BadInput):
    """A store's server cannot be reached (docs/reliability.md: bad input, exit 2)."""


# --- a step or a check failed: exit 1 ------------------------------------------

class StepFailed(RagrevError):
    exit_code = 1


class CheckFailed(StepFailed):
    """A check step (expect_count, check_recall, validate_all...) did not pass."""


class EditedRevision(RagrevError):
    """An applied (or half-applied) revision's operations changed since."""

    exit_code = 1


class Interrupted(RagrevError):
    """Ctrl-C (SIGINT): the run stopped between or inside steps; what a step
    did is journaled, so the same command resumes it. Exit 130, as a shell
    reports a process ended by SIGINT."""

    exit_code = 130


# --- lock: exit 3 -----------------------------------------------------------------

class LockTimeout(RagrevError):
    exit_code = 3

    def __init__(self, store: str, holder: str, waited: float):
        self.store = store
        self.holder = holder
        super().__init__(
            f"store {store!r} is locked by {holder} (waited {waited:.0f}s); "
            f"try again later or raise lock_timeout"
        )


# --- check / review found problems: exit 4 ------------------------------------------

class ProblemsFound(RagrevError):
    exit_code = 4


# --- appended by the graph module (ragrev/graph.py) ---------------------------------

class DuplicateBranchLabel(GraphError):
    """A branch label is declared by two revisions, or equals a revision id."""

    def __init__(self, label: str, revisions):
        self.label = label
        self.revisions = tuple(revisions)
        first, second = self.revisions
        what = "a revision id" if first == label else f"used by revision {first!r}"
        super().__init__(f"branch label {label!r} of revision {second!r} is already {what}")
