"""ragrev's ``insert``, ``copy`` and ``reembed`` against hand-written pymilvus loops, on Milvus Lite.

Builds one Milvus Lite store with a ``src`` collection of ``--rows`` rows (an
INT64 key, a FLOAT_VECTOR ``vec`` and an ARRAY<FLOAT> ``raw`` holding the
vector the re-embedding reads through ``ragrev.embeddings.identity``, so no
model cost hides the machinery). Every measurement runs in its own fresh
process on its own copy of that store (``insert``: on an empty store), and
reports its rows per second (from opening the store to the last row
written), its peak RSS and (``insert``) the store's size on disk once closed:

- ``ragrev insert``: a revision ``create_collection`` + ``insert(rows=f)``
  of ``--rows`` rows made before the timing (an INT64 key, a VARCHAR, the
  vector), returned by a function ``f`` (as rows usually come: from a file,
  a generator); ``ragrev insert-list``: the same rows given as a list
  (``rows=ROWS``), which ragrev hashes (the step's checksum) and describes
  (plans, logs) like any other parameter; ``pymilvus loop``:
  ``create_collection(index_params=...)`` and ``insert`` per batch, as a
  user would write it;
- ``ragrev copy`` / ``ragrev reembed``: a revision applied by the runner
  (planning, preflight, lease, journal with a checkpoint per batch, alias
  switch for the re-embedding);
- ``pymilvus iterator``: the documented idiom, ``query_iterator`` + ``insert``;
- ``pymilvus pk-cursor``: the fastest loop found for Milvus Lite, pages of
  ``id > last`` in primary-key order + ``insert`` (what ragrev does inside,
  minus journaling) — the baseline the goals are measured against.

Goals: rows/s ratio ragrev/hand-written >= 0.95 (insert) / 0.9, peak RSS
ratio <= 1.1, data on disk ratio <= 1.1.

    python benchmarks/bench_milvus.py [--rows 100000] [--dim 32] [--batch 1000] [--rounds 1] [--tasks insert,copy,reembed]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


#: the rows of the insert task, made by the worker before the timing (the revision reads them here)
ROWS: list = []


def insert_rows(n: int, dim: int) -> list[dict]:
    import numpy as np

    v = np.random.default_rng(1).normal(size=(n, dim)).astype(np.float32)
    return [{"id": i, "text": f"passage {i}", "vec": v[i].tolist()} for i in range(n)]


INSERT_FIELDS = ('[{"name": "id", "type": "INT64", "primary": True}, '
                 '{"name": "text", "type": "VARCHAR", "max_length": 64}, {"name": "vec", "type": "FLOAT_VECTOR", "dim": %d}]')


# --- the store ------------------------------------------------------------------------------

def build(db: Path, rows: int, dim: int) -> None:
    import numpy as np
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(db))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("raw", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=dim)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
    client.create_collection("src", schema=schema, index_params=ip)
    rng = np.random.default_rng(0)
    for start in range(0, rows, 10_000):
        v = rng.normal(size=(min(10_000, rows - start), dim)).astype(np.float32)
        client.insert("src", [{"id": start + i, "raw": x.tolist(), "vec": x.tolist()} for i, x in enumerate(v)])
    client.close()


# --- workers (one process each) ------------------------------------------------------------

def worker_ragrev(db: Path, task: str, batch: int, dim: int) -> dict:
    proj = db.parent / "proj"
    (proj / "revisions").mkdir(parents=True)
    (proj / "ragrev.toml").write_text(f'[ragrev]\nscript_location = "revisions"\n\n'
                                      f'[stores.vectors]\nurl = "milvus-lite:///{db}"\n')
    rows = "rows" if task == "insert" else "__main__.ROWS"
    step = (f'op.vectors.copy("src", "dst", batch_size={batch})' if task == "copy" else
            f'op.vectors.reembed("src", "raw", embed=identity({dim}), dim={dim}, batch_size={batch})'
            if task == "reembed" else
            f'op.vectors.create_collection("dst", fields={INSERT_FIELDS % dim}, '
            f'indexes={{"vec": {{"index_type": "FLAT", "metric_type": "COSINE"}}}})\n'
            f'    op.vectors.insert("dst", rows={rows}, batch_size={batch})')
    (proj / "revisions" / "b1.py").write_text(
        f'"""bench"""\nimport __main__\nfrom ragrev.embeddings import identity\n\nrevision = "b1"\n'
        f'down_revision = None\n\n\ndef rows():  # as rows usually come: from a function (a file, a generator)\n'
        f'    return __main__.ROWS\n\n\ndef upgrade(op):\n    {step}\n')
    import ragrev.embeddings  # noqa: F401  (imports out of the timing, as the hand-written side's)
    import ragrev.drivers.milvus.store  # noqa: F401
    from ragrev.config import load_config
    from ragrev.runner import Runner

    config = load_config(proj / "ragrev.toml")
    start = time.perf_counter()
    runner = Runner(config)
    runner.run("up", "head")
    seconds = time.perf_counter() - start
    store = runner.stores["vectors"]
    count = store.count("src" if task == "reembed" else "dst")
    peak = rss_mb()  # before close: closing Milvus Lite flushes its memory tables (the other side never does)
    runner.close()
    return {"seconds": seconds, "rows": count, "rss_mb": peak, "disk_mb": disk_mb(db)}


def _target_schema(client, task: str, dim: int):
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("raw", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=dim)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
    return schema, ip


def worker_pymilvus(db: Path, task: str, batch: int, dim: int, style: str) -> dict:
    from pymilvus import MilvusClient

    from ragrev.embeddings import identity

    embed = identity(dim)
    if task.startswith("insert"):
        return insert_pymilvus(db, batch, dim)
    start = time.perf_counter()
    client = MilvusClient(str(db))
    client.load_collection("src")
    target = "dst" if task == "copy" else "src_v2"
    schema, ip = _target_schema(client, task, dim)
    client.create_collection(target, schema=schema, index_params=ip)

    def write(rows):
        if task == "reembed":
            for row, vec in zip(rows, embed([r["raw"] for r in rows])):
                row["vec"] = vec
        client.insert(target, rows)

    if style == "iterator":
        it = client.query_iterator("src", batch_size=batch, output_fields=["*"])
        while rows := it.next():
            write(rows)
        it.close()
    else:
        last = None
        while True:
            rows = client.query("src", filter="" if last is None else f"id > {last}", output_fields=["*"],
                                limit=batch, iterator="True", reduce_stop_for_best="True")
            if not rows:
                break
            write(rows)
            last = rows[-1]["id"]
    if task == "reembed":
        client.rename_collection("src", "src_old")
        client.create_alias(target, "src")
    seconds = time.perf_counter() - start
    count = client.query(target, filter="", output_fields=["count(*)"])[0]["count(*)"]
    peak = rss_mb()
    client.close()
    return {"seconds": seconds, "rows": count, "rss_mb": peak, "disk_mb": disk_mb(db)}


def insert_pymilvus(db: Path, batch: int, dim: int) -> dict:
    from pymilvus import DataType, MilvusClient

    start = time.perf_counter()
    client = MilvusClient(str(db))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
    client.create_collection("dst", schema=schema, index_params=ip)
    for i in range(0, len(ROWS), batch):
        client.insert("dst", ROWS[i:i + batch])
    seconds = time.perf_counter() - start
    count = client.query("dst", filter="", output_fields=["count(*)"])[0]["count(*)"]
    peak = rss_mb()
    client.close()
    return {"seconds": seconds, "rows": count, "rss_mb": peak, "disk_mb": disk_mb(db)}


# --- driver ---------------------------------------------------------------------------------

def measure(template: Path, work: Path, side: str, task: str, args) -> dict:
    run = work / f"{side}-{task}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    if task.startswith("insert"):
        (run / "store.db").mkdir()
    else:
        shutil.copytree(template, run / "store.db")
    out = subprocess.run([sys.executable, __file__, "--worker", side, "--task", task, "--db", str(run / "store.db"),
                          "--batch", str(args.batch), "--dim", str(args.dim), "--rows", str(args.rows)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise SystemExit(f"{side} {task} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rows"] != args.rows:
        raise SystemExit(f"{side} {task}: {result['rows']} rows written, expected {args.rows}")
    shutil.rmtree(run, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tasks", default="insert,copy,reembed")
    ap.add_argument("--worker", choices=["ragrev", "iterator", "pk-cursor", "loop"])
    ap.add_argument("--task", choices=["insert", "insert-list", "copy", "reembed"])
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.worker:
        import logging

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        db = Path(args.db)
        if args.task.startswith("insert"):
            ROWS[:] = insert_rows(args.rows, args.dim)
        if args.worker == "ragrev":
            result = worker_ragrev(db, args.task, args.batch, args.dim)
        else:
            result = worker_pymilvus(db, args.task, args.batch, args.dim, args.worker)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="ragrev-bench-milvus-"))
    try:
        template = work / "template.db"
        tasks = [t for t in ("insert", "insert-list", "copy", "reembed") if t in args.tasks.split(",")]
        if set(tasks) - {"insert", "insert-list"}:
            print(f"building {args.rows} rows (dim {args.dim}) ...", flush=True)
            out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                                  f"from benchmarks.bench_milvus import build; from pathlib import Path; "
                                  f"build(Path({str(template)!r}), {args.rows}, {args.dim})"],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
        sides = {"insert": ("ragrev", "loop"), "insert-list": ("ragrev", "loop"), "copy": ("ragrev", "pk-cursor", "iterator"),
                 "reembed": ("ragrev", "pk-cursor", "iterator")}
        print(f"{'task':11} {'side':18} {'rows/s':>10} {'peak RSS MB':>12} {'disk MB':>8}")
        results: dict = {}
        for i in range(args.rounds):
            for task in tasks:
                order = sides[task] if i % 2 == 0 else sides[task][::-1]  # who goes first alternates
                for side in order:
                    r = measure(template, work, side, task, args)
                    results.setdefault((task, side), []).append(r)
                    print(f"{task:11} {side:18} {args.rows / r['seconds']:>10.0f} {r['rss_mb']:>12.1f} "
                          f"{r['disk_mb']:>8.1f}", flush=True)
        print()
        for task in tasks:
            med = {side: {k: statistics.median(r[k] if k != "speed" else args.rows / r["seconds"]
                                               for r in results[(task, side)]) for k in ("speed", "rss_mb", "disk_mb")}
                   for side in sides[task]}
            for base in sides[task][1:]:
                speed = med["ragrev"]["speed"] / med[base]["speed"]
                rss = med["ragrev"]["rss_mb"] / med[base]["rss_mb"]
                disk = (f"   disk ratio {med['ragrev']['disk_mb'] / med[base]['disk_mb']:5.2f} (goal <= 1.1)"
                        if task.startswith("insert") else "")
                print(f"{task}: ragrev / pymilvus {base:9}  rows/s ratio {speed:5.2f} "
                      f"(goal >= {0.95 if task.startswith('insert') else 0.9})   peak RSS ratio {rss:5.2f} (goal <= 1.1){disk}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
