"""Pause-past-lease harness (issue 12, part 1): seeded random trials of a
runner paused with SIGSTOP for longer than its lease while it migrates,
another runner started meanwhile, the first one continued with SIGCONT.

Each trial takes one store kind in turn — a MongoDB store on a SecantusDB
server, PostgreSQL, SQLite, Milvus Lite — and a project of three revisions
that each add 1 to a number in every row/document (``n -> n+1``, in batches
with a little work per row, so that pauses land inside data steps). Drawn at
random: how long after runner A took its lease it is paused, and whether it
is continued while runner B still runs or after B ended. The lease is 2 s;
A is paused for 2.5 s before B starts.

A trial *passes* when:

- no runner exits other than 0 or 3, none prints a traceback, a runner that
  exits 3 prints one line;
- when B took over a lease while A was paused, A exits 3 and names B's
  process (it never writes after the takeover);
- after a final ``upgrade head`` every row is at ``n+3`` (each revision
  applied exactly once) and the store is at the head revision.

What happens depends on the store: on MongoDB and PostgreSQL B takes the
expired lease and A, continued, stops with exit 3; a SQLite runner paused
inside its write transaction keeps the database (B waits or gives up with
exit 3); Milvus Lite is one process per data file (B cannot open it while A
lives). Run as::

    python -m tests.reliability.pause --trials 24 --seed 1
"""
from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.reliability.fencing import start, wait_until

LEASE = 2.0
REVISIONS = 3
ROWS = 400
KINDS = ("mongo", "postgresql", "sqlite", "milvus")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

MONGO_REV = """
import time


def bump(doc):
    time.sleep(0.002)
    return {**doc, "n": doc["n"] + 1}


def upgrade(op):
    op.docs.transform("items", bump, batch_size=20)
"""

SQL_REV = """
def upgrade(op):
    op.meta.execute("UPDATE items SET n = n + 1")
    op.meta.execute(%r)
"""

MILVUS_REV = """
import time


def bump(row):
    time.sleep(0.002)
    return {**row, "n": row["n"] + 1}


def upgrade(op):
    op.vectors.upsert("items", filter="id >= 0", transform=bump, batch_size=20)
"""


class Target:
    """One store of one kind for one trial: a project, its seeding, its reading."""

    def __init__(self, kind: str, root: Path, mongo_uri: str | None):
        self.kind, self.root = kind, root
        self.revisions = root / "revisions"
        self.revisions.mkdir(parents=True)
        self._engine = None
        if kind == "mongo":
            self.db_name = "pause_" + uuid.uuid4().hex[:8]
            self.mongo_uri = mongo_uri
            store = f'[stores.docs]\nurl = "{mongo_uri}"\ndatabase = "{self.db_name}"\n'
        elif kind in ("postgresql", "sqlite"):
            if kind == "postgresql":
                import sqlalchemy as sa

                self.pg_db = "pause_" + uuid.uuid4().hex[:8]
                admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.exec_driver_sql(f'CREATE DATABASE "{self.pg_db}"')
                admin.dispose()
                self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.pg_db
            else:
                self.url = f"sqlite:///{root}/store.db"
            store = f'[stores.meta]\nurl = "{self.url}"\n'
        else:
            self.path = root / "var" / "v.db"
            store = '[stores.vectors]\nurl = "milvus-lite:///./var/v.db"\nlock_timeout = "8s"\n'
        self.config = root / "ragrev.toml"
        self.config.write_text('[ragrev]\nscript_location = "revisions"\nlock_timeout = "8s"\n'
                               f'lock_lease = "{LEASE:g}s"\n\n' + store)
        self._write_revisions()

    def _write_revisions(self) -> None:
        def put(rev, down, body):
            (self.revisions / f"{rev}.py").write_text(
                f'"""{rev}"""\nimport sqlalchemy as sa\n\nrevision = {rev!r}\ndown_revision = {down!r}\n\n{body}')

        if self.kind == "mongo":
            put("p0", None, "def upgrade(op):\n    op.docs.create_collection('items')\n"
                            f"    op.docs.insert('items', [{{'_id': i, 'n': i}} for i in range({ROWS})])\n")
            body = MONGO_REV
        elif self.kind == "milvus":
            put("p0", None, 'def upgrade(op):\n    op.vectors.create_collection("items", fields=[\n'
                            '        {"name": "id", "type": "INT64", "primary": True},\n'
                            '        {"name": "n", "type": "INT64"},\n'
                            '        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 2}],\n'
                            '        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})\n'
                            f'    op.vectors.insert("items", rows=[{{"id": i, "n": i, "vec": [1.0, 1.0]}} '
                            f'for i in range({ROWS})])\n')
            body = MILVUS_REV
        else:
            series = f"WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS - 1}) SELECT x FROM c"
            put("p0", None, "def upgrade(op):\n    op.meta.create_table('items', sa.Column('id', sa.Integer, "
                            "primary_key=True), sa.Column('n', sa.Integer))\n"
                            f"    op.meta.execute({'INSERT INTO items (id, n) SELECT x, x FROM (' + series + ') s'!r})\n")
            slow = ("SELECT pg_sleep(0.8)" if self.kind == "postgresql" else
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
                    "SELECT count(*) FROM c")
            body = SQL_REV % slow
        down = "p0"
        for r in range(1, REVISIONS + 1):
            put(f"p{r}", down, body)
            down = f"p{r}"

    # --- reading the store -------------------------------------------------------------------
    def owner_pid(self) -> int | None:
        owner = ""
        try:
            if self.kind == "mongo":
                doc = self._mongo()["ragrev_lock"].find_one({"_id": "lock"}) or {}
                owner = doc.get("owner") or ""
            elif self.kind == "milvus":
                import json

                lease = self.path / "ragrev-lease.json"
                owner = json.loads(lease.read_text()).get("owner", "") if lease.exists() else ""
            else:
                import sqlalchemy as sa

                with self._sql().connect() as c:
                    row = c.execute(sa.text("SELECT owner FROM ragrev_lock WHERE expires > 0")).first()
                owner = row[0] if row else ""
        except Exception:
            return None
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        return int(pid) if pid.isdigit() else None

    def wrong(self) -> int:
        """Rows/documents not at n+REVISIONS."""
        if self.kind == "mongo":
            return self._mongo()["items"].count_documents({"$expr": {"$ne": ["$n", {"$add": ["$_id", REVISIONS]}]}})
        if self.kind == "milvus":
            from ragrev.config import StoreConfig
            from ragrev.stores import open_store

            s = open_store(StoreConfig("vectors", f"milvus-lite:///{self.path}", "milvus", {}))
            s.connect()
            try:
                rows = s.c.query("items", filter="id >= 0", output_fields=["id", "n"], limit=ROWS + 100)
            finally:
                s.close()
            return sum(r["n"] != r["id"] + REVISIONS for r in rows) + abs(len(rows) - ROWS)
        import sqlalchemy as sa

        with self._sql().connect() as c:
            return c.execute(sa.text(f"SELECT COUNT(*) FROM items WHERE n <> id + {REVISIONS}")).scalar() + \
                abs(c.execute(sa.text("SELECT COUNT(*) FROM items")).scalar() - ROWS)

    def _mongo(self):
        import pymongo

        if self._engine is None:
            self._engine = pymongo.MongoClient(self.mongo_uri, serverSelectionTimeoutMS=3000)
        return self._engine[self.db_name]

    def _sql(self):
        import sqlalchemy as sa

        if self._engine is None:
            self._engine = sa.create_engine(self.url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            if self.kind == "mongo":
                self._engine.drop_database(self.db_name)
                self._engine.close()
            else:
                self._engine.dispose()
        if self.kind == "postgresql":
            import sqlalchemy as sa

            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
            admin.dispose()


def _lines(err: str) -> list[str]:
    """The lines a runner said, less JSON progress and the "waiting" notices."""
    return [ln for ln in err.splitlines()
            if ln.strip() and not ln.lstrip().startswith("{") and not ln.startswith("ragrev: waiting: ")]


def trial(target: Target, pause_after: float, cont_during_b: bool) -> tuple[list[str], str]:
    """One trial; (problems, what happened)."""
    import subprocess

    def run(*args):
        proc = start(target.config, *args)
        out, err = proc.communicate(timeout=300)
        return proc.returncode, err

    code, err = run("upgrade", "p0")
    if code != 0:
        return [f"seeding failed: {err.strip()[-300:]}"], "-"
    a = start(target.config, "upgrade", "head")
    b = None
    took_over = False
    try:
        wait_until(lambda: target.owner_pid() == a.pid or a.poll() is not None, timeout=120, what="A's lease")
        time.sleep(pause_after)
        if a.poll() is not None:
            a_out, a_err = a.communicate()
            return ([] if a.returncode == 0 else [f"A exited {a.returncode}: {_lines(a_err)[-1:]}"]), "A done before the pause"
        a.send_signal(signal.SIGSTOP)
        time.sleep(LEASE + 0.5)
        b = start(target.config, "upgrade", "head")
        if cont_during_b:
            try:
                wait_until(lambda: target.owner_pid() == b.pid or b.poll() is not None, timeout=60, what="B")
            except AssertionError:
                pass
            took_over = target.owner_pid() == b.pid
            a.send_signal(signal.SIGCONT)
            b_out, b_err = b.communicate(timeout=300)
        else:
            b_out, b_err = b.communicate(timeout=300)
            took_over = "Upgraded" in b_out
            a.send_signal(signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        return ["a runner hung"], "hung"
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
    problems = []
    took_over = took_over or "Upgraded" in b_out and b.returncode == 0 and "Upgraded" in a_out
    for name, proc, err in (("A", a, a_err), ("B", b, b_err)):
        lines = _lines(err)
        if proc.returncode not in (0, 3):
            problems.append(f"{name} exited {proc.returncode}: {lines[-1:]}")
        if "Traceback" in err:
            problems.append(f"{name} printed a traceback")
        if proc.returncode == 3 and len(lines) != 1:
            problems.append(f"{name} exited 3 with {len(lines)} lines: {lines[:3]}")
    if took_over and not (a.returncode == 3 and f":{b.pid}:" in a_err):
        problems.append(f"B took over but A exited {a.returncode}: {_lines(a_err)[-1:]}")
    code, err = run("upgrade", "head")
    if code != 0:
        problems.append(f"final upgrade exited {code}: {_lines(err)[-1:]}")
    wrong = target.wrong()
    if wrong:
        problems.append(f"{wrong} rows not at n+{REVISIONS}")
    what = f"A exit {a.returncode}, B exit {b.returncode}" + (" (B took over)" if took_over else "")
    return problems, what


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.pause", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS), help="store kinds to cycle through")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    kinds = [k for k in args.kinds.split(",") if k]
    workdir = Path(tempfile.mkdtemp(prefix="ragrev-pause-"))
    mongo_uri = owned = None
    if "mongo" in kinds:
        from ragrev.drivers.mongo import secantus

        mongo_uri, owned = secantus.acquire(str(workdir / "secantus"), "pause-harness")
    passed = 0
    try:
        for i in range(args.trials):
            kind = kinds[i % len(kinds)]
            pause_after = round(rng.uniform(0.2, 3.0), 2)
            cont_during_b = kind == "postgresql" or rng.random() < 0.5  # B waits on A's row locks there
            target = Target(kind, workdir / f"trial-{i:03d}", mongo_uri)
            start_t = time.monotonic()
            try:
                problems, what = trial(target, pause_after, cont_during_b)
            finally:
                target.close()
            ok = not problems
            passed += ok
            print(f"trial {i:3d} {kind:10s} pause after {pause_after:4.2f}s, continue "
                  f"{'during' if cont_during_b else 'after '} B: {what} "
                  f"[{time.monotonic() - start_t:.0f}s] {'ok' if ok else 'FAILED: ' + '; '.join(problems)}", flush=True)
            if ok:
                shutil.rmtree(target.root, ignore_errors=True)
    finally:
        if mongo_uri is not None:
            from ragrev.drivers.mongo import secantus

            secantus.release(str(workdir / "secantus"), owned)
    print(f"{passed}/{args.trials} trials passed (seed {args.seed})")
    return 0 if passed == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
