"""Milvus Lite's data directory: its OS lock (one process at a time), who
holds it, and the repair of flushes a killed process left half done.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import threading
from contextlib import contextmanager

LEASE_FILE = "ragrev-lease.json"
_LITE_OPEN: dict[str, int] = {}       # Lite data path -> stores of this process using it
_LITE_GUARD = threading.RLock()         # stores opened and closed by threads at once (Dask workers on Lite)
log = logging.getLogger(__name__)


def _flock_busy(path: str) -> bool:
    with lite_locked(path) as held:
        return held is False


@contextmanager
def lite_locked(path: str):
    """Milvus Lite's own lock on the directory ``path``, taken without
    waiting: yields None when the directory has no ``LOCK`` file (Lite never
    opened it), False when another process holds it, True while this holds it."""
    lock = os.path.join(path, "LOCK")
    if not os.path.exists(lock):
        yield None
        return
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_WAL_FILE = re.compile(r"^wal_(?:data|delta)_(\d+)\.arrow$")


def _finish_lite_flushes(path: str) -> bool:
    """Finish the flushes a killed process left half done in a Milvus Lite
    directory, before opening it; False when another process holds it.

    Milvus Lite 3.x flushes a collection in steps: it writes the Parquet
    files, saves ``manifest.json`` with ``active_wal_number`` moved past the
    WAL it flushed, then deletes that WAL. Its recovery replays every WAL file
    it finds, so after a kill between the last two steps the flushed rows come
    back from the WAL, and the next flush lists the same data file twice in
    the manifest: every row in it twice (found by the reliability harness).
    This deletes the WAL files numbered below the manifest's
    ``active_wal_number``, exactly those the killed flush would have deleted,
    holding Lite's own lock on the directory meanwhile."""
    with lite_locked(path) as held:
        if held is None:
            return True
        if not held:
            return False
        for manifest in glob.glob(os.path.join(glob.escape(path), "**", "manifest.json"), recursive=True):
            wal_dir = os.path.join(os.path.dirname(manifest), "wal")
            try:
                with open(manifest) as f:
                    active = int(json.load(f)["active_wal_number"])
                names = os.listdir(wal_dir)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for name in names:
                m = _WAL_FILE.match(name)
                if m and int(m.group(1)) < active:
                    log.info("Milvus Lite %s: removing %s, flushed before a crash", path, os.path.join(wal_dir, name))
                    os.remove(os.path.join(wal_dir, name))
        return True


def _flock_pid(path: str) -> int | None:
    try:
        ino = os.stat(os.path.join(path, "LOCK")).st_ino
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(ino):
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


def _lite_holder(path: str) -> str:
    pid = _flock_pid(path)
    try:
        with open(os.path.join(path, LEASE_FILE)) as f:
            owner = json.load(f)["owner"]
        if pid is None or f":{pid}:" in owner:
            return f"{owner} (it has {path} open)"
    except (OSError, ValueError, KeyError):
        pass
    return f"another process{f' (pid {pid})' if pid else ''} that has {path} open"


def _write_json(path: str, data) -> None:
    try:
        with open(path, "w") as f:
            json.dump(data, f)
    except OSError:
        pass
