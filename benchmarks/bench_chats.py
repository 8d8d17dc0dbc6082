"""ragrev's chat ``archive``/``restore`` against a hand-written export.

On ``--messages`` messages over ``--sessions`` sessions, in one run, for each
store (SQLite, and SecantusDB started in this process) and each format
(``jsonl.gz``, ``parquet``):

- ``archive`` (per part file: write, fsync, read back and verify every hash,
  manifest, pointers, delete by id, checkpoint) vs. the loop a person would
  write: read the old sessions in order, one ``json.dumps`` per message,
  ``gzip``, one file per month without fsync or verification, delete them;
- ``restore`` (verify every file first, then insert what is missing, drop
  pointers) vs. reading those files back and inserting every line.

Prints messages/s of each, the ratio ragrev / hand-written, and the archive's
bytes per message. The gap is the price of durability and verification.

    python benchmarks/bench_chats.py [--messages 20000] [--sessions 1000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragrev.config import StoreConfig  # noqa: E402
from ragrev.context import StepContext  # noqa: E402
from ragrev.ops.chats import ChatNamespace  # noqa: E402
from ragrev.stores import open_store  # noqa: E402

KEYS = {"order_key": "seq", "ts_key": "ts", "seq_key": "seq"}


def rows(n_messages: int, n_sessions: int):
    per = n_messages // n_sessions
    start = dt.datetime(2024, 1, 1)
    out, i = [], 1
    for s in range(n_sessions):
        t0 = start + dt.timedelta(hours=s * 8)
        for k in range(per):
            out.append({"id": i, "session_id": f"s{s:05d}", "seq": k, "role": ("user", "assistant")[k % 2],
                        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * (1 + i % 5),
                        "ts": t0 + dt.timedelta(minutes=k)})
            i += 1
    return out


class Bench:
    def __init__(self, kind: str, root: Path):
        self.kind = kind
        self.root = root
        url = f"sqlite:///{root}/chat.db" if kind == "sqlite" else f"secantus:///{root}/docs"
        self.store = open_store(StoreConfig("chat", url, "sql" if kind == "sqlite" else "mongo", {"database": "rag"}))
        self.store.connect()
        self.ns = ChatNamespace(lambda o: o, "conversations", KEYS)
        self.config = type("Cfg", (), {"directory": root, "stores": {}})()

    def seed(self, data):
        if self.kind == "sqlite":
            import sqlalchemy as sa

            md = sa.MetaData()
            self.table = sa.Table("conversations", md, sa.Column("id", sa.Integer, primary_key=True),
                                  sa.Column("session_id", sa.String(20), index=True), sa.Column("seq", sa.Integer),
                                  sa.Column("role", sa.String(10)), sa.Column("content", sa.Text),
                                  sa.Column("ts", sa.DateTime))
            with self.store.step_scope():
                md.create_all(self.store.conn)
                self.store.conn.execute(self.table.insert(), data)
        else:
            coll = self.store.db.conversations
            coll.create_index([("session_id", 1), ("seq", 1)])
            coll.insert_many([{"_id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in data])

    def run(self, op) -> float:
        op.store = "chat"
        ctx = StepContext(store=self.store, op=op, revision="bench", config=self.config)
        t = time.perf_counter()
        with self.store.step_scope():
            self.store.apply(op, ctx)
        self.last = ctx
        return time.perf_counter() - t

    # --- the hand-written way --------------------------------------------------------------
    def naive_archive(self, folder: Path) -> float:
        t = time.perf_counter()
        by_month: dict[str, list[str]] = {}
        ids = []
        if self.kind == "sqlite":
            import sqlalchemy as sa

            with self.store.step_scope():
                for r in self.store.conn.execute(sa.select(self.table).order_by("session_id", "seq")).mappings():
                    d = dict(r)
                    by_month.setdefault(d["ts"].strftime("%Y-%m"), []).append(json.dumps(d, default=str))
                    ids.append(d["id"])
                for month, lines in by_month.items():
                    (folder / f"{month}.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
                for i in range(0, len(ids), 500):
                    self.store.conn.execute(self.table.delete().where(self.table.c.id.in_(ids[i:i + 500])))
        else:
            from bson import json_util

            coll = self.store.db.conversations
            sessions = set()
            for d in coll.find().sort([("session_id", 1), ("seq", 1)]):
                by_month.setdefault(d["ts"].strftime("%Y-%m"), []).append(json_util.dumps(d))
                sessions.add(d["session_id"])
            for month, lines in by_month.items():
                (folder / f"{month}.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
            coll.delete_many({"session_id": {"$in": sorted(sessions)}})
        return time.perf_counter() - t

    def naive_restore(self, folder: Path) -> float:
        t = time.perf_counter()
        for path in sorted(folder.glob("*.jsonl.gz")):
            lines = gzip.decompress(path.read_bytes()).decode().split("\n")
            if self.kind == "sqlite":
                docs = [json.loads(x) for x in lines]
                for d in docs:
                    d["ts"] = dt.datetime.fromisoformat(d["ts"])
                with self.store.step_scope():
                    self.store.conn.execute(self.table.insert(), docs)
            else:
                from bson import json_util

                self.store.db.conversations.insert_many([json_util.loads(x) for x in lines])
        return time.perf_counter() - t

    def close(self):
        self.store.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--sessions", type=int, default=1_000)
    args = ap.parse_args()
    data = rows(args.messages, args.sessions)
    n = len(data)
    print(f"{n} messages over {args.sessions} sessions\n")
    print(f"{'store':9} {'format':9} {'archive/s':>10} {'naive/s':>9} {'ratio':>6}   "
          f"{'restore/s':>10} {'naive/s':>9} {'ratio':>6}   {'bytes/msg':>9}")
    for kind in ("sqlite", "secantus"):
        for fmt in ("jsonl.gz", "parquet"):
            root = Path(tempfile.mkdtemp(prefix="ragrev-bench-chats-"))
            bench = Bench(kind, root)
            try:
                bench.seed(data)
                naive_dir = root / "naive"
                naive_dir.mkdir()
                t_naive_a = bench.naive_archive(naive_dir)
                t_naive_r = bench.naive_restore(naive_dir)
                t_a = bench.run(bench.ns.archive("30d", to="file://./cold", format=fmt, batch_size=5000))
                size = sum(p.stat().st_size for p in (root / "cold").rglob("part-*"))
                t_r = bench.run(bench.ns.restore())
            finally:
                bench.close()
                shutil.rmtree(root, ignore_errors=True)
            print(f"{kind:9} {fmt:9} {n / t_a:10.0f} {n / t_naive_a:9.0f} {t_naive_a / t_a:6.2f}   "
                  f"{n / t_r:10.0f} {n / t_naive_r:9.0f} {t_naive_r / t_r:6.2f}   {size / n:9.1f}")


if __name__ == "__main__":
    main()
