"""ragrev's MongoDB data steps against the plain driver calls a user would write.

On one collection of ``--docs`` documents, in one run, for ``--rounds``
rounds (who goes first alternates between rounds):

- ``transform(fn)`` (batched, resumable: each batch's new documents are saved
  before they are written) vs. the loop a person would write: one ``find``
  cursor in ``_id`` order, ``fn``, ``bulk_write`` of ``ReplaceOne`` per batch
  of the same size;
- ``add_field(default=)`` (a read stopping at the first document that has
  the field, then one ``update_many``; the ids of the documents it changes
  are kept only when some document had the field) vs. that ``update_many``;
- ``add_field(fill=)`` (batched, ids kept for the inverse) vs. the cursor loop
  with ``bulk_write`` of ``UpdateOne($set)``;
- ``rename_field`` (a read stopping at the first clash, then ``$rename``) vs.
  ``update_many($rename)``;
- ``insert`` of new documents (ids recorded per batch for the inverse)
  vs. pymongo's ``insert_many`` per batch of the same size.

Prints the median rows/s of each and the ratio ragrev / plain call (goal:
at least 0.95), for each of ``--sizes`` (default: ``--docs``); with
``--rss``, each side also runs once more in a process of its own, and its
peak RSS is printed (goal: at most the plain call's + 10 %). The server is ``--uri`` or ``$RAGREV_TEST_MONGO_URI`` when
given, else a SecantusDB started as a separate process (as a production
MongoDB would be; ``--embedded`` runs it inside this process instead).

    python benchmarks/bench_mongo.py [--docs 20000 | --sizes 10000,100000] [--rounds 3] [--batch 1000]
                                     [--only rename_field,insert] [--rss]
"""
from __future__ import annotations

import argparse
import itertools
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
from ragrev.ops import document as m  # noqa: E402
from ragrev.stores import open_store  # noqa: E402


def bump(doc):
    doc["hits"] = doc.get("hits", 0) + 1
    return doc


def slug(doc):
    return doc["title"].lower().replace(" ", "-")


def start_server(embedded: bool, workdir: str):
    """A MongoDB URI and a function stopping the server."""
    if embedded:
        from ragrev.drivers.mongo import secantus

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
    n = 0
    cursor = coll.find({}).sort("_id", 1).batch_size(batch)
    while True:
        docs = list(itertools.islice(cursor, batch))
        if not docs:
            return n
        coll.bulk_write([ReplaceOne({"_id": d["_id"]}, fn(d)) for d in docs], ordered=False)
        n += len(docs)


def hand_add_field(coll, field, value_of, batch):
    n = 0
    cursor = coll.find({field: {"$exists": False}}).sort("_id", 1).batch_size(batch)
    while True:
        docs = list(itertools.islice(cursor, batch))
        if not docs:
            return n
        coll.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": {field: value_of(d)}}) for d in docs], ordered=False)
        n += len(docs)


def hand_insert(coll, docs, batch):
    for i in range(0, len(docs), batch):
        coll.insert_many(docs[i:i + batch], ordered=False)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


NAMES = ("transform", "add_field(default=)", "add_field(fill=)", "rename_field", "insert")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--sizes", help="comma-separated collection sizes, each measured in turn (default: --docs)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--only", help=f"comma-separated, of: {', '.join(NAMES)}")
    ap.add_argument("--rss", action="store_true", help="also peak RSS of each side, in a process of its own")
    ap.add_argument("--uri", default=os.environ.get("RAGREV_TEST_MONGO_URI"))
    ap.add_argument("--embedded", action="store_true", help="run SecantusDB inside this process")
    ap.add_argument("--worker", nargs=3, metavar=("SIDE", "TASK", "DATABASE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(NAMES)
    if set(names) - set(NAMES):
        ap.error(f"--only: unknown {sorted(set(names) - set(NAMES))}")
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.docs]
    ok = True
    for n in sizes:
        with tempfile.TemporaryDirectory() as workdir:
            if args.uri:
                uri, stop = args.uri, (lambda: None)
            else:
                uri, stop = start_server(args.embedded, workdir)
            dbname = f"ragrev_bench_{os.getpid()}"
            store = open_store(StoreConfig("bench", uri, "mongo", {"database": dbname, "timeout": "30s"}))
            store.connect()
            try:
                started = time.perf_counter()
                results = run(store, store.db, n, names, args)
                rss = peak_rss(store, uri, dbname, n, names, args) if args.rss else {}
                took = time.perf_counter() - started
            finally:
                store.client.drop_database(dbname)
                store.close()
                stop()
        print(f"{n} documents, batch {args.batch}, median of {args.rounds} rounds, server: "
              f"{'given URI' if args.uri else 'SecantusDB ' + ('in-process' if args.embedded else 'as a separate process')}"
              f", {took:.0f} s, load average {os.getloadavg()[0]:.1f}")
        print(f"{'operation':<22} {'ragrev rows/s':>14} {'hand rows/s':>12} {'ratio':>7}"
              + (f" {'ragrev MiB':>11} {'hand MiB':>9} {'ratio':>6}" if rss else ""))
        for name, (ours, theirs) in results.items():
            ratio = ours / theirs
            ok &= ratio >= 0.95
            line = f"{name:<22} {ours:>14,.0f} {theirs:>12,.0f} {ratio:>7.2f}"
            if name in rss:
                mine, hand = rss[name]
                ok &= mine <= hand * 1.1
                line += f" {mine / 1024:>11,.1f} {hand / 1024:>9,.1f} {mine / hand:>6.2f}"
            print(line, flush=True)
    print("goal (ratio >= 0.95" + (", peak RSS <= 1.1x" if args.rss else "") + "):", "met" if ok else "NOT met")
    return 0


def pairs(store, db, n, batch) -> dict:
    """Each task: (ragrev's call, the plain call, what restores the collection after either)."""
    coll = db.docs

    def reset(field):
        coll.update_many({field: {"$exists": True}}, {"$unset": {field: ""}})

    def rename_back():
        coll.update_many({"heading": {"$exists": True}}, [{"$replaceWith": {"$arrayToObject": {"$map": {
            "input": {"$objectToArray": "$$ROOT"},
            "in": {"k": {"$cond": [{"$eq": ["$$this.k", "heading"]}, "title", "$$this.k"]}, "v": "$$this.v"}}}}}])

    def fresh(tag):
        return [{"title": f"New {tag} {i}", "body": "y" * 200, "n": i} for i in range(n)]

    def drop_loaded():
        db.drop_collection("loaded")
        db.create_collection("loaded")

    return {
        "transform": (lambda: apply(store, m.Transform("docs", bump, batch_size=batch)),
                      lambda: hand_transform(coll, bump, batch), None),
        "add_field(default=)": (lambda: apply(store, m.AddField("docs", "lang", default="en")),
                                lambda: coll.update_many({"lang": {"$exists": False}}, {"$set": {"lang": "en"}}),
                                lambda: reset("lang")),
        "add_field(fill=)": (lambda: apply(store, m.AddField("docs", "slug", fill=slug, batch_size=batch)),
                             lambda: hand_add_field(coll, "slug", slug, batch), lambda: reset("slug")),
        "rename_field": (lambda: apply(store, m.RenameField("docs", "title", "heading")),
                         lambda: coll.update_many({"title": {"$exists": True}}, {"$rename": {"title": "heading"}}),
                         rename_back),
        "insert": (lambda: apply(store, m.Insert("loaded", fresh("ours"), batch_size=batch)),
                   lambda: hand_insert(db.loaded, fresh("theirs"), batch), drop_loaded),
    }


def run(store, db, n, names, args) -> dict:
    coll = db.docs
    for i in range(0, n, 10000):
        coll.insert_many([{"_id": j, "title": f"Document {j}", "body": "x" * 200, "tags": ["a", "b"], "n": j}
                          for j in range(i, min(n, i + 10000))])
    db.create_collection("loaded")
    tasks = pairs(store, db, n, args.batch)
    times: dict[str, tuple[list, list]] = {k: ([], []) for k in names}
    for r in range(args.rounds):
        for name in names:
            ours, theirs, restore = tasks[name]
            order = [(0, ours), (1, theirs)] if r % 2 == 0 else [(1, theirs), (0, ours)]  # alternate who goes first
            for side, fn in order:
                times[name][side].append(timed(fn))
                if restore:
                    restore()
        store.purge()
    if "transform" in names:
        assert coll.count_documents({"hits": 2 * args.rounds}) == n, "every document transformed once per run"
    return {k: (n / statistics.median(ours), n / statistics.median(theirs)) for k, (ours, theirs) in times.items()}


def peak_rss(store, uri, dbname, n, names, args) -> dict:
    """Peak RSS (KiB) of one run of each side in a process of its own (same imports, same data)."""
    tasks, out = pairs(store, store.db, n, args.batch), {}
    for name in names:
        sides = []
        for side in ("ragrev", "hand"):
            proc = subprocess.run([sys.executable, __file__, "--uri", uri, "--docs", str(n), "--batch", str(args.batch),
                                   "--worker", side, name, dbname], capture_output=True, text=True, check=True)
            sides.append(int(proc.stdout.split()[-1]))
            if tasks[name][2]:
                tasks[name][2]()
        store.purge()
        out[name] = tuple(sides)
    return out


def worker(args) -> int:
    import resource

    side, name, dbname = args.worker
    store = open_store(StoreConfig("bench", args.uri, "mongo", {"database": dbname, "timeout": "30s"}))
    store.connect()
    try:
        ours, theirs, _ = pairs(store, store.db, args.docs, args.batch)[name]
        (ours if side == "ragrev" else theirs)()
    finally:
        store.close()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
