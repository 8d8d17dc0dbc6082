"""What a downgrade of a data load costs next to its upgrade.

One revision creates a Milvus collection and a MongoDB collection and loads
``--rows`` vectors and ``--rows`` documents into them (rows from a function
in the revision, as they usually come: from a file, a generator). Each round
runs, in a fresh project and fresh stores (Milvus Lite, or ``--milvus-uri``;
an embedded SecantusDB, or ``--mongo-uri``), ``upgrade head`` then
``downgrade base``, each timed as a command is: from opening the stores to
closing them. The ratio is the downgrade's time / the upgrade's.

Two forms of the revision are measured:

- ``derived``: no ``downgrade()``; ragrev derives it from the upgrade (the
  inverses of the inserts, then of the creations);
- ``written``: a ``downgrade()`` that drops both collections, as a person
  would write it.

Goal: the downgrade costs at most 1.5x its upgrade (the issue measured 12.9x
for a derived one). After each downgrade both collections are gone (checked).

    python benchmarks/bench_rollback.py [--rows 20000] [--dim 32] [--rounds 3] [--milvus-uri milvus://HOST:PORT]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: the rows the revision loads (made before the timing: the revision reads them here)
VECTORS: list = []
DOCS: list = []

REVISION = '''"""load"""
import __main__

revision = "r1"
down_revision = None


def vectors():
    return __main__.VECTORS


def docs():
    return __main__.DOCS


def upgrade(op):
    op.vectors.create_collection("chunks", fields=[
        {{"name": "id", "type": "INT64", "primary": True}},
        {{"name": "text", "type": "VARCHAR", "max_length": 64}},
        {{"name": "vec", "type": "FLOAT_VECTOR", "dim": {dim}}}],
        indexes={{"vec": {{"index_type": "FLAT", "metric_type": "COSINE"}}}})
    op.vectors.insert("chunks", rows=vectors, batch_size={batch})
    op.docs.create_collection("articles")
    op.docs.insert("articles", rows=docs, batch_size={batch})
'''

WRITTEN = '''

def downgrade(op):
    op.docs.drop_collection("articles")
    op.vectors.drop_collection("chunks")
'''


def make_rows(n: int, dim: int) -> None:
    import numpy as np

    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    VECTORS[:] = [{"id": i, "text": f"passage {i}", "vec": v[i].tolist()} for i in range(n)]
    DOCS[:] = [{"_id": i, "title": f"article {i}", "body": "lorem ipsum " * 20, "tags": ["a", "b"]} for i in range(n)]


def one_round(work: Path, form: str, args) -> tuple[float, float]:
    """(upgrade seconds, downgrade seconds) of one fresh project."""
    import logging

    from ragrev.config import load_config
    from ragrev.runner import Runner

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    proj = work / f"{form}-{uuid.uuid4().hex[:8]}"
    (proj / "revisions").mkdir(parents=True)
    name = "rb_" + uuid.uuid4().hex[:10]
    if args.milvus_uri:
        from pymilvus import MilvusClient

        http = args.milvus_uri.replace("milvus://", "http://")
        MilvusClient(uri=http).create_database(name)
        vectors_url = f"{args.milvus_uri}/{name}"
    else:
        vectors_url = f"milvus-lite:///{proj / 'vectors.db'}"
    docs_url = f"{args.mongo_uri.rstrip('/')}/" if args.mongo_uri else f"secantus:///{proj / 'docs'}"
    docs_db = f'database = "{name}"\n' if args.mongo_uri else ""
    (proj / "ragrev.toml").write_text(f'[ragrev]\nscript_location = "revisions"\n\n'
                                      f'[stores.vectors]\nurl = "{vectors_url}"\n\n'
                                      f'[stores.docs]\nurl = "{docs_url}"\n{docs_db}')
    text = REVISION.format(dim=args.dim, batch=args.batch) + (WRITTEN if form == "written" else "")
    (proj / "revisions" / "r1.py").write_text(text)
    config = load_config(proj / "ragrev.toml")

    def timed(direction: str, target: str, check) -> float:
        start = time.perf_counter()
        runner = Runner(config)
        try:
            runner.run(direction, target)
            seconds = time.perf_counter() - start
            check(runner.stores)
        finally:
            runner.close()
        return seconds

    def loaded(stores):
        assert stores["vectors"].count("chunks") == args.rows, "vectors not loaded"
        assert stores["docs"].db["articles"].count_documents({}) == args.rows, "documents not loaded"

    def gone(stores):
        assert stores["vectors"].resolve("chunks") is None, "the vector collection is still there"
        assert "articles" not in stores["docs"].db.list_collection_names(), "the document collection is still there"

    # ragrev's own collections, made once per store, are made by this first open, not timed
    Runner(config).close()
    up = timed("up", "head", loaded)
    down = timed("down", "base", gone)
    if args.milvus_uri:
        from pymilvus import MilvusClient

        c = MilvusClient(uri=http, db_name=name)
        for coll in c.list_collections():
            c.drop_collection(coll)
        c.close()
        MilvusClient(uri=http).drop_database(name)
    if args.mongo_uri:
        import pymongo

        pymongo.MongoClient(args.mongo_uri).drop_database(name)
    shutil.rmtree(proj, ignore_errors=True)
    return up, down


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forms", default="derived,written")
    ap.add_argument("--milvus-uri", help="milvus://host:port (default: Milvus Lite)")
    ap.add_argument("--mongo-uri", help="mongodb://host:port/ (default: an embedded SecantusDB)")
    args = ap.parse_args()
    make_rows(args.rows, args.dim)
    import ragrev.drivers.milvus.store  # noqa: F401  (imports out of the timing)
    import ragrev.drivers.mongo.store  # noqa: F401

    forms = [f for f in ("derived", "written") if f in args.forms.split(",")]
    where = f"Milvus {args.milvus_uri or 'Lite'}, MongoDB {args.mongo_uri or 'SecantusDB embedded'}"
    print(f"{args.rows} vectors (dim {args.dim}) + {args.rows} documents, batch {args.batch}; {where}")
    print(f"{'form':8} {'upgrade s':>10} {'downgrade s':>12} {'ratio':>6}")
    work = Path(tempfile.mkdtemp(prefix="ragrev-bench-rollback-"))
    times: dict = {f: ([], []) for f in forms}
    try:
        for i in range(args.rounds):
            for form in (forms if i % 2 == 0 else forms[::-1]):
                up, down = one_round(work, form, args)
                times[form][0].append(up)
                times[form][1].append(down)
                print(f"{form:8} {up:>10.2f} {down:>12.2f} {down / up:>6.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for form in forms:
        up, down = statistics.median(times[form][0]), statistics.median(times[form][1])
        print(f"{form}: median upgrade {up:.2f} s, downgrade {down:.2f} s, ratio {down / up:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
