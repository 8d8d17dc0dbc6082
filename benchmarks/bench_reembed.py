"""Re-embedding online and at scale (issue 17): each measurement side by side
with its baseline in one run, and their ratio.

- ``catchup``: ``copy`` of ``--rows`` rows on Milvus Lite, plain vs with
  ``catch_up=`` while a writer thread updates rows of the source (the
  catch-up includes its fixed wait of 2 x ``ragrev.dualwrite.MAX_REFRESH``).
- ``dask``: ``reembed`` of ``--rows`` rows single-process vs
  ``workers="local:1"`` vs ``"local:2"``: rows/s, speed-up, and peak RSS
  (the runner's process, or the largest worker's). The embedding has a real
  CPU cost (``--layers`` dense 384x384 layers over ``hashing(384)``
  features: about 0.34 ms a row at the default 40 on one core of this
  machine, a small sentence-embedding model's order; ``--layers 0`` is plain
  ``hashing(64)``, 0.01 ms a row); BLAS runs one thread per process, as in
  Dask's workers, so the processes compare like for like. On Milvus Lite the
  Dask workers are threads of one process (Lite serves one process); with
  ``--milvus-uri`` (a server) they are processes.
- ``bulk``: ``copy`` into a new collection on a Milvus server, inserts vs
  ``bulk=`` (Parquet + ``do_bulk_insert``), for each of ``--sizes``.
- ``merge``: MongoDB (SecantusDB, or ``--mongo-uri``), ``aggregate_into``
  (``$merge`` on the server) vs ``transform`` (documents through Python) on
  ``--rows`` documents.
- ``mergecatchup``: ``aggregate_into`` of ``--rows`` documents on a
  SecantusDB server run as a single-node replica set (change streams; or
  ``--mongo-uri``), plain vs ``catch_up=True`` (default threshold and
  rounds) while a writer thread updates, inserts and deletes source
  documents until the step returns.

    python benchmarks/bench_reembed.py catchup [--rows 50000]
    python benchmarks/bench_reembed.py dask [--rows 200000] [--layers 40] [--milvus-uri milvus://127.0.0.1:19530]
    python benchmarks/bench_reembed.py bulk --milvus-uri milvus://127.0.0.1:19530 [--sizes 100000,1000000]
    python benchmarks/bench_reembed.py merge [--rows 100000]
    python benchmarks/bench_reembed.py mergecatchup [--rows 100000]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy: as Dask's workers
    os.environ.setdefault(_var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragrev.config import StoreConfig  # noqa: E402
from ragrev.context import StepContext  # noqa: E402
from ragrev.plan import Recorder  # noqa: E402
from ragrev.stores import open_store  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(store, build) -> list[dict]:
    rec = Recorder({store.name: store.config})
    build(rec)
    store.preflight(rec.ops)
    out = []
    for op in rec.ops:
        ctx = StepContext(store=store, op=op)
        store.apply(op, ctx)
        out.append(ctx.captured)
    return out


FIELDS = [{"name": "id", "type": "INT64", "primary": True},
          {"name": "text", "type": "VARCHAR", "max_length": 512},
          {"name": "updated_at", "type": "DOUBLE"},
          {"name": "vec", "type": "FLOAT_VECTOR", "dim": 16}]


def fill(store, name: str, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)

    def gen():
        for start in range(0, rows, 10_000):
            v = rng.normal(size=(min(10_000, rows - start), 16)).astype(np.float32)
            for i, x in enumerate(v):
                k = start + i
                yield {"id": k, "text": f"chunk {k} about topic {k % 97} and {k % 13}", "updated_at": 1.0,
                       "vec": x.tolist()}

    run(store, lambda op: (op.vectors.create_collection(name, FIELDS,
                                                         indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}}),
                           op.vectors.insert(name, rows=gen, batch_size=10_000)))


def lite(tmp: str):
    store = open_store(StoreConfig("vectors", f"milvus-lite:///{tmp}/v.db", "milvus"))
    store.connect()
    store.ensure_meta()
    return store


def server(uri: str):
    store = open_store(StoreConfig("vectors", uri, "milvus"))
    store.connect()
    store.ensure_meta()
    return store


def table(rows: list[tuple]) -> None:
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"  {r[0]:<{width}}  " + "  ".join(str(x) for x in r[1:]))


# --- catch-up ---------------------------------------------------------------------------

def bench_catchup(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = lite(tmp)
        fill(store, "src", args.rows)
        t0 = time.perf_counter()
        run(store, lambda op: op.vectors.copy("src", "plain", batch_size=args.batch))
        plain = time.perf_counter() - t0

        stop, writes = threading.Event(), [0]

        def writer():
            w = open_store(store.config)
            w.connect()
            k = 0
            while not stop.is_set():
                keys = [(k + i * 7919) % args.rows for i in range(20)]
                now = time.time()
                w.c.upsert("src", [{"id": key, "text": f"edited {key} {now}", "updated_at": now,
                                    "vec": [0.5] * 16} for key in keys])
                writes[0] += len(keys)
                k += 20
                time.sleep(0.01)
            w.close()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        cap = run(store, lambda op: op.vectors.copy("src", "caught", batch_size=args.batch, catch_up="updated_at"))
        caught = time.perf_counter() - t0
        stop.set()
        thread.join()
        cu = cap[0]["catch_up"]
        print(f"catch-up: copy of {args.rows:,} rows on Milvus Lite; during the second, a writer thread updates "
              f"{writes[0] / caught:,.0f} rows/s of the source (batches of 20 every 10 ms at most)")
        table([("plain copy", f"{plain:.2f} s", f"{args.rows / plain:,.0f} rows/s"),
               ("copy + catch_up", f"{caught:.2f} s", f"{cu['round']} rounds {cu['rounds']}",
                f"deleted {cu.get('deleted', 0)}", f"writer rows {writes[0]:,}")])
        print(f"  ratio catch-up/plain time: {caught / plain:.2f}")
        store.close()


# --- Dask ---------------------------------------------------------------------------------

class DenseEmbedder:
    """A stand-in for a small model: ``hashing(384)`` features through ``layers``
    dense tanh layers (384x384), projected to ``dim``. Its weights are made
    from a seed on first use, so it pickles small for the workers."""

    def __init__(self, dim: int = 64, layers: int = 40, width: int = 384):
        self.dim, self.layers, self.width = dim, layers, width
        self._w = None
        self.__name__ = f"dense(dim={dim}, layers={layers})"

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_feat", "_out")} | {"_w": None}

    def __call__(self, texts):
        import numpy as np

        from ragrev.embeddings import hashing

        if self._w is None:
            rng = np.random.default_rng(17)
            self._feat = hashing(self.width)
            self._w = [rng.normal(scale=self.width ** -0.5, size=(self.width, self.width)).astype(np.float32)
                       for _ in range(self.layers)]
            self._out = rng.normal(scale=self.width ** -0.5, size=(self.width, self.dim)).astype(np.float32)
        x = np.asarray(self._feat(texts), dtype=np.float32)
        for w in self._w:
            x = np.tanh(x @ w)
        y = x @ self._out
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-9)


def bench_dask(args) -> None:
    from ragrev.embeddings import hashing

    tmp = tempfile.mkdtemp()
    store = server(args.milvus_uri) if args.milvus_uri else lite(tmp)
    tag = "d" + uuid.uuid4().hex[:6]
    embed = DenseEmbedder(64, args.layers) if args.layers else hashing(64)
    results = []
    try:
        for mode in (None, "local:1", "local:2"):
            name = f"{tag}_{(mode or 'single').replace(':', '')}"
            fill(store, name, args.rows)
            t0 = time.perf_counter()
            cap = run(store, lambda op: op.vectors.reembed(name, "text", embed, dim=64, batch_size=args.batch,
                                                           workers=mode))[0]
            secs = time.perf_counter() - t0
            peak = cap.get("peak_rss", 0) / 2**20 if mode else rss_mb()
            spent = cap.get("worker_seconds")
            results.append((mode or "single process", secs, peak,
                            "tasks' seconds " + ", ".join(f"{k} {v:.0f}" for k, v in spent.items()) if spent else ""))
    finally:
        if args.milvus_uri:
            for c in store.user_collections() + [c for c in store.c.list_collections() if tag in c]:
                if tag in c:
                    store.c.drop_collection(c)
        store.close()
    where = "a Milvus server (workers are processes)" if args.milvus_uri else "Milvus Lite (workers are threads)"
    print(f"dask: reembed of {args.rows:,} rows with {getattr(embed, '__name__', embed)} on {where} "
          f"(batches of {args.batch})")
    base = results[0][1]
    table([(m, f"{s:.1f} s", f"{args.rows / s:,.0f} rows/s", f"speed-up {base / s:.2f}", f"peak RSS {p:,.0f} MB", w)
           for m, s, p, w in results])


# --- bulk import ----------------------------------------------------------------------------

def bench_bulk(args) -> None:
    if not args.milvus_uri:
        sys.exit("bulk: give --milvus-uri (bulk import needs a Milvus server)")
    store = server(args.milvus_uri)
    tag = "b" + uuid.uuid4().hex[:6]
    print("bulk: copy into a new collection on a Milvus server, inserts vs bulk import")
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            src = f"{tag}_src{n}"
            fill(store, src, n)
            t0 = time.perf_counter()
            run(store, lambda op: op.vectors.copy(src, f"{tag}_ins{n}", batch_size=args.batch))
            ins = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as staging:
                t0 = time.perf_counter()
                run(store, lambda op: op.vectors.copy(src, f"{tag}_bulk{n}", batch_size=args.batch, bulk=staging))
                bulk = time.perf_counter() - t0
            table([(f"{n:,} rows", f"inserts {ins:.1f} s", f"bulk {bulk:.1f} s", f"ratio bulk/inserts {bulk / ins:.2f}")])
    finally:
        for c in store.c.list_collections():
            if tag in c:
                store.c.drop_collection(c)
        store.close()


# --- $merge ----------------------------------------------------------------------------------

def bench_merge(args) -> None:
    import pymongo

    from ragrev.ops import document as m

    owned = None
    if args.mongo_uri:
        uri = args.mongo_uri
    else:
        from ragrev.drivers.mongo import secantus

        path = tempfile.mkdtemp()
        uri, owned = secantus.acquire(path, "bench")
    db_name = "bench_" + uuid.uuid4().hex[:6]
    client = pymongo.MongoClient(uri)
    try:
        db = client[db_name]
        for start in range(0, args.rows, 10_000):
            db.chunks.insert_many([{"_id": i, "title": f"chunk {i}", "n": i, "lang": "en" if i % 3 else "fr"}
                                   for i in range(start, min(args.rows, start + 10_000))])
        store = open_store(StoreConfig("docs", uri, "mongo", {"database": db_name}))
        store.connect()

        def apply(op):
            op.store = "docs"
            op.validate()
            store.apply(op, StepContext(store=store, op=op))

        t0 = time.perf_counter()
        apply(m.AggregateInto("chunks", [{"$set": {"title_upper": {"$toUpper": "$title"},
                                                   "n2": {"$multiply": ["$n", 2]}}}], "chunks_v2"))
        server_side = time.perf_counter() - t0
        t0 = time.perf_counter()
        apply(m.Transform("chunks", lambda d: {**d, "title_upper": d["title"].upper(), "n2": d["n"] * 2},
                          batch_size=1000))
        python = time.perf_counter() - t0
        store.close()
        print(f"merge: the same transform of {args.rows:,} documents ({'MongoDB' if args.mongo_uri else 'SecantusDB'})")
        table([("aggregate_into ($merge)", f"{server_side:.2f} s"), ("transform (Python)", f"{python:.2f} s")])
        print(f"  ratio $merge/Python time: {server_side / python:.2f}")
    finally:
        client.drop_database(db_name)
        client.close()
        if owned is not None:
            from ragrev.drivers.mongo import secantus

            secantus.release(path, owned)


def bench_merge_catchup(args) -> None:
    import pymongo

    from ragrev.ops import document as m

    server = None
    if args.mongo_uri:
        uri = args.mongo_uri
    else:  # its own process, as `python -m secantus` runs (a single-node replica set: change streams)
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                                   "--storage-path", tempfile.mkdtemp(), "--cache-size", "512M"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        pymongo.MongoClient(uri, serverSelectionTimeoutMS=60_000).admin.command("ping")
    db_name = "bench_" + uuid.uuid4().hex[:6]
    client = pymongo.MongoClient(uri)
    pipeline = [{"$set": {"title_upper": {"$toUpper": "$title"}, "n2": {"$multiply": ["$n", 2]}}}]
    try:
        db = client[db_name]
        for start in range(0, args.rows, 10_000):
            db.chunks.insert_many([{"_id": i, "title": f"chunk {i}", "n": i}
                                   for i in range(start, min(args.rows, start + 10_000))])
        store = open_store(StoreConfig("docs", uri, "mongo", {"database": db_name}))
        store.connect()

        def apply(op):
            op.store = "docs"
            op.validate()
            ctx = StepContext(store=store, op=op)
            store.apply(op, ctx)
            return ctx.captured

        t0 = time.perf_counter()
        apply(m.AggregateInto("chunks", pipeline, "plain"))
        plain = time.perf_counter() - t0

        stop, writes = threading.Event(), [0]

        def writer():
            c, k = client[db_name].chunks, 0
            while not stop.is_set():
                key = (k * 7919) % args.rows
                if k % 3 == 0:
                    c.update_one({"_id": key}, {"$set": {"title": f"edited {k}"}})
                elif k % 3 == 1:
                    c.insert_one({"_id": args.rows + k, "title": f"new {k}", "n": k})
                else:
                    c.delete_one({"_id": key})
                writes[0] += 1
                k += 1
                time.sleep(0.002)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        cap = apply(m.AggregateInto("chunks", pipeline, "caught", catch_up=True))
        caught = time.perf_counter() - t0
        stop.set()
        thread.join()
        cu = cap["catch_up"]
        store.close()
        print(f"mergecatchup: aggregate_into of {args.rows:,} documents on a SecantusDB replica set; during the "
              f"second, a writer thread made {writes[0]:,} writes ({writes[0] / caught:,.0f}/s: updates, inserts, "
              f"deletes; one every 2 ms at most)")
        table([("aggregate_into", f"{plain:.1f} s"),
               ("aggregate_into + catch_up=True", f"{caught:.1f} s", f"{cu['round']} rounds {cu['rounds']}")])
        print(f"  ratio catch-up/plain time: {caught / plain:.2f}")
    finally:
        client.drop_database(db_name)
        client.close()
        if server is not None:
            server.terminate()
            server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["catchup", "dask", "bulk", "merge", "mergecatchup"])
    ap.add_argument("--rows", type=int)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=40, help="dask: the embedding's dense layers (0: hashing(64))")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--milvus-uri")
    ap.add_argument("--mongo-uri")
    args = ap.parse_args()
    args.rows = args.rows or {"catchup": 50_000, "dask": 200_000, "merge": 100_000,
                                "mergecatchup": 100_000}.get(args.what, 0)
    {"catchup": bench_catchup, "dask": bench_dask, "bulk": bench_bulk, "merge": bench_merge,
     "mergecatchup": bench_merge_catchup}[args.what](args)


if __name__ == "__main__":
    main()
