"""Fault injection: kill the runner at a chosen point, to prove it recovers.

Set ``RAGREV_FAULTS`` to a comma-separated list of ``POINT=N``; the runner
SIGKILLs its own process the N-th time it reaches POINT (counted from 1 in
that process). ``POINT=N:fail`` raises :class:`Injected` there instead (the
step fails with an error, as when a revision's own code raises). Points:

- ``applied``: a step's operation has run, its journal record is not yet
  written (the window where a step is done but not known to be done);
- ``step``: a step is done and journaled;
- ``checkpoint``: a data step journaled a batch;
- ``stamp``: a store's version was stamped, the run record not yet closed.

``RAGREV_FAULTS_TRACE=PATH`` appends each point reached to PATH, one name
a line (flushed at once, so a killed process leaves a complete trace): an
uninterrupted run's trace tells a harness every place it can kill a run.

Used by ``tests/reliability`` and the recovery harness of docs/reliability.md; it costs one
dictionary look-up per event when neither is set.
"""
from __future__ import annotations

import os
import signal

_PLAN: dict[str, tuple[int, str]] | None = None
_SEEN: dict[str, int] = {}
_TRACE: str | None = None


class Injected(RuntimeError):
    """The error ``POINT=N:fail`` raises."""


def _plan() -> dict[str, tuple[int, str]]:
    global _PLAN, _TRACE
    if _PLAN is None:
        _PLAN = {}
        _TRACE = os.environ.get("RAGREV_FAULTS_TRACE") or None
        for part in filter(None, os.environ.get("RAGREV_FAULTS", "").split(",")):
            point, _, n = part.partition("=")
            n, _, action = n.partition(":")
            if n.strip().isdigit():
                _PLAN[point.strip()] = (int(n), action.strip() or "kill")
    return _PLAN


def hit(point: str) -> None:
    """Count one arrival at ``point``; die here if the plan says so."""
    plan = _plan()
    if _TRACE is not None:
        with open(_TRACE, "a") as f:
            f.write(point + "\n")
    if not plan or point not in plan:
        return
    _SEEN[point] = _SEEN.get(point, 0) + 1
    n, action = plan[point]
    if _SEEN[point] == n:
        if action == "fail":
            raise Injected(f"fault injected at {point} #{n}")
        os.kill(os.getpid(), signal.SIGKILL)
