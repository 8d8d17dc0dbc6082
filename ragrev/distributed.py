"""Re-embedding beyond one process: the first pass of a ``reembed`` run by
Dask (``dask.distributed``) workers, split by primary-key ranges.

Chosen by ``reembed(..., workers=...)`` or the ``[ragrev] executor``
setting (the argument wins):

- ``"dask://host:port"``: the scheduler of an existing cluster (its workers
  must reach the store and import ragrev and the embedding's package);
- ``"local"`` or ``"local:N"``: a ``LocalCluster`` of N (default 2) workers
  started for the step. On Milvus Lite the workers are threads of the
  runner's process (Lite serves a data file to one process only); on a
  server they are processes.

The driver (the ``ragrev upgrade`` process) reads the source's primary keys
once, cuts them into ranges (``captured["ranges"]``: the bounds, and which
ranges are done), and submits one task per range not done. Each task opens
its own connection, embeds its rows and upserts them (so a range redone
after a kill writes no duplicate); the driver records each finished range
in the journal as it completes, so a killed run resumes the unfinished
ranges only. Before each write a task checks that the run which started it
still holds the store's lease, and stops otherwise: a task left running on
the cluster by a killed run cannot write over the next run's work.
"""
from __future__ import annotations

import math
import re
import sys
import time

from ragrev.errors import OperationError, RagrevError

WORKERS = re.compile(r"^(dask://[^\s/:]+:\d+|local(:\d+)?)$")
#: ranges a pass is cut into: enough to spread and to resume, few enough for the journal record
MAX_RANGES = 256


def check_workers(op, value) -> None:
    if value is not None and not (isinstance(value, str) and WORKERS.match(value)):
        raise op.fail(f"{op.collection}: workers= must be 'dask://host:port', 'local' or 'local:N', not {value!r}")


def executor_of(op, ctx) -> str | None:
    """The executor of a step: its ``workers=``, else ``[ragrev] executor``."""
    value = getattr(op, "workers", None)
    if value is None:
        options = getattr(getattr(ctx, "config", None), "options", None) or {}
        value = options.get("executor")
        if value is not None and not (isinstance(value, str) and WORKERS.match(value)):
            raise OperationError(f"[ragrev] executor must be 'dask://host:port', 'local' or 'local:N', not {value!r}")
    return value


class ReembedRows:
    """The row function of a ``reembed``, picklable for the workers."""

    def __init__(self, embed, text_field: str, dim: int, vf: str, into: str, keep: bool, where: str = ""):
        self.embed, self.text_field, self.dim, self.vf, self.into, self.keep = embed, text_field, dim, vf, into, keep
        self.where = where

    def __call__(self, rows: list[dict]) -> list[dict]:
        import numpy as np

        vectors = np.asarray(self.embed([r.get(self.text_field) for r in rows]), dtype=np.float32)
        if vectors.shape != (len(rows), self.dim):
            raise OperationError(f"{self.where}reembed {self.into}: the embedding returned an array of shape "
                                 f"{vectors.shape}, expected ({len(rows)}, {self.dim})")
        for row, vec in zip(rows, vectors.tolist()):
            if not (self.keep and self.into != self.vf):
                row.pop(self.vf, None)
            row[self.into] = vec
        return rows


class Fenced(RagrevError):
    """The run that started a range task no longer holds the store's lease."""


def _in_range(pk: str, after, upto, lit) -> str:
    parts = ([f"{pk} > {lit(after)}"] if after is not None else []) + ([f"{pk} <= {lit(upto)}"] if upto is not None
                                                                       else [])
    return " and ".join(parts)


def range_task(config, source: str, target: str, after, upto, batch: int, fn, owner: str) -> dict:
    """On a worker: embed and upsert the rows of ``source`` with ``after < pk <= upto``.

    Upserts, not inserts: a range may run twice (resumed after a kill, or
    rescheduled by Dask when a worker dies). On a Milvus server every read is
    a query with a fixed cost (0.3-0.45 s on a loaded 2-core machine, at any
    consistency level, little more for 10x the rows), so the waits overlap
    the work: the next page is read while this one is embedded and written,
    and the lease is read while this page is embedded (before it is
    written)."""
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    from ragrev.stores import open_store
    from ragrev.drivers.milvus.store import lit

    store = open_store(config)
    store.connect()
    rows_done, rss = 0, 0
    # wall seconds the task spent on each; "cpu": the CPU time of the task's thread (far below the sum: it waited)
    waits = {"read": 0.0, "embed": 0.0, "lease": 0.0, "write": 0.0, "cpu": 0.0}
    cpu0 = time.thread_time()
    pool = ThreadPoolExecutor(1, thread_name_prefix="ragrev-lease")
    pages = None
    try:
        pk = store.pk_of(source)
        cond = _in_range(pk, after, upto, lit)
        pages = prefetched(store.scan(source, cond or None, batch=batch, pk=pk))
        t = time.perf_counter()
        for rows in pages:
            t1 = time.perf_counter()
            check = pool.submit(store._lock_row) if owner else None  # no owner: applied outside a run
            out = fn(rows)
            t2 = time.perf_counter()
            lease = check.result() if check is not None else None
            t3 = time.perf_counter()
            if owner and (not lease or lease["owner"] != owner or lease["expires"] < time.time()):
                raise Fenced(f"range ({after!r}, {upto!r}]: the run {owner} lost the store's lease; stopped")
            store.c.upsert(target, out)
            rows_done += len(rows)
            rss = max(rss, psutil.Process().memory_info().rss)
            t4 = time.perf_counter()
            for key, secs in zip(waits, (t1 - t, t2 - t1, t3 - t2, t4 - t3)):
                waits[key] += secs
            t = t4
        waits["cpu"] = time.thread_time() - cpu0
    finally:
        if pages is not None:
            pages.close()  # waits for a page being read
        pool.shutdown(wait=True)
        store.close()
    return {"rows": rows_done, "rss": rss, "seconds": waits}


def prefetched(pages):
    """The items of the iterator ``pages``, the next one read (in a thread)
    while the caller works on the current one. Memory: two pages."""
    from concurrent.futures import ThreadPoolExecutor

    it = iter(pages)
    with ThreadPoolExecutor(1, thread_name_prefix="ragrev-prefetch") as pool:
        ahead = pool.submit(next, it, None)
        while True:
            page = ahead.result()
            if page is None:
                return
            ahead = pool.submit(next, it, None)
            yield page


def bounds(store, source: str, n: int) -> list:
    """Primary keys cutting ``source`` into ``n`` ranges of about equal rows:
    ``[None, k1, ..., None]`` (range i is ``bounds[i] < pk <= bounds[i+1]``;
    the last is open, for rows inserted meanwhile)."""
    pk = store.pk_of(source)
    total = store.count(source)
    per = max(1, math.ceil(total / max(1, n)))
    cuts, seen = [None], 0
    for rows in store.scan(source, batch=16384, fields=(pk,), pk=pk):
        for r in rows:
            seen += 1
            if seen % per == 0 and seen < total:
                cuts.append(r[pk])
    return cuts + [None]


def _client(executor: str, store):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise OperationError("workers= / [ragrev] executor needs Dask: pip install 'ragrev[dask]'") from None
    if executor.startswith("dask://"):
        return Client("tcp://" + executor[len("dask://"):], timeout="10s"), None
    n = int(executor.split(":", 1)[1]) if ":" in executor else 2
    lite = getattr(store, "lite", False)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=not lite, dashboard_address=None)
    return Client(cluster), cluster


def _by_value(fn) -> None:
    """Functions of a revision file travel by value (workers cannot import it)."""
    import cloudpickle

    for obj in (fn, getattr(fn, "embed", None)):
        module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
        if module and module.startswith("ragrev_revision_") and module in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[module])


def run_pass(store, op, ctx, executor: str, source: str, target: str, fn) -> int:
    """The first pass of a rebuild, by ranges on a Dask cluster; rows done."""
    c = ctx.captured
    if "ranges" not in c:
        workers = int(executor.split(":", 1)[1]) if executor.startswith("local:") else 4
        n = min(MAX_RANGES, max(8, 4 * workers))
        c["ranges"] = {"bounds": bounds(store, source, n), "done": ""}
        c["ranges"]["done"] = "0" * (len(c["ranges"]["bounds"]) - 1)
        ctx.checkpoint(ctx.resume_token, ctx.rows_done)
    r = c["ranges"]
    lease = store._lock_row()
    owner = lease["owner"] if lease else ""
    done = ctx.rows_done
    todo = [i for i, flag in enumerate(r["done"]) if flag == "0"]
    if not todo:
        return done
    _by_value(fn)
    client, cluster = _client(executor, store)
    try:
        from dask.distributed import as_completed

        futures = {client.submit(range_task, store.config, source, target, r["bounds"][i], r["bounds"][i + 1],
                                 op.batch_size, fn, owner, pure=False, retries=0): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            try:
                result = future.result()
            except Fenced as e:
                raise OperationError(f"{op.where()}reembed {op.collection}: {e}") from None
            done += result["rows"]
            r["done"] = r["done"][:i] + "1" + r["done"][i + 1:]
            c["peak_rss"] = max(c.get("peak_rss", 0), result["rss"])  # of one worker process (or the runner's)
            spent = c.setdefault("worker_seconds", {})  # the tasks' time waiting for pages, embedding, ...
            for key, secs in result.get("seconds", {}).items():
                spent[key] = round(spent.get(key, 0.0) + secs, 3)
            ctx.checkpoint(ctx.resume_token, done)
            ctx.progress(done, None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return done
