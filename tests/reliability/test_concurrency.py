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


def race(harness, index: int, offset: float) -> tuple[list, dict]:
    """Start two runners ``offset`` seconds apart; their (exit code, pid,
    stderr lines that are not progress events), and the project's config."""
    config = harness.project(harness.workdir / f"race-{index}", lock_timeout="2s", order=ORDERS[index % 2])
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
        out.append((code, proc.pid, lines))
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
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], f"exit codes {codes} (offset {offset}s): {results}"
    (_, winner, _), (_, _, lines) = sorted(results, key=lambda r: r[0])
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("ragrev: error: ") and "locked by" in lines[0], lines[0]
    assert f":{winner}:" in lines[0] or f"pid {winner}" in lines[0], f"the holder is {winner}: {lines[0]}"

    assert not hashes.diff(harness.reference.final, hashes.snapshot(config))
    for store, records in hashes.journals(config).items():
        done = hashes.applications(records)
        assert done and max(done.values()) == 1, f"store {store}: a step was applied twice: {done.most_common(3)}"
        runs = [r for r in records if r.get("type") == "run" and r.get("direction") == "up"]
        assert len(runs) == len({r["revision"] for r in runs}), f"store {store}: a revision was run twice"
        assert {r["outcome"] for r in runs} == {"done"}
