"""Whole-process ``ragrev heads``/``history`` against ``alembic heads``/``history``.

Writes one 10,000-revision linear chain twice into a temporary directory, as a
ragrev project (``ragrev.toml`` + ``revisions/``) and as an Alembic script
directory (``alembic.ini`` + ``versions/``), with the same file text (the
shape ``ragrev revision`` writes, importing sqlalchemy as SQL revisions do).
Then runs each command as a fresh process, alternating ragrev and Alembic for
``--rounds`` rounds, and prints the median wall time of each and the ratio
ragrev/Alembic (the goal is at most 0.5).

    python benchmarks/bench_graph.py [--revisions 10000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILE = '''"""{message}

Revision ID: {rev}
Revises: {revises}
Create Date: 2026-11-27 10:00:00+00:00
"""
import sqlalchemy as sa  # noqa: F401

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade(op):
    pass


def downgrade(op):
    pass
'''


def write_chain(n: int, *dirs: Path) -> None:
    prev = None
    for i in range(n):
        rev = f"{i:012x}"[::-1]  # 12 hex digits, spread like random ids
        text = FILE.format(message=f"revision number {i}", rev=rev, revises=prev or "",
                           down=repr(prev) if prev else "None")
        name = f"{rev}_revision_number_{i}.py"
        for d in dirs:
            (d / name).write_text(text)
        prev = rev


def setup(root: Path, n: int) -> tuple[Path, Path]:
    rg, al = root / "ragrev", root / "alembic"
    (rg / "revisions").mkdir(parents=True)
    (al / "migrations" / "versions").mkdir(parents=True)
    (rg / "ragrev.toml").write_text(
        '[ragrev]\nscript_location = "revisions"\n\n[stores.meta]\nurl = "sqlite:///./var/meta.db"\n')
    (al / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite:///./var/meta.db\n")
    write_chain(n, rg / "revisions", al / "migrations" / "versions")
    return rg, al


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revisions", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    alembic_bin = [sys.executable, "-m", "alembic"]
    ragrev_bin = [sys.executable, "-m", "ragrev"]
    root = Path(tempfile.mkdtemp(prefix="ragrev-bench-"))
    env_note = f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s)"
    try:
        rg, al = setup(root, args.revisions)
        print(f"{args.revisions} revisions in a linear chain, {args.rounds} alternating rounds, {env_note}")
        # warm the file system cache and compile both code bases once
        for cmd, cwd in ((ragrev_bin + ["heads"], rg), (alembic_bin + ["heads"], al)):
            timed(cmd, cwd)
        for command in ("heads", "history"):
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(timed(ragrev_bin + [command], rg))
                theirs.append(timed(alembic_bin + [command], al))
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"{command:8s} ragrev {o * 1000:8.0f} ms   alembic {t * 1000:8.0f} ms   ratio {o / t:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
