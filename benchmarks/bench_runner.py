"""The runner's per-revision overhead, and ``--plan`` of a large revision.

- ``upgrade head`` / ``downgrade base`` of ``--revisions`` tiny SQLite
  revisions (each creates one table; Alembic's ``drop_table`` drops it,
  ragrev's moves it to the trash), ragrev and Alembic as fresh processes in
  one run, alternating who goes first, ``--rounds`` rounds; prints the median
  milliseconds per revision and the ratio ragrev / Alembic (goal: 1.2; the
  lease renewal per revision is counted in ragrev's time).
- ``drop``: the same with downgrades that run ``DROP TABLE`` through
  ``execute`` on both sides: the same DDL, so the ratio is the runner's own
  overhead. (``drop_table`` moves a table to ragrev's trash with ``ALTER
  TABLE ... RENAME``, which SQLite makes cost time in proportion to the
  number of tables in the database: ``updown``'s downgrade grows with it.)
- ``upgrade head --plan`` of one revision of ``--ops`` SQLite operations
  (create_table, add_column, create_index, alter_column in turn): wall and
  CPU time (goal: 5 s; Alembic has no plan to compare with).

    python benchmarks/bench_runner.py [--revisions 1000] [--ops 20000] [--rounds 3] [--only updown,drop,plan]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_current import project, write_sql  # noqa: E402
from bench_graph import timed  # noqa: E402

BIG = '''"""{n} operations"""
import sqlalchemy as sa

revision = "b1600000000a"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(op):
    for i in range({n} // 4):
        op.meta.create_table(f"t{{i}}", sa.Column("id", sa.Integer, primary_key=True))
        op.meta.add_column(f"t{{i}}", sa.Column("name", sa.String(50)))
        op.meta.create_index(f"ix_t{{i}}_name", f"t{{i}}", ["name"])
        op.meta.alter_column(f"t{{i}}", "name", new_column_name="title")
'''


def updown(root: Path, n: int, rounds: int, hard_drop: bool = False) -> None:
    alembic_bin = [sys.executable, "-m", "alembic"]
    ragrev_bin = [sys.executable, "-m", "ragrev"]
    rg, al = project(root / ("updown-execute" if hard_drop else "updown"))
    write_sql(n, rg, al, hard_drop=hard_drop)
    times = {("ragrev", "up"): [], ("ragrev", "down"): [], ("alembic", "up"): [], ("alembic", "down"): []}
    tools = [("ragrev", ragrev_bin, rg), ("alembic", alembic_bin, al)]
    for i in range(rounds):
        for who, binary, cwd in (tools if i % 2 == 0 else tools[::-1]):
            for f in (cwd / "var").iterdir():
                f.unlink()
            times[(who, "up")].append(timed(binary + ["upgrade", "head"], cwd))
            times[(who, "down")].append(timed(binary + ["downgrade", "base"], cwd))
    for d, label in (("up", "upgrade head"), ("down", "downgrade base" + (" (DROP)" if hard_drop else ""))):
        o = statistics.median(times[("ragrev", d)]) / n * 1000
        t = statistics.median(times[("alembic", d)]) / n * 1000
        print(f"{label:22s} {n:6d} revisions   ragrev {o:6.2f} ms/rev   alembic {t:6.2f} ms/rev   ratio {o / t:.2f}"
              f"   (goal <= 1.2)")


def plan(root: Path, n: int, rounds: int) -> None:
    d = root / "plan"
    (d / "revisions").mkdir(parents=True)
    (d / "ragrev.toml").write_text(
        '[ragrev]\nscript_location = "revisions"\n\n[stores.meta]\nurl = "sqlite:///./var/meta.db"\n')
    (d / "revisions" / "b1600000000a_big.py").write_text(BIG.format(n=n))
    ragrev_bin = [sys.executable, "-m", "ragrev"]
    runs, cpus = [], []
    for _ in range(rounds):
        before = os.times()
        runs.append(timed(ragrev_bin + ["upgrade", "head", "--plan"], d))
        after = os.times()
        cpus.append(after.children_user + after.children_system - before.children_user - before.children_system)
    print(f"upgrade --plan  {n:6d} operations   ragrev {statistics.median(runs):6.2f} s   "
          f"(CPU {statistics.median(cpus):.2f} s, load average {os.getloadavg()[0]:.1f}; goal <= 5 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revisions", type=int, default=1000)
    ap.add_argument("--ops", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="updown,drop,plan")
    args = ap.parse_args()
    only = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="ragrev-bench-"))
    print(f"{args.rounds} rounds, python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        if "updown" in only:
            updown(root, args.revisions, args.rounds)
        if "drop" in only:
            updown(root, args.revisions, args.rounds, hard_drop=True)
        if "plan" in only:
            plan(root, args.ops, args.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)")
