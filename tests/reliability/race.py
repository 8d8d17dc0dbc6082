"""Concurrent starts on the sample project (``ragrev.toml`` at the repository
root, embedded engines: Milvus Lite, SecantusDB, SQLite): per trial, two
``ragrev upgrade head`` on a fresh copy of ``revisions/`` and ``sample/``, the
second started a seeded random offset (0.2 to 6 s) after the first. A trial
passes when every runner exits 0 or 3 with no traceback and one of them
upgraded. Run as::

    python -m tests.reliability.race --trials 13 --seed 1

printing one line per trial and ``K/N trials``; failing trials' directories
are kept under ``--workdir``.
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def trial(workdir: Path, index: int, offset: float) -> tuple[bool, str]:
    d = workdir / f"trial-{index}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name in ("revisions", "sample"):
        shutil.copytree(ROOT / name, d / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "ragrev.toml", d)
    procs = []
    for k in range(2):
        if k:
            time.sleep(offset)
        procs.append(subprocess.Popen([sys.executable, "-m", "ragrev", "upgrade", "head", "-q"], cwd=d,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=900), *p.communicate()) for p in procs]
    codes = [c for c, _, _ in results]
    traceback = any("Traceback" in err for _, _, err in results)
    good = all(c in (0, 3) for c in codes) and not traceback and any("Upgraded" in out for _, out, _ in results)
    for k, (_, out, err) in enumerate(results):
        (d / f"runner-{k}.out").write_text(out + err)
    if good:
        shutil.rmtree(d, ignore_errors=True)
    return good, f"offset {offset:.2f}s exit codes {codes}{' traceback' if traceback else ''}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=13)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ragrev-race-"))
    rng = random.Random(args.seed)
    passed = 0
    for i in range(args.trials):
        good, line = trial(workdir, i, round(rng.uniform(0.2, 6.0), 2))
        passed += good
        print(f"trial {i}: {line}: {'ok' if good else 'FAILED'}", flush=True)
    print(f"{passed}/{args.trials} trials: every runner exited 0 or 3, no traceback (seed {args.seed})")
    return 0 if passed == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
