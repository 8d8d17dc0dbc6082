"""ragrev's ``transform`` and ``add_field`` against hand-written pymongo loops.

On one collection of ``--docs`` documents, in one run, for ``--rounds``
rounds (who goes first alternates between rounds):

- ``transform(fn)`` (batched, resumable: each batch's new documents are saved
  before they are written) vs. the loop a person would write: ``find`` in
  ``_id`` order, ``fn``, ``bulk_write`` of ``ReplaceOne``, same batch size;
- ``add_field(default=)`` (one server-side ``update_many``, plus the ids of
  the changed documents kept for the inverse) vs. a ``bulk_write`` loop of
  ``UpdateOne($set)``;
- ``add_field(fn=)`` (batched, ids kept for the inverse) vs. the same loop
  with the value computed per document.

Prints the median rows/s of each and the ratio ragrev / hand-written (goal:
at least 0.9). The server is ``--uri`` or ``$RAGREV_TEST_MONGO_URI`` when
given, else a SecantusDB started as a separate process (as a production
MongoDB would be; ``--embedded`` runs it inside this process instead).

    python benchmarks/bench_mongo.py [--docs 20000] [--rounds 3] [--batch 1000]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymongo  # noqa: E402
from pymongo import ReplaceOne, UpdateOne  # noqa: E402

from ragrev.config import StoreConfig  # noqa: E402
from ragrev.context import StepContext  # noqa: E402
from ragrev.ops import mongo as m  # noqa: E402
from ragrev.stores import open_store  # noqa: E402


def bump(doc):
    doc["hits"] = doc.get("hits", 0) + 1
    return doc


def slug(doc):
    return doc["title"].lower().replace(" ", "-")


def start_server(embedded: bool, workdir: str):
    """A MongoDB URI and a function stopping the server."""
    if embedded:
        from ragrev.stores import secantus

        uri, owned = secantus.acquire(workdir + "/data", "bench")
        return uri, lambda: secantus.release(workdir + "/data", owned)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "secantus", "--port", str(port), "--storage-path",
                             workdir + "/data", "--standalone", "--log-level", "ERROR"])
    uri = f"mongodb://127.0.0.1:{port}/"
    pymongo.MongoClient(uri, serverSelectionTimeoutMS=30000).admin.command("ping")

    def stop():
        proc.terminate()
        proc.wait(timeout=30)

    return uri, stop


def apply(store, op):
    op.store = store.name
    op.validate()
    return store.apply(op, StepContext(store=store, op=op))


# --- the hand-written loops ---------------------------------------------------------------------

def hand_transform(coll, fn, batch):
    last, n = None, 0
    while True:
        docs = list(coll.find({} if last is None else {"_id": {"$gt": last}}).sort("_id", 1).limit(batch))
        if not docs:
            return n
        coll.bulk_write([ReplaceOne({"_id": d["_id"]}, fn(d)) for d in docs], ordered=False)
        last, n = docs[-1]["_id"], n + len(docs)


def hand_add_field(coll, field, value_of, batch):
    last, n = None, 0
    query = {field: {"$exists": False}}
    while True:
        q = query if last is None else {"$and": [query, {"_id": {"$gt": last}}]}
        docs = list(coll.find(q).sort("_id", 1).limit(batch))
        if not docs:
            return n
        coll.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": {field: value_of(d)}}) for d in docs], ordered=False)
        last, n = docs[-1]["_id"], n + len(docs)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--uri", default=os.environ.get("RAGREV_TEST_MONGO_URI"))
    ap.add_argument("--embedded", action="store_true", help="run SecantusDB inside this process")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        if args.uri:
            uri, stop = args.uri, (lambda: None)
        else:
            uri, stop = start_server(args.embedded, workdir)
        dbname = f"ragrev_bench_{os.getpid()}"
        store = open_store(StoreConfig("bench", uri, "mongo", {"database": dbname, "timeout": "30s"}))
        store.connect()
        try:
            results = run(store, store.db, args)
        finally:
            store.client.drop_database(dbname)
            store.close()
            stop()
    print(f"{args.docs} documents, batch {args.batch}, median of {args.rounds} rounds, server: "
          f"{'given URI' if args.uri else 'SecantusDB ' + ('in-process' if args.embedded else 'as a separate process')}")
    print(f"{'operation':<22} {'ragrev rows/s':>14} {'hand rows/s':>12} {'ratio':>7}")
    ok = True
    for name, (ours, theirs) in results.items():
        ratio = ours / theirs
        ok &= ratio >= 0.9
        print(f"{name:<22} {ours:>14,.0f} {theirs:>12,.0f} {ratio:>7.2f}")
    print("goal (ratio >= 0.9):", "met" if ok else "NOT met")
    return 0


def run(store, db, args) -> dict:
    coll = db.docs
    coll.insert_many([{"_id": i, "title": f"Document {i}", "body": "x" * 200, "tags": ["a", "b"], "n": i}
                      for i in range(args.docs)])
    n, batch = args.docs, args.batch
    times: dict[str, tuple[list, list]] = {k: ([], []) for k in ("transform", "add_field(default=)", "add_field(fn=)")}

    def reset(field):
        coll.update_many({field: {"$exists": True}}, {"$unset": {field: ""}})

    pairs = {
        "transform": (lambda: apply(store, m.Transform("docs", bump, batch_size=batch)),
                      lambda: hand_transform(coll, bump, batch), None),
        "add_field(default=)": (lambda: apply(store, m.AddField("docs", "lang", default="en")),
                                lambda: hand_add_field(coll, "lang", lambda d: "en", batch), "lang"),
        "add_field(fn=)": (lambda: apply(store, m.AddField("docs", "slug", fn=slug, batch_size=batch)),
                           lambda: hand_add_field(coll, "slug", slug, batch), "slug"),
    }
    for r in range(args.rounds):
        for name, (ours, theirs, field) in pairs.items():
            order = [(0, ours), (1, theirs)] if r % 2 == 0 else [(1, theirs), (0, ours)]  # alternate who goes first
            for side, fn in order:
                times[name][side].append(timed(fn))
                if field:
                    reset(field)
        store.purge()
    assert coll.count_documents({"hits": 2 * args.rounds}) == n, "every document transformed once per run"
    return {k: (n / statistics.median(ours), n / statistics.median(theirs)) for k, (ours, theirs) in times.items()}


if __name__ == "__main__":
    sys.exit(main())
