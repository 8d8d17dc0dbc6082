"""The log kept inside every store (docs/concepts.md): run records and step records.

A *run* record is written when a store starts applying (``up``), reverting
(``down``) or stamping a revision, and finished with its outcome (``done``,
``failed``; a half-applied run that was reverted becomes ``reverted``). A
*step* record is written when a step starts and finished when it completes,
with the rows it touched, its resume token (updated at every checkpoint) and
the data its inverse needs (``captured``).

From these records :class:`Journal` answers the runner's questions: is a
revision half-applied in this store, which of its steps are done, what did
they capture, what checksum was applied.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import itertools
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


_seq = itertools.count()


def next_seq() -> int:
    """Increasing across processes (time-based) and within one (a counter)."""
    return time.time_ns() // 1000 * 1000 + next(_seq) % 1000


def who() -> dict:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid())
    return {"username": user, "hostname": socket.gethostname()}


def git_commit(directory) -> str | None:
    """The commit of the project's git work tree, when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class RunState:
    """The latest run of one revision in one store, with its steps by index."""

    run: dict
    steps: dict[int, dict] = field(default_factory=dict)
    #: for a ``down`` run that reverts a half-applied revision: that ``up`` run
    reverting: "RunState | None" = None

    @property
    def direction(self) -> str:
        return self.run["direction"]

    @property
    def outcome(self) -> str:
        return self.run["outcome"]

    @property
    def open(self) -> bool:
        """Started and not finished: running when it crashed, or failed."""
        return self.outcome in ("running", "failed")

    def done_steps(self) -> dict[int, dict]:
        return {i: s for i, s in self.steps.items() if s.get("outcome") == "done"}


class Journal:
    """Run and step records of one store."""

    def __init__(self, store, context: dict | None = None):
        self.store = store
        self.context = context or {}
        #: runs that completed (their stamp is written) but whose record was
        #: never closed: the process died in between; see :meth:`open_runs`
        self.unclosed: dict[str, RunState] = {}
        #: every record by revision, as :meth:`open_runs` read them: they answer
        #: :meth:`applied_checksum` and :meth:`last_applied_run` for the rest of
        #: a planning pass (one read of the log, not one per revision). Records
        #: this object updates are updated in place; one it adds drops them.
        self._by_rev: dict[str, list[dict]] | None = None

    def _records(self, revision: str) -> list[dict]:
        if self._by_rev is not None:
            return self._by_rev.get(revision, [])
        return self.store.log_records(revision)

    # --- reading ---------------------------------------------------------------
    def latest(self, revision: str, directions=("up", "down")) -> RunState | None:
        """The latest run of ``revision`` in one of ``directions`` (stamps excluded)."""
        records = self.store.log_records(revision)
        runs = [r for r in records if r.get("type") == "run" and r.get("direction") in directions]
        if not runs:
            return None
        run = runs[-1]
        state = RunState(run)
        for r in records:
            if r.get("type") == "step" and r.get("run_id") == run["id"]:
                state.steps[r["step_index"]] = r
        return state

    def applied_checksum(self, revision: str) -> str | None:
        """Checksum of the last completed ``up`` run of ``revision``."""
        st = self.unclosed.get(revision)
        if st is not None and st.direction == "up":
            return st.run.get("checksum")
        for r in reversed(self._records(revision)):
            if r.get("type") == "run" and r.get("direction") == "up" and r.get("outcome") == "done":
                return r.get("checksum")
        return None

    def last_applied_run(self, revision: str) -> RunState | None:
        st = self.unclosed.get(revision)
        if st is not None and st.direction == "up":
            return st
        records = self._records(revision)
        runs = [r for r in records if r.get("type") == "run" and r.get("direction") == "up" and r.get("outcome") == "done"]
        if not runs:
            return None
        state = RunState(runs[-1])
        for r in records:
            if r.get("type") == "step" and r.get("run_id") == state.run["id"]:
                state.steps[r["step_index"]] = r
        return state

    def open_runs(self, applied: set | None = None) -> dict[str, RunState]:
        """Revisions whose latest run is open (half-applied or half-reverted).

        With ``applied`` (the revisions the store's version says are applied),
        a run that completed but whose record was never closed — the process
        died between writing the store's version and closing the record — is
        not open: an ``up`` run of an applied revision, or a ``down`` run of a
        revision no longer applied (unless it reverts a half-applied run, which
        is never stamped). Those go to :attr:`unclosed`, and count as done for
        :meth:`last_applied_run` and :meth:`applied_checksum`. A ``down`` run
        reverting a half-applied ``up`` run has that run in ``reverting``.
        """
        by_rev: dict[str, list[dict]] = {}
        for r in self.store.log_records():
            by_rev.setdefault(r.get("revision"), []).append(r)
        self._by_rev = by_rev
        out = {}
        self.unclosed = {}
        for rev, records in by_rev.items():
            runs = [r for r in records if r.get("type") == "run" and r.get("direction") in ("up", "down")]
            if runs and runs[-1].get("outcome") in ("running", "failed"):
                st = self._state(runs[-1], records)
                if st.direction == "down":
                    ups = [r for r in runs if r["direction"] == "up"]
                    if ups and ups[-1].get("outcome") in ("running", "failed"):
                        st.reverting = self._state(ups[-1], records)
                if applied is not None and st.reverting is None and (rev in applied) == (st.direction == "up"):
                    self.unclosed[rev] = st
                elif st.steps:  # no step started: nothing is half-done (e.g. rolled back)
                    out[rev] = st
        return out

    @staticmethod
    def _state(run: dict, records: list[dict]) -> RunState:
        st = RunState(run)
        for r in records:
            if r.get("type") == "step" and r.get("run_id") == run["id"]:
                st.steps[r["step_index"]] = r
        return st

    def close_unclosed(self) -> None:
        """Close the runs :meth:`open_runs` found completed but unclosed (as ``done``)."""
        for st in self.unclosed.values():
            self.finish_run(st.run, "done")

    # --- writing -------------------------------------------------------------------
    def start_run(self, revision: str, direction: str, checksum: str | None, owner: str = "") -> dict:
        rec = {
            "id": uuid.uuid4().hex, "seq": next_seq(), "type": "run", "revision": revision,
            "direction": direction, "checksum": checksum, "outcome": "running", "started": now_iso(),
            "owner": owner, **self.context,
        }
        self._by_rev = None
        self.store.log_append(rec)
        return rec

    def finish_run(self, run: dict, outcome: str, error: str | None = None) -> None:
        fields = {"outcome": outcome, "finished": now_iso()}
        if error is not None:
            fields["error"] = error[:2000]
        run.update(fields)
        self.store.log_update(run["id"], fields)

    def start_step(self, run: dict, index: int, op) -> dict:
        rec = {
            "id": uuid.uuid4().hex, "seq": next_seq(), "type": "step", "run_id": run["id"],
            "revision": run["revision"], "direction": run["direction"], "step_index": index,
            "digest": op.digest(), "description": op.describe()[:500], "outcome": "running",
            "started": now_iso(), "rows_done": 0, "resume_token": None, "captured": {},
        }
        self._by_rev = None
        self.store.log_append(rec)
        return rec

    def checkpoint(self, step: dict, token, rows_done: int, captured: dict) -> None:
        fields = {"resume_token": token, "rows_done": rows_done, "captured": captured}
        step.update(fields)
        self.store.log_update(step["id"], fields)

    def finish_step(self, step: dict, rows: int | None, captured: dict) -> None:
        fields = {"outcome": "done", "finished": now_iso(), "rows_done": rows if rows is not None else step.get("rows_done", 0),
                  "captured": captured}
        step.update(fields)
        self.store.log_update(step["id"], fields)
