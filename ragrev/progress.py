"""What a run prints while it works (on standard error).

On a terminal: a line per revision and store, a line per step, and for long
steps a live bar with rows, rows per second and time left. Not on a
terminal: one structured (JSON) line per event and per batch, fit for log
collectors.
"""
from __future__ import annotations

import json
import sys
import time

from ragrev.runner import Reporter


class ConsoleReporter(Reporter):
    #: at most one progress line per step this often (seconds): live / structured
    INTERVAL = {True: 0.1, False: 1.0}

    def __init__(self, stream=None, live: bool | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._started: dict = {}
        self._last: dict = {}
        self._bar_open = False

    def _emit(self, event: str, text: str, **fields) -> None:
        if self.quiet:
            return
        if self.live:
            self._end_bar()
            self.stream.write(text + "\n")
        else:
            self.stream.write(json.dumps({"event": event, **fields, "ts": round(time.time(), 3)}) + "\n")
        self.stream.flush()

    def _end_bar(self):
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False

    def run_start(self, action, message):
        verb = {("up", "apply"): "upgrade", ("up", "resume"): "resume upgrade", ("down", "revert"): "downgrade",
                ("down", "resume"): "resume downgrade", ("down", "revert half-applied"): "revert half-applied"}[
            (action.direction, action.mode)]
        self._emit("revision", f"{action.store}: {verb} {action.revision}, {message}",
                   store=action.store, revision=action.revision, direction=action.direction, mode=action.mode)

    def step_start(self, action, index, op):
        self._started[(action.store, index)] = time.monotonic()
        self._emit("step", f"  {index + 1}/{len(action.ops)} {op.describe()}", store=action.store,
                   revision=action.revision, step=index + 1, steps=len(action.ops), op=op.describe())

    def step_progress(self, action, index, done, total):
        now = time.monotonic()
        key = (action.store, index)
        if now - self._last.get(key, 0.0) < self.INTERVAL[self.live] and not (total and done >= total):
            return
        self._last[key] = now
        started = self._started.get(key, now)
        elapsed = max(now - started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if total and rate > 0 else None
        if self.quiet:
            return
        if self.live:
            tail = f" ETA {eta:4.0f}s" if eta is not None else ""
            if total:
                width = 30
                filled = int(width * min(done / total, 1.0))
                text = f"[{'#' * filled}{'-' * (width - filled)}] {done:,}/{total:,} rows"
            else:
                text = f"{done:,} rows"
            self.stream.write(f"\r    {text}  {rate:,.0f} rows/s{tail}   ")
            self.stream.flush()
            self._bar_open = True
        else:
            self.stream.write(json.dumps({
                "event": "progress", "store": action.store, "revision": action.revision, "step": index + 1,
                "rows": done, "total": total, "rows_per_s": round(rate, 1),
                "eta_s": round(eta, 1) if eta is not None else None, "ts": round(time.time(), 3),
            }) + "\n")
            self.stream.flush()

    def step_done(self, action, index, op, rows):
        if self.live:
            self._end_bar()

    def run_done(self, action):
        if self.live:
            self._end_bar()
