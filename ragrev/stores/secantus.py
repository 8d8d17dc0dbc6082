"""The embedded document store behind ``secantus:///dir`` URLs.

A ``secantus:///dir`` store is a SecantusDB server (MongoDB wire protocol,
WiredTiger storage in ``dir``) run inside the ragrev process on a free
loopback port; the Mongo adapter then talks to it with pymongo like to any
MongoDB. :func:`acquire` starts it (one server per directory per process,
reference-counted), :func:`release` stops it when its last user closes, and
an ``atexit`` hook stops whatever is still running. ``secantus:///:memory:``
is an ephemeral store (a temporary directory), shared within the process.

Two processes and one directory: WiredTiger lets one process open a
directory (the second gets ``EBUSY``). The process that owns the directory
writes its address to ``dir/ragrev-secantus.json``; a second ragrev process
finds the directory busy, reads that file and connects to the owner's server
instead, so both see the same data and the store's lock decides who
migrates (the other waits and exits 3 naming the holder). When the owner
stops, a sharer's next :func:`acquire` takes the directory over. A directory
held by a process that wrote no address (a standalone ``python -m secantus``)
is reported as :class:`DirectoryBusy` (exit 3): connect to it with its
``mongodb://`` URL instead.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

from ragrev.errors import LockTimeout, StoreUnreachable

ADDRESS_FILE = "ragrev-secantus.json"
#: ``secantus:///:memory:``: an ephemeral store, shared within the process, gone when it stops
MEMORY = ":memory:"
#: how long a second process waits for the owner of a busy directory to publish its address
PEER_WAIT = 10.0

_lock = threading.Lock()
_servers: dict[str, "_Embedded"] = {}


class DirectoryBusy(LockTimeout):
    """The directory is open in another process that does not share it."""

    def __init__(self, store: str, path: str, waited: float):
        self.path = path
        LockTimeout.__init__(self, store, f"another process that has {path} open and publishes no address "
                                          "(a standalone SecantusDB? connect with its mongodb:// URL)", waited)


class _Embedded:
    def __init__(self, path: str, server):
        self.path = path
        self.server = server
        self.refs = 1
        self.uri = server.uri


def acquire(path: str, store: str = "", cache_size: str | None = None) -> tuple[str, bool]:
    """A ``mongodb://`` URI serving the SecantusDB data in ``path``.

    Returns ``(uri, owned)``: ``owned`` is False when another process owns the
    directory and we connect to its server. Pair every call with :func:`release`.
    """
    real = path if path == MEMORY else os.path.realpath(path)
    deadline = time.monotonic() + PEER_WAIT
    while True:
        with _lock:
            emb = _servers.get(real)
            if emb is not None:
                emb.refs += 1
                return emb.uri, True
            try:
                emb = _start(real, store, cache_size)
            except _Busy:
                emb = None
            if emb is not None:
                _servers[real] = emb
                return emb.uri, True
        uri = peer_uri(real) if real != MEMORY else None
        if uri:
            return uri, False
        if time.monotonic() > deadline:
            raise DirectoryBusy(store, real, PEER_WAIT)
        time.sleep(0.1)


def release(path: str, owned: bool) -> None:
    """Drop one reference; the last one stops the server and removes its address file."""
    if not owned:
        return
    real = path if path == MEMORY else os.path.realpath(path)
    with _lock:
        emb = _servers.get(real)
        if emb is None:
            return
        emb.refs -= 1
        if emb.refs > 0:
            return
        del _servers[real]
    _stop(emb)


def peer_uri(path: str) -> str | None:
    """The URI another live process published for ``path``, if it answers."""
    try:
        info = json.loads((Path(path) / ADDRESS_FILE).read_text())
        pid, host, port = int(info["pid"]), str(info["host"]), int(info["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError:
        return None
    return f"mongodb://{host}:{port}/"


class _Busy(Exception):
    pass


def _start(path: str, store: str, cache_size: str | None) -> _Embedded:
    from secantus import SecantusDBServer

    logging.getLogger("secantus").setLevel(logging.WARNING)
    if path == MEMORY:
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=MEMORY, replica_set_name=None,
                                  cache_size=cache_size or "512M")
        server.start()
        return _Embedded(path, server)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreUnreachable(f"store {store!r}: cannot create {path}: {e.strerror}") from None
    if _held_elsewhere(path):
        raise _Busy()
    try:
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=path, replica_set_name=None,
                                  cache_size=cache_size or "512M")
    except Exception as e:  # WiredTigerError is not importable without the engine
        text = str(e)
        if "busy" in text.lower() or getattr(e, "errno", None) == 16:
            raise _Busy() from None
        raise StoreUnreachable(f"store {store!r}: cannot open SecantusDB data in {path}: {text.splitlines()[0][:200]}") from None
    try:
        server.start()
    except Exception as e:
        server.storage.close()
        raise StoreUnreachable(f"store {store!r}: cannot start SecantusDB for {path}: {e}") from None
    host, port = server.address
    info = Path(path) / ADDRESS_FILE
    tmp = info.with_name(f".{ADDRESS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port, "started": time.time()}))
    os.replace(tmp, info)
    return _Embedded(path, server)


def _stop(emb: _Embedded) -> None:
    info = Path(emb.path) / ADDRESS_FILE
    try:
        if emb.path != MEMORY and json.loads(info.read_text()).get("pid") == os.getpid():
            info.unlink()
    except (OSError, ValueError):
        pass
    try:
        # A listening socket closed by another thread does not wake a blocked
        # accept() on Linux; stop() would wait 2 s for its accept thread.
        # shutdown() does wake it.
        emb.server._stop_event.set()
        sock = emb.server._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        emb.server.stop()
    except Exception:  # pragma: no cover - stopping at exit must not raise
        logging.getLogger(__name__).warning("stopping SecantusDB for %s failed", emb.path, exc_info=True)


def _held_elsewhere(path: str) -> bool:
    """True when another process holds WiredTiger's lock on ``path``. Probing
    first keeps WiredTiger from printing its EBUSY errors on stderr. (Only
    called for directories this process does not hold: closing a descriptor
    drops the process's fcntl locks on that file.)"""
    import fcntl

    try:
        fd = os.open(os.path.join(path, "WiredTiger.lock"), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _stop_all() -> None:
    with _lock:
        running = list(_servers.values())
        _servers.clear()
    for emb in running:
        _stop(emb)
