"""ragrev's ``insert`` and ``copy`` against the hand-written pymilvus loop, on one Milvus server.

Each measurement runs in its own process, in a fresh database of the server
(created and dropped here; for ``copy``, holding a ``src`` collection of
``--rows`` rows: INT64 key, a VARCHAR ``text``, a FLOAT_VECTOR ``vec``), and
reports rows per second (from opening the store to the last row written)
and the process's peak RSS:

- ``ragrev insert`` / ``ragrev insert-list`` / ``ragrev copy``: a revision
  applied by the runner (planning, preflight, lease, journal with a
  checkpoint per batch; ragrev's own collections, made once per store, exist
  before the timing starts). ``insert`` creates a collection and writes
  ``--rows`` rows returned by a function (as rows usually come: from a file,
  a generator); ``insert-list`` gives the same rows as a list in the
  revision, which ragrev hashes (the step's checksum) like any parameter;
- ``pymilvus``: ``create_collection(index_params=)`` and ``insert`` per
  batch of the same size; for the copy, pages of ``id > last`` in
  primary-key order + ``insert`` (what ragrev does inside, minus journaling).

The rows to insert are made before the timing, in each process. Who goes
first alternates between rounds; the medians are compared. Goals: rows/s
ratio ragrev / pymilvus >= 0.95, peak RSS ratio <= 1.1.

    python benchmarks/bench_milvus_server.py --uri milvus://127.0.0.1:19530 [--rows 20000] [--dim 32] [--batch 1000] [--rounds 3] [--tasks insert,insert-list,copy]

A server: ``.ci/milvus_server.py`` runs PyPI's ``milvus`` on free ports.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the rows of the insert tasks, made by the worker before the timing (the revision reads them here)
ROWS: list = []


def rows_of(n: int, dim: int, start: int = 0) -> list[dict]:
    import numpy as np

    v = np.random.default_rng(start).normal(size=(n, dim)).astype(np.float32)
    return [{"id": start + i, "text": f"passage {start + i}", "vec": v[i].tolist()} for i in range(n)]


def schema(client, dim: int):
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=64)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
    return s, ip


FIELDS = '''[{"name": "id", "type": "INT64", "primary": True}, {"name": "text", "type": "VARCHAR", "max_length": 64},
         {"name": "vec", "type": "FLOAT_VECTOR", "dim": %d}]'''


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- the databases (made and dropped by the parent) ----------------------------------------

def make_database(http: str, copy: bool, rows: int, dim: int) -> str:
    from pymilvus import MilvusClient

    name = "bench_" + uuid.uuid4().hex[:10]
    admin = MilvusClient(uri=http)
    admin.create_database(name)
    admin.close()
    if copy:
        c = MilvusClient(uri=http, db_name=name)
        s, ip = schema(c, dim)
        c.create_collection("src", schema=s, index_params=ip, consistency_level="Strong")
        for i in range(0, rows, 10_000):
            c.insert("src", rows_of(min(10_000, rows - i), dim, i))
        c.flush("src")
        c.close()
    return name


def drop_database(http: str, name: str) -> None:
    from pymilvus import MilvusClient

    c = MilvusClient(uri=http, db_name=name)
    for alias in c.list_aliases().get("aliases", []):
        c.drop_alias(alias)
    for coll in c.list_collections():
        c.drop_collection(coll)
    c.close()
    admin = MilvusClient(uri=http)
    admin.drop_database(name)
    admin.close()


# --- workers (one process each) ------------------------------------------------------------

def ragrev_side(uri: str, db: str, task: str, dim: int, batch: int) -> dict:
    from ragrev.config import load_config
    from ragrev.runner import Runner
    from ragrev.stores import open_store

    proj = Path(tempfile.mkdtemp())
    (proj / "revisions").mkdir()
    (proj / "ragrev.toml").write_text(f'[ragrev]\nscript_location = "revisions"\n\n'
                                      f'[stores.vectors]\nurl = "{uri}/{db}"\n')
    if task.startswith("insert"):
        rows = "rows" if task == "insert" else "__main__.ROWS"
        body = (f'def rows():  # as rows usually come: from a function (a file, a generator)\n'
                f'    return __main__.ROWS\n\n\ndef upgrade(op):\n'
                f'    op.vectors.create_collection("dst", fields={FIELDS % dim}, '
                f'indexes={{"vec": {{"index_type": "FLAT", "metric_type": "COSINE"}}}})\n'
                f'    op.vectors.insert("dst", rows={rows}, batch_size={batch})\n')
    else:
        body = f'def upgrade(op):\n    op.vectors.copy("src", "dst", batch_size={batch})\n'
    (proj / "revisions" / "b1.py").write_text(f'"""bench"""\nimport __main__\n\nrevision = "b1"\n'
                                              f'down_revision = None\n\n\n{body}')
    config = load_config(proj / "ragrev.toml")
    store = open_store(config.store("vectors"))  # ragrev's own collections: made once per store, not timed
    store.connect()
    store.ensure_meta()
    store.close()
    start = time.perf_counter()
    runner = Runner(config)
    runner.run("up", "head")
    seconds = time.perf_counter() - start
    count = runner.stores["vectors"].count("dst")
    peak = rss_mb()
    runner.close()
    return {"seconds": seconds, "rows": count, "rss_mb": peak}


def pymilvus_side(http: str, db: str, task: str, dim: int, batch: int) -> dict:
    from pymilvus import MilvusClient

    start = time.perf_counter()
    c = MilvusClient(uri=http, db_name=db)
    s, ip = schema(c, dim)
    c.create_collection("dst", schema=s, index_params=ip, consistency_level="Strong")
    if task.startswith("insert"):
        for i in range(0, len(ROWS), batch):
            c.insert("dst", ROWS[i:i + batch])
    else:
        last = None
        while True:
            page = c.query("src", filter="" if last is None else f"id > {last}", output_fields=["*"],
                           limit=batch, iterator="True", reduce_stop_for_best="True")
            if not page:
                break
            c.insert("dst", page)
            last = page[-1]["id"]
    seconds = time.perf_counter() - start
    count = c.query("dst", filter="", output_fields=["count(*)"])[0]["count(*)"]
    peak = rss_mb()
    c.close()
    return {"seconds": seconds, "rows": count, "rss_mb": peak}


def measure(args, http: str, side: str, task: str) -> dict:
    db = make_database(http, task == "copy", args.rows, args.dim)
    try:
        out = subprocess.run([sys.executable, __file__, "--uri", args.uri, "--worker", side, "--task", task,
                              "--db", db, "--rows", str(args.rows), "--dim", str(args.dim), "--batch", str(args.batch)],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        drop_database(http, db)
    if out.returncode:
        raise SystemExit(f"{side} {task} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rows"] != args.rows:
        raise SystemExit(f"{side} {task}: {result['rows']} rows written, expected {args.rows}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", required=True, help="milvus://host:port")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tasks", default="insert,insert-list,copy")
    ap.add_argument("--worker", choices=["ragrev", "pymilvus"])
    ap.add_argument("--task", choices=["insert", "insert-list", "copy"])
    ap.add_argument("--db")
    args = ap.parse_args()
    http = args.uri.replace("milvus://", "http://")
    if args.worker:
        import logging

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        if args.task.startswith("insert"):
            ROWS[:] = rows_of(args.rows, args.dim)
        import ragrev.drivers.milvus.store  # noqa: F401  (imports out of the timing, as the other side's)
        result = (ragrev_side(args.uri, args.db, args.task, args.dim, args.batch) if args.worker == "ragrev"
                  else pymilvus_side(http, args.db, args.task, args.dim, args.batch))
        print(json.dumps(result))
        return
    from pymilvus import MilvusClient

    version = MilvusClient(uri=http).get_server_version()
    print(f"Milvus server {version} at {args.uri}: {args.rows} rows, dim {args.dim}, batch {args.batch}, "
          f"{args.rounds} round(s)")
    print(f"{'task':11} {'side':9} {'rows/s':>9} {'peak RSS MB':>12}", flush=True)
    tasks = [t for t in ("insert", "insert-list", "copy") if t in args.tasks.split(",")]
    results: dict = {}
    for i in range(args.rounds):
        for task in tasks:
            for side in (("ragrev", "pymilvus") if i % 2 == 0 else ("pymilvus", "ragrev")):
                r = measure(args, http, side, task)
                results.setdefault((task, side), []).append(r)
                print(f"{task:11} {side:9} {args.rows / r['seconds']:>9.0f} {r['rss_mb']:>12.1f}", flush=True)
    print()
    for task in tasks:
        speed = {s: statistics.median(args.rows / r["seconds"] for r in results[(task, s)]) for s in ("ragrev", "pymilvus")}
        rss = {s: statistics.median(r["rss_mb"] for r in results[(task, s)]) for s in ("ragrev", "pymilvus")}
        print(f"{task:11} ragrev {speed['ragrev']:8.0f} rows/s   pymilvus {speed['pymilvus']:8.0f} rows/s   "
              f"ratio {speed['ragrev'] / speed['pymilvus']:.2f} (goal >= 0.95)   peak RSS ratio "
              f"{rss['ragrev'] / rss['pymilvus']:.2f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
