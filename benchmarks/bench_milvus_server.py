"""ragrev's ``insert`` and ``copy`` against the hand-written pymilvus loop, on one Milvus server.

Each measurement runs in a fresh database of the server (created and dropped
here), holding a ``src`` collection of ``--rows`` rows (INT64 key, a
FLOAT_VECTOR ``vec``, a VARCHAR ``text``), and reports rows per second:

- ``ragrev insert`` / ``ragrev copy``: a revision applied by the runner
  (planning, preflight, lease, journal with a checkpoint per batch; ragrev's
  own collections, made once per store, exist before the timing starts);
- ``pymilvus``: the same rows written by ``insert`` in batches, and for the
  copy pages of ``id > last`` in primary-key order + ``insert`` (what ragrev
  does inside, minus journaling).

The two sides alternate, ``--rounds`` times, and the medians are compared.

    python benchmarks/bench_milvus_server.py --uri milvus://127.0.0.1:19530 [--rows 20000] [--batch 1000]

A server: ``.ci/milvus_server.py`` runs PyPI's ``milvus`` on free ports.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def rows_of(n: int, dim: int) -> list[dict]:
    import numpy as np

    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return [{"id": i, "text": f"passage {i}", "vec": v[i].tolist()} for i in range(n)]


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


class Database:
    def __init__(self, http: str):
        from pymilvus import MilvusClient

        self.name = "bench_" + uuid.uuid4().hex[:10]
        admin = MilvusClient(uri=http)
        admin.create_database(self.name)
        admin.close()
        self.client = MilvusClient(uri=http, db_name=self.name)

    def drop(self, http: str) -> None:
        from pymilvus import MilvusClient

        for alias in self.client.list_aliases(db_name=self.name).get("aliases", []):
            self.client.drop_alias(alias)
        for c in self.client.list_collections():
            self.client.drop_collection(c)
        self.client.close()
        admin = MilvusClient(uri=http)
        admin.drop_database(self.name)
        admin.close()


def with_src(db: Database, rows: list[dict], dim: int, batch: int) -> None:
    s, ip = schema(db.client, dim)
    db.client.create_collection("src", schema=s, index_params=ip, consistency_level="Strong")
    for i in range(0, len(rows), batch):
        db.client.insert("src", rows[i:i + batch])


def ragrev_side(uri: str, db: Database, task: str, rows: list[dict], dim: int, batch: int) -> float:
    from ragrev.config import load_config
    from ragrev.runner import Runner

    proj = Path(tempfile.mkdtemp())
    (proj / "revisions").mkdir()
    (proj / "ragrev.toml").write_text(f'[ragrev]\nscript_location = "revisions"\n\n'
                                      f'[stores.vectors]\nurl = "{uri}/{db.name}"\n')
    if task == "insert":
        body = (f'import json\nROWS = json.load(open({str(proj / "rows.json")!r}))\n\n\ndef upgrade(op):\n'
                f'    op.vectors.create_collection("dst", fields={FIELDS % dim}, indexes={{"vec": {{"index_type": "FLAT", "metric_type": "COSINE"}}}})\n'
                f'    op.vectors.insert("dst", rows=ROWS, batch_size={batch})\n')
        import json

        (proj / "rows.json").write_text(json.dumps(rows))
    else:
        body = f'def upgrade(op):\n    op.vectors.copy("src", "dst", batch_size={batch})\n'
    (proj / "revisions" / "b1.py").write_text(f'"""bench"""\nrevision = "b1"\ndown_revision = None\n\n\n{body}')
    config = load_config(proj / "ragrev.toml")
    from ragrev.stores import open_store

    store = open_store(config.store("vectors"))  # ragrev's own collections: made once per store, not timed
    store.connect()
    store.ensure_meta()
    store.close()
    start = time.perf_counter()
    runner = Runner(config)
    runner.run("up", "head")
    seconds = time.perf_counter() - start
    assert runner.stores["vectors"].count("dst") == len(rows)
    runner.close()
    return seconds


def pymilvus_side(db: Database, task: str, rows: list[dict], dim: int, batch: int) -> float:
    c = db.client
    start = time.perf_counter()
    s, ip = schema(c, dim)
    c.create_collection("dst", schema=s, index_params=ip, consistency_level="Strong")
    if task == "insert":
        for i in range(0, len(rows), batch):
            c.insert("dst", rows[i:i + batch])
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
    assert c.query("dst", filter="", output_fields=["count(*)"])[0]["count(*)"] == len(rows)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", required=True, help="milvus://host:port")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    http = args.uri.replace("milvus://", "http://")
    rows = rows_of(args.rows, args.dim)
    from pymilvus import MilvusClient

    version = MilvusClient(uri=http).get_server_version()
    print(f"Milvus server {version} at {args.uri}: {args.rows} rows, dim {args.dim}, batch {args.batch}, "
          f"{args.rounds} round(s)")
    for task in ("insert", "copy"):
        times = {"ragrev": [], "pymilvus": []}
        for _ in range(args.rounds):
            for side in ("ragrev", "pymilvus"):
                db = Database(http)
                try:
                    if task == "copy":
                        with_src(db, rows, args.dim, args.batch)
                    times[side].append(ragrev_side(args.uri, db, task, rows, args.dim, args.batch) if side == "ragrev"
                                       else pymilvus_side(db, task, rows, args.dim, args.batch))
                finally:
                    db.drop(http)
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: args.rows / v for k, v in med.items()}
        print(f"{task:6}  ragrev {rate['ragrev']:8.0f} rows/s   pymilvus {rate['pymilvus']:8.0f} rows/s   "
              f"ratio {rate['ragrev'] / rate['pymilvus']:.2f}")


if __name__ == "__main__":
    main()
