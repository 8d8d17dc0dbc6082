"""Whole-process ``ragrev current`` against ``alembic current``.

Three projects, each written into a temporary directory and brought to its
head first (``upgrade head`` for the SQL project, ``stamp head`` for the
chain), then each command run as a fresh process, alternating ragrev and
Alembic for ``--rounds`` rounds; prints the median wall time of each and the
ratio ragrev / Alembic:

- ``sql``: a SQL-only project (one SQLite store) of ``--sql-revisions``
  revisions that each create a table, as ragrev and as Alembic (with the
  ``env.py`` of Alembic's generic template). Goal: ratio at most 1.5.
- ``chain``: a ``--revisions``-long linear chain of empty revisions (as in
  ``bench_graph.py``), stamped at its head. Goal: ratio at most 1.5.
- ``sample``: the repository's sample project (four embedded stores: Milvus
  Lite, two SecantusDB databases, SQLite), upgraded to head; no Alembic
  counterpart. Goal: at most 1.0 s. Also prints the CPU time of ragrev's
  processes (it reads stores of different kinds in forked children): on a
  loaded machine, wall time grows with the load, CPU time much less.
  With ``--before DIR`` (another checkout of ragrev, e.g. the main branch's)
  that checkout's ``current`` runs in the same rounds, alternating: the
  ratio is then this checkout's time / that one's.

    python benchmarks/bench_current.py [--revisions 10000] [--sql-revisions 50] [--rounds 5] [--only sql,chain,sample] [--before DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_graph import timed, write_chain  # noqa: E402

ENV_PY = '''from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
'''

SQL_FILE = '''"""create table t{i}

Revision ID: {rev}
Revises: {revises}
Create Date: 2026-11-27 10:00:00+00:00
"""
import sqlalchemy as sa
{imports}
revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade({arg}):
    {prefix}create_table("t{i}", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))


def downgrade({arg}):
    {down_call}
'''


def project(root: Path) -> tuple[Path, Path]:
    rg, al = root / "ragrev", root / "alembic"
    (rg / "revisions").mkdir(parents=True)
    (al / "migrations" / "versions").mkdir(parents=True)
    (rg / "var").mkdir()
    (al / "var").mkdir()
    (rg / "ragrev.toml").write_text(
        '[ragrev]\nscript_location = "revisions"\n\n[stores.meta]\nurl = "sqlite:///./var/meta.db"\n')
    (al / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite:///./var/meta.db\n")
    (al / "migrations" / "env.py").write_text(ENV_PY)
    return rg, al


def write_sql(n: int, rg: Path, al: Path, hard_drop: bool = False) -> None:
    """``n`` revisions that each create a table; their downgrades call
    ``drop_table`` (ragrev's moves the table to the trash: a rename) or, with
    ``hard_drop``, both run ``DROP TABLE`` through ``execute``."""
    prev = None
    for i in range(n):
        rev = f"{i:012x}"[::-1]
        common = dict(i=i, rev=rev, revises=prev or "", down=repr(prev) if prev else "None")
        name = f"{rev}_create_table_t{i}.py"
        call = f'execute("DROP TABLE t{i}")' if hard_drop else f'drop_table("t{i}")'
        (rg / "revisions" / name).write_text(SQL_FILE.format(**common, imports="", arg="op", prefix="op.meta.",
                                                             down_call="op.meta." + call))
        (al / "migrations" / "versions" / name).write_text(
            SQL_FILE.format(**common, imports="from alembic import op\n", arg="", prefix="op.", down_call="op." + call))
        prev = rev


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p.stdout


def cpu_timed(cmd, cwd) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of the process and every child it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(cmd, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def side_by_side(label, ours_cmd, ours_cwd, theirs_cmd, theirs_cwd, rounds, goal, theirs_name="alembic"):
    timed(ours_cmd, ours_cwd)  # warm caches and bytecode
    if theirs_cmd:
        timed(theirs_cmd, theirs_cwd)
    ours, theirs, cpu = [], [], {"ours": [], "theirs": []}
    for i in range(rounds):
        pair = [("ours", ours, ours_cmd, ours_cwd)] + ([("theirs", theirs, theirs_cmd, theirs_cwd)] if theirs_cmd else [])
        for who, out, cmd, cwd in (pair if i % 2 == 0 else pair[::-1]):
            wall, used = cpu_timed(cmd, cwd)
            out.append(wall)
            cpu[who].append(used)
    o = statistics.median(ours)
    if theirs_cmd:
        t = statistics.median(theirs)
        oc, tc = statistics.median(cpu["ours"]), statistics.median(cpu["theirs"])
        print(f"current  {label:28s} ragrev {o * 1000:7.0f} ms   {theirs_name} {t * 1000:7.0f} ms   ratio {o / t:.2f}"
              f"   ({goal}; CPU {oc * 1000:.0f} / {tc * 1000:.0f} ms, ratio {oc / tc:.2f}, load average "
              f"{os.getloadavg()[0]:.1f})")
    else:
        print(f"current  {label:28s} ragrev {o * 1000:7.0f} ms   (goal <= {goal * 1000:.0f} ms; "
              f"CPU of all its processes {statistics.median(cpu['ours']) * 1000:.0f} ms, load average "
              f"{os.getloadavg()[0]:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revisions", type=int, default=10_000)
    ap.add_argument("--sql-revisions", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="sql,chain,sample")
    ap.add_argument("--before", help="sample: also time the current of the ragrev checkout in this directory")
    args = ap.parse_args()
    only = set(args.only.split(","))
    alembic_bin = [sys.executable, "-m", "alembic"]
    ragrev_bin = [sys.executable, "-m", "ragrev"]
    root = Path(tempfile.mkdtemp(prefix="ragrev-bench-"))
    print(f"{args.rounds} alternating rounds, python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        if "sql" in only:
            rg, al = project(root / "sql")
            write_sql(args.sql_revisions, rg, al)
            run(ragrev_bin + ["upgrade", "head"], rg)
            run(alembic_bin + ["upgrade", "head"], al)
            side_by_side(f"SQLite, {args.sql_revisions} revisions", ragrev_bin + ["current"], rg,
                         alembic_bin + ["current"], al, args.rounds, "goal <= 1.5")
        if "chain" in only:
            rg, al = project(root / "chain")
            write_chain(args.revisions, rg / "revisions", al / "migrations" / "versions")
            run(ragrev_bin + ["stamp", "head"], rg)
            run(alembic_bin + ["stamp", "head"], al)
            side_by_side(f"{args.revisions}-revision chain", ragrev_bin + ["current"], rg,
                         alembic_bin + ["current"], al, args.rounds, "goal <= 1.5")
        if "sample" in only:
            sp = root / "sample"
            sp.mkdir()
            repo = HERE.parent
            shutil.copy(repo / "ragrev.toml", sp / "ragrev.toml")
            shutil.copytree(repo / "revisions", sp / "revisions")
            if (repo / "sample").is_dir():
                shutil.copytree(repo / "sample", sp / "sample")
            env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
            p = subprocess.run(ragrev_bin + ["upgrade", "head"], cwd=sp, capture_output=True, text=True, env=env)
            if p.returncode:
                raise SystemExit(f"sample upgrade failed: {p.stderr[-800:]}")
            side_by_side("sample project (4 stores)", ragrev_bin + ["current"], sp, None, None, args.rounds, 1.0)
            if args.before:
                before = ["env", f"PYTHONPATH={os.path.abspath(args.before)}", sys.executable, "-m", "ragrev", "current"]
                side_by_side("sample, this / --before", ragrev_bin + ["current"], sp, before, sp, args.rounds,
                             "goal <= 1.0 s", theirs_name="before")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)")
