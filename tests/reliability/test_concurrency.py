"""Two ``ragrev upgrade head`` processes started together on the multi-store
chain project (SQLite + Milvus Lite + embedded SecantusDB + a chat archive),
several times, with seeded start offsets and both store orders (SecantusDB
opened last or first; in the second order the runner that loses the lock
often owns the server the winner works through). Exactly one applies the
chain; the other exits 3 with one line naming the holder (its
``host:pid:...`` or pid); no step is ever applied twice (each store's journal
completes every step of every revision once, ``upgrade`` direction); every
store ends exactly as after one uninterrupted run."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from tests.reliability import hashes

TRIALS = 4
ORDERS = (("meta", "vectors", "docs"), ("docs", "meta", "vectors"))


WAITING = "ragrev: waiting: "


def race(harness, index: int, offset: float, lock_timeout: str = "2s", name: str = "race") -> tuple[list, dict]:
    """Start two runners ``offset`` seconds apart; their (exit code, pid,
    stderr lines that are neither progress events nor waiting notices, the
    waiting notices), and the project's config."""
    config = harness.project(harness.workdir / f"{name}-{index}", lock_timeout=lock_timeout, order=ORDERS[index % 2])
    procs = []
    for k in range(2):
        if k:
            time.sleep(offset)
        err = open(config.parent / f"runner-{k}.err", "w")
        procs.append((subprocess.Popen([sys.executable, "-m", "ragrev", "-c", str(config), "upgrade", "head", "--format", "json"],
                                       stdout=subprocess.DEVNULL, stderr=err), err))
    out = []
    for proc, err in procs:
        code = proc.wait(timeout=300)
        err.close()
        lines = [ln for ln in open(err.name).read().splitlines() if ln.strip() and not _is_event(ln)]
        out.append((code, proc.pid, [ln for ln in lines if not ln.startswith(WAITING)],
                    [ln for ln in lines if ln.startswith(WAITING)]))
    return out, config


def _is_event(line: str) -> bool:
    try:
        return "event" in json.loads(line)
    except ValueError:
        return False


@pytest.mark.parametrize("index", range(TRIALS))
def test_two_runners_at_once_one_applies_the_other_exits_3_naming_it(harness, index):
    offset = round(random.Random(f"race:{index}").uniform(0.0, 0.3), 3)
    results, config = race(harness, index, offset)
    codes = sorted(code for code, *_ in results)
    assert codes == [0, 3], f"exit codes {codes} (offset {offset}s): {results}"
    (_, winner, _, _), (_, _, lines, waits) = sorted(results, key=lambda r: r[0])
    assert waits and ("locked by" in waits[0] or "held by" in waits[0]), f"the loser said nothing while waiting: {waits}"
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("ragrev: error: ") and "locked by" in lines[0], lines[0]
    assert f":{winner}:" in lines[0] or f"pid {winner}" in lines[0], f"the holder is {winner}: {lines[0]}"

    _applied_once(harness, config)


def _applied_once(harness, config) -> None:
    assert not hashes.diff(harness.reference.final, hashes.snapshot(config))
    for store, records in hashes.journals(config).items():
        done = hashes.applications(records)
        assert done and max(done.values()) == 1, f"store {store}: a step was applied twice: {done.most_common(3)}"
        runs = [r for r in records if r.get("type") == "run" and r.get("direction") == "up"]
        assert len(runs) == len({r["revision"] for r in runs}), f"store {store}: a revision was run twice"
        assert {r["outcome"] for r in runs} == {"done"}


#: second-runner start offsets: at once and while the first plans (seconds), and well into its
#: steps (fractions of the reference upgrade's duration, so they land inside the run whatever the
#: chain's size and the machine's load)
OFFSETS = (0.2, 1.5, 0.3, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(OFFSETS)))
def test_a_runner_that_waits_for_the_lock_never_crashes(harness, index):
    """Issue 12 part 2: with a lock_timeout long enough to wait, the second
    runner waits (saying so on stderr) and then finds nothing to do, exit 0;
    before the fix it crashed with a pymongo ServerSelectionTimeoutError
    (exit 1) when the first runner, owner of the embedded SecantusDB it
    shared, stopped the server at exit."""
    base = OFFSETS[index] if index < 2 else OFFSETS[index] * harness.reference.seconds
    offset = round(base, 3) + round(random.Random(f"wait:{index}").uniform(0.0, 0.2), 3)
    results, config = race(harness, index, offset, lock_timeout="300s", name="wait")
    for code, pid, lines, waits in results:
        assert code in (0, 3), f"runner {pid} exited {code} (offset {offset}s): {lines}"
        assert not any("Traceback" in ln for ln in lines), lines
        assert not lines or all(ln.startswith("ragrev: error: ") and "locked by" in ln for ln in lines), lines
    assert sorted(code for code, *_ in results) == [0, 0], results
    assert any(waits for *_, waits in results), "neither runner said it was waiting"
    _applied_once(harness, config)
