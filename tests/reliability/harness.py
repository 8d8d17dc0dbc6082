"""Fault-injection harness: SIGKILL ``ragrev upgrade head`` of a multi-store
chain at seeded random points, rerun it, and check that it recovered.

The project is :mod:`tests.reliability.chain` (SQLite + Milvus Lite +
SecantusDB + a chat archive in cold storage, data steps in every store).
First a *reference*: the seeded stores are snapshotted (initial), migrated by
one uninterrupted ``upgrade head`` (final; its ``RAGREV_FAULTS_TRACE`` lists
every kill point it passed, in order) and by ``downgrade base``, which must
give back the initial snapshot. Then each *trial*, on a fresh copy of the
seeded stores:

1. one or two runs of ``upgrade head`` are killed, each either by fault
   injection (``RAGREV_FAULTS=point=n``: a point of the reference trace drawn
   at random — ``applied``, the window after a step ran and before it was
   journaled; ``step``; ``checkpoint``, inside data steps; ``stamp``) or by
   time (SIGKILL after a random delay within the reference run's duration);
   after each kill no chat message may be lost (each is in the store or in an
   archive file a pointer references);
2. ``upgrade head`` again (waiting out the dead runner's lease) must succeed,
   leave every store's snapshot (content hashes and heads) equal to the
   reference's, and every message in exactly one place;
3. ``downgrade base`` must succeed and give back the initial snapshot (the
   archive files stay: ragrev never deletes cold storage). In about a third
   of the trials the downgrade too is killed once (by fault or by time, from
   the reference downgrade's trace and duration) and run again.

A trial *recovered* when all of that holds. Run as::

    python -m tests.reliability.harness --trials 50 --seed 1

printing one line per trial and ``K/50 trials recovered``; failing trials'
directories (with every run's output) are kept under ``--workdir``.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability import chain, hashes

RUN_TIMEOUT = 300.0


@dataclass
class Reference:
    initial: dict
    final: dict
    after_down: dict
    seconds: float
    trace: list[str]
    messages: set[str]
    down_seconds: float = 0.0
    down_trace: list[str] = field(default_factory=list)


@dataclass
class Kill:
    """How one run is to be stopped: ``("fault", point, n)`` or ``("time", seconds)``."""

    how: str
    point: str = ""
    n: int = 0
    delay: float = 0.0
    event: int = -1          # index in the reference trace (fault kills)
    outcome: str = ""        # what happened: "killed", "finished", "exit N"

    def __str__(self) -> str:
        what = f"{self.point}#{self.n}" if self.how == "fault" else f"after {self.delay:.2f}s"
        return f"{self.how} {what} ({self.outcome or 'pending'})"


@dataclass
class Trial:
    index: int
    kills: list[Kill]
    down_kills: list[Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        text = ", ".join(map(str, self.kills))
        return text + ("; downgrade: " + ", ".join(map(str, self.down_kills)) if self.down_kills else "")

    @property
    def recovered(self) -> bool:
        return not self.problems


class Harness:
    def __init__(self, workdir: Path, seed: int = 1, log=print, pristine: Path | None = None,
                 reference: Reference | None = None):
        """``pristine`` and ``reference``: the seeded stores and the reference
        of a :meth:`prepare` made elsewhere (by another pytest worker), which
        this harness then only reads; by default :meth:`prepare` makes them
        under ``workdir``."""
        self.workdir = Path(workdir)
        self.seed = seed
        self.log = log
        self.pristine = Path(pristine) if pristine is not None else self.workdir / "pristine"
        self.reference = reference

    # --- processes ------------------------------------------------------------------------
    def ragrev(self, config: Path, *args, env=None, kill: Kill | None = None, name: str = "run") -> int:
        """Run ``ragrev -c config ARGS`` to its end (or to ``kill``); output in ``logs/``; the exit code."""
        logs = config.parent / "logs"
        logs.mkdir(exist_ok=True)
        n = len(list(logs.glob("*.out")))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGREV_FAULTS")}, **(env or {})}
        if kill is not None and kill.how == "fault":
            env["RAGREV_FAULTS"] = f"{kill.point}={kill.n}"
        with open(logs / f"{n:02d}-{name}.out", "w") as out, open(logs / f"{n:02d}-{name}.err", "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "ragrev", "-c", str(config), *args],
                                    stdout=out, stderr=err, env=env)
            try:
                proc.wait(timeout=kill.delay if kill is not None and kill.how == "time" else RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if kill is None or kill.how != "time":
                    return -999  # hung
        if kill is not None:
            kill.outcome = "killed" if proc.returncode == -signal.SIGKILL else (
                "finished" if proc.returncode == 0 else f"exit {proc.returncode}")
        return proc.returncode

    def last_error(self, config: Path) -> str:
        errs = sorted((config.parent / "logs").glob("*.err"))
        if not errs:
            return ""
        lines = [ln for ln in errs[-1].read_text().splitlines() if ln.strip() and not ln.startswith("{")]
        return lines[-1][:300] if lines else ""

    # --- the reference ----------------------------------------------------------------------
    def prepare(self) -> Reference:
        if self.pristine.exists():
            shutil.rmtree(self.pristine)
        chain.seed(self.pristine)
        root = self.workdir / "reference"
        config = self.project(root)
        initial = hashes.snapshot(config)
        messages = self.ledger(config)
        trace = root / "trace.txt"
        start = time.monotonic()
        code = self.ragrev(config, "upgrade", "head", env={"RAGREV_FAULTS_TRACE": str(trace)}, name="upgrade")
        seconds = time.monotonic() - start
        if code != 0:
            raise RuntimeError(f"the reference upgrade failed (exit {code}): {self.last_error(config)}")
        final = hashes.snapshot(config)
        down_trace = root / "down-trace.txt"
        start = time.monotonic()
        if self.ragrev(config, "downgrade", "base", env={"RAGREV_FAULTS_TRACE": str(down_trace)},
                       name="downgrade") != 0:
            raise RuntimeError(f"the reference downgrade failed: {self.last_error(config)}")
        down_seconds = time.monotonic() - start
        after_down = hashes.snapshot(config)
        problems = hashes.diff(_stores(initial), _stores(after_down))
        if problems:
            raise RuntimeError("the reference downgrade did not restore the initial state: " + "; ".join(problems))
        if set(messages) != {k for k, v in messages.items() if v == 1}:
            raise RuntimeError("the seed has duplicate message ids")
        self.reference = Reference(initial, final, after_down, seconds, trace.read_text().split(), set(messages),
                                   down_seconds, down_trace.read_text().split())
        return self.reference

    def project(self, root: Path, **settings) -> Path:
        """A fresh project at ``root`` on a copy of the seeded stores (``settings``: see ``chain.write_project``)."""
        if root.exists():
            shutil.rmtree(root)
        config = chain.write_project(root, **settings)
        chain.copy_var(self.pristine, root)
        return config

    def ledger(self, config: Path):
        with hashes.mongo_database(config.parent / "var" / "docs", "rag") as db:
            return hashes.message_ledger(db, config.parent / "var" / "cold")

    # --- trials ----------------------------------------------------------------------------------
    def plan(self, index: int) -> tuple[list[Kill], list[Kill]]:
        """The seeded kills of trial ``index``: of ``upgrade head``, the first
        by fault injection in even trials and by time in odd ones, a second
        in about a third of the trials; of ``downgrade base``, one in about a
        third of the trials."""
        ref = self.reference
        rng = random.Random(f"{self.seed}:{index}")
        kills = self._kills(rng, 1 + (rng.random() < 0.35), ref.trace, ref.seconds, ("fault", "time")[index % 2])
        down = self._kills(rng, 1, ref.down_trace, ref.down_seconds, rng.choice(("fault", "time"))) \
            if rng.random() < 0.35 else []
        return kills, down

    @staticmethod
    def _kills(rng, count: int, trace: list[str], seconds: float, first: str) -> list[Kill]:
        kills: list[Kill] = []
        after = -1
        for k in range(count):
            how = first if k == 0 else rng.choice(("fault", "time"))
            if how == "fault" and after + 1 < len(trace):
                e = rng.randrange(after + 1, len(trace))
                point = trace[e]
                kills.append(Kill("fault", point, trace[after + 1: e + 1].count(point), event=e))
                after = e
            else:
                kills.append(Kill("time", delay=round(rng.uniform(0.5, max(seconds * 0.95, 0.6)), 2)))
        return kills

    def trial(self, index: int, kills: list[Kill] | None = None, down_kills: list[Kill] | None = None) -> Trial:
        ref = self.reference
        if kills is None:
            kills, planned_down = self.plan(index)
            down_kills = planned_down if down_kills is None else down_kills
        t = Trial(index, kills, down_kills or [])
        start = time.monotonic()
        root = self.workdir / f"trial-{index:03d}"
        config = self.project(root)
        for i, kill in enumerate(kills):
            code = self.ragrev(config, "upgrade", "head", kill=kill, name=f"killed-{i}")
            if code not in (0, -signal.SIGKILL):
                t.problems.append(f"run {i + 1} ({kill}) failed: {self.last_error(config)}")
                break
            seen = self.ledger(config)
            lost = ref.messages - set(seen)
            if lost:
                t.problems.append(f"after kill {i + 1} ({kill}) {len(lost)} chat messages are lost, e.g. {min(lost)}")
        if not t.problems:
            self.check_final(t, config)
        t.seconds = time.monotonic() - start
        if t.recovered:
            shutil.rmtree(root, ignore_errors=True)
        return t

    def check_final(self, t: Trial, config: Path) -> None:
        ref = self.reference
        code = self.ragrev(config, "upgrade", "head", name="rerun")
        if code != 0:
            t.problems.append(f"the rerun exited {code}: {self.last_error(config)}")
            return
        final = hashes.snapshot(config)
        t.problems += [f"after the rerun: {d}" for d in hashes.diff(ref.final, final)]
        seen = self.ledger(config)
        twice = sorted(k for k, v in seen.items() if v > 1)
        if twice or set(seen) != ref.messages:
            t.problems.append(f"chat messages: {len(ref.messages - set(seen))} lost, {len(twice)} in two places")
        for i, kill in enumerate(t.down_kills):
            code = self.ragrev(config, "downgrade", "base", kill=kill, name=f"killed-down-{i}")
            if code not in (0, -signal.SIGKILL):
                t.problems.append(f"downgrade {i + 1} ({kill}) failed: {self.last_error(config)}")
                return
        code = self.ragrev(config, "downgrade", "base", name="downgrade")
        if code != 0:
            t.problems.append(f"downgrade base exited {code}: {self.last_error(config)}")
            return
        after = hashes.snapshot(config)
        t.problems += [f"after downgrade base: {d}" for d in hashes.diff(ref.after_down, after)]

    def abandon_trial(self, index: int) -> Trial:
        """Kill ``upgrade head`` once, then go straight to ``downgrade base``
        (no rerun): docs/concepts.md's "downgrade reverts the completed steps of a
        half-applied revision". Recovered when the downgrade succeeds and
        every store is back to its initial snapshot."""
        kills, _ = self.plan(index)
        t = Trial(index, kills[:1])
        start = time.monotonic()
        root = self.workdir / f"abandon-{index:03d}"
        config = self.project(root)
        code = self.ragrev(config, "upgrade", "head", kill=t.kills[0], name="killed")
        if code not in (0, -signal.SIGKILL):
            t.problems.append(f"the killed run failed: {self.last_error(config)}")
        else:
            code = self.ragrev(config, "downgrade", "base", name="downgrade")
            if code != 0:
                t.problems.append(f"downgrade base exited {code}: {self.last_error(config)}")
            else:
                t.problems += hashes.diff(_stores(self.reference.initial), _stores(hashes.snapshot(config)))
        t.seconds = time.monotonic() - start
        if t.recovered:
            shutil.rmtree(root, ignore_errors=True)
        return t

    def run(self, trials: int, abandon: bool = False) -> list[Trial]:
        out = []
        for i in range(1, trials + 1):
            t = self.abandon_trial(i) if abandon else self.trial(i)
            out.append(t)
            status = "recovered" if t.recovered else "NOT RECOVERED: " + " | ".join(t.problems[:3])
            self.log(f"trial {i:2d}/{trials}: {t.describe()} -> {status} [{t.seconds:.0f}s]")
        return out


def _stores(snap: dict) -> dict:
    """A snapshot without its cold-storage part (archive files are never deleted by ragrev)."""
    return {k: v for k, v in snap.items() if not k.startswith("cold:")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="where projects go (default: a new temporary dir)")
    parser.add_argument("--abandon", action="store_true",
                        help="after the kill, downgrade base at once instead of rerunning the upgrade")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ragrev-reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    h = Harness(workdir, args.seed)
    started = time.monotonic()
    ref = h.prepare()
    points = {p: ref.trace.count(p) for p in dict.fromkeys(ref.trace)}
    down = {p: ref.down_trace.count(p) for p in dict.fromkeys(ref.down_trace)}
    print(f"reference: upgrade head in {ref.seconds:.1f}s, kill points {points}; downgrade base in "
          f"{ref.down_seconds:.1f}s, kill points {down}; work in {workdir}", flush=True)
    results = h.run(args.trials, abandon=args.abandon)
    ok = sum(t.recovered for t in results)
    print(f"{ok}/{args.trials} {'abandoned ' if args.abandon else ''}trials recovered "
          f"({time.monotonic() - started:.0f}s, "
          f"{sum(t.seconds for t in results) / max(len(results), 1):.1f}s per trial)")
    if ok == args.trials and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
