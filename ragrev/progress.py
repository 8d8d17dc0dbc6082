"""What a run prints while it works (on standard error).

``text`` (the default, on a terminal or not): a line per revision and store,
a line per step and one when it ends (rows, time, rate). On a terminal a
long step shows a live bar (rows, rows per second, time left); elsewhere (CI
and deploy logs) a progress line every :attr:`ConsoleReporter.LOG_EVERY`
seconds instead. ``json`` (``--format json``): one JSON line per event and
at most one per second of progress, each with ``schema_version``, fit for
log collectors. ``github`` prints as ``text``.
"""
from __future__ import annotations

import json
import sys
import time

from ragrev.output import SCHEMA_VERSION
from ragrev.runner import Reporter


class ConsoleReporter(Reporter):
    #: at most one progress line per step this often (seconds): live bar / JSON lines
    INTERVAL = {True: 0.1, False: 1.0}
    #: text lines outside a terminal: one progress line per step this often (seconds)
    LOG_EVERY = 10.0

    def __init__(self, stream=None, live: bool | None = None, quiet: bool = False, fmt: str = "text"):
        self.stream = stream or sys.stderr
        self.json = fmt == "json"
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.live = (isatty if live is None else live) and not self.json
        self.quiet = quiet
        self._started: dict = {}
        self._last: dict = {}
        self._bar_open = False

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _emit(self, event: str, text: str, **fields) -> None:
        if self.quiet:
            return
        if self.json:
            self._write(json.dumps({"schema_version": SCHEMA_VERSION, "event": event, **fields,
                                    "ts": round(time.time(), 3)}))
            return
        self._end_bar()
        self._write(text)

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
        now = time.monotonic()
        self._started[(action.store, index)] = now
        self._last[(action.store, index)] = now if not self.live and not self.json else 0.0
        self._emit("step", f"  {index + 1}/{len(action.ops)} {op.describe()}", store=action.store,
                   revision=action.revision, step=index + 1, steps=len(action.ops), op=op.describe())

    def step_progress(self, action, index, done, total):
        now = time.monotonic()
        key = (action.store, index)
        every = self.INTERVAL[self.live] if self.live or self.json else self.LOG_EVERY
        if now - self._last.get(key, 0.0) < every and not (self.live and total and done >= total):
            return
        self._last[key] = now
        elapsed = max(now - self._started.get(key, now), 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if total and rate > 0 else None
        if self.quiet:
            return
        if self.json:
            self._write(json.dumps({
                "schema_version": SCHEMA_VERSION, "event": "progress", "store": action.store,
                "revision": action.revision, "step": index + 1, "rows": done, "total": total,
                "rows_per_s": round(rate, 1), "eta_s": round(eta, 1) if eta is not None else None,
                "ts": round(time.time(), 3),
            }))
            return
        tail = f"  ETA {eta:.0f}s" if eta is not None else ""
        if self.live:
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
            of = f"/{total:,}" if total else ""
            self._write(f"    {done:,}{of} rows  {rate:,.0f} rows/s{tail}")

    def step_done(self, action, index, op, rows):
        key = (action.store, index)
        elapsed = time.monotonic() - self._started.get(key, time.monotonic())
        rate = rows / elapsed if rows and elapsed > 0 else None
        fields = {"store": action.store, "revision": action.revision, "step": index + 1, "rows": rows,
                  "seconds": round(elapsed, 3), "rows_per_s": round(rate, 1) if rate else None}
        if self.json:
            return self._emit("step_done", "", **fields)
        if rows:
            self._emit("step_done", f"    done: {rows:,} rows in {elapsed:.1f}s ({rate:,.0f} rows/s)", **fields)
        else:
            self._end_bar()

    def run_done(self, action):
        self._end_bar()
