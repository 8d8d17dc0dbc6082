"""The embedded document store behind ``secantus:///dir`` URLs.

A ``secantus:///dir`` store is a SecantusDB server (MongoDB wire protocol,
WiredTiger storage in ``dir``) run inside the ragrev process on a free
loopback port; the Mongo adapter then talks to it with pymongo like to any
MongoDB. :func:`acquire` starts it (one server per directory per process,
reference-counted), :func:`release` stops it when its last user closes, and
an ``atexit`` hook stops whatever is still running. ``secantus:///:memory:``
is an ephemeral store (a temporary directory), shared within the process.
The server syncs its log on every commit: what it acknowledged survives a
SIGKILL of the process that runs it.

Two processes and one directory: WiredTiger lets one process open a
directory (the second gets ``EBUSY``). The process that owns the directory
writes its address to ``dir/ragrev-secantus.json``; a second ragrev process
finds the directory busy, reads that file and connects to the owner's server
instead, so both see the same data and the store's lock decides who
migrates (the other waits and exits 3 naming the holder). The owner does not
stop its server while another ragrev process uses it — holds a lease through
it (e.g. the owner is the runner that lost the lock and the winner works
through its server) or is busy planning: its last :func:`release` then leaves
the server running, and the process, at exit, waits until they are done.
When the owner stops, a sharer's next :func:`acquire` takes the directory
over (an idle sharer's next lock attempt does so by itself). A directory
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
from contextlib import contextmanager
from pathlib import Path

from ragrev.errors import LockTimeout, StoreUnreachable
from ragrev.lock import pid_alive

ADDRESS_FILE = "ragrev-secantus.json"
START_LOCK = "ragrev-secantus.lock"
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
        if emb.refs > 0 or _peers(emb):  # still used here, or by other processes: stopped at exit
            return
        del _servers[real]
    _stop(emb)


def _peers(emb: _Embedded) -> bool:
    """Whether another ragrev process is using ``emb``'s server: connected
    (a client whose handshake names the application ``ragrev``, the Mongo
    adapter's ``appname``, on a port that is not one of this process's
    sockets) and either holding an unexpired lease in one of its databases or
    having sent a command in the last ``ACTIVE`` seconds (planning a run).
    An idle sharer is not waited for: its next lock attempt takes the
    directory over. False where ``/proc`` cannot tell."""
    if emb.path == MEMORY:
        return False
    own = _own_ports()
    if own is None:
        return False
    now, connected, active = time.time(), False, False
    for info in emb.server.connections.snapshot():
        app = ((info.client_metadata or {}).get("application") or {}).get("name")
        if app == "ragrev" and info.peer_addr and info.peer_addr[1] not in own:
            connected = True
            active = active or (info.last_cmd_at is not None and now - info.last_cmd_at < ACTIVE)
    return connected and (active or _peer_lease(emb))


#: seconds since its last command during which a sharing process counts as busy
ACTIVE = 2.0


def _peer_lease(emb: _Embedded) -> bool:
    """An unexpired ragrev lease of another process in a database of ``emb``'s server."""
    import datetime as dt

    import pymongo

    client = pymongo.MongoClient(emb.uri, serverSelectionTimeoutMS=2000)
    try:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        for name in client.list_database_names():
            lock = client[name]["ragrev_lock"].find_one({"_id": "lock"})
            owner, expires = (lock or {}).get("owner"), (lock or {}).get("expires")
            if owner and f":{os.getpid()}:" not in owner and expires is not None and expires > now:
                return True
        return False
    except Exception:  # cannot tell: do not keep the process alive for it
        return False
    finally:
        client.close()


def _own_ports() -> set[int] | None:
    """Local TCP ports of this process's sockets (Linux ``/proc``), None elsewhere."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _linger(emb: _Embedded, poll: float = 0.1) -> None:
    """Keep serving while another ragrev process uses the server (see :func:`_peers`)."""
    try:
        while _peers(emb):
            time.sleep(poll)
    except KeyboardInterrupt:  # a second Ctrl-C stops waiting
        pass


def peer_uri(path: str) -> str | None:
    """The URI another live process published for ``path``, if it answers."""
    try:
        info = json.loads((Path(path) / ADDRESS_FILE).read_text())
        pid, host, port = int(info["pid"]), str(info["host"]), int(info["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not pid_alive(pid):
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
    with _starting(path):
        return _open(path, store, cache_size)


@contextmanager
def _starting(path: str):
    """One ragrev process at a time starts a server on ``path``: without this,
    two starting together both pass the busy probe and WiredTiger prints its
    EBUSY error on the loser's stderr. (An advisory lock on a file of ours, held
    only while starting; a held WiredTiger lock is what says "owned".)"""
    import fcntl

    try:
        fd = os.open(os.path.join(path, START_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only directory: WiredTiger will say why it cannot open it
        yield
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def _open(path: str, store: str, cache_size: str | None) -> _Embedded:
    from secantus import SecantusDBServer

    if _held_elsewhere(path):
        raise _Busy()
    try:
        # sync_on_commit: what the server acknowledged survives a SIGKILL of this process (and a power
        # loss); otherwise WiredTiger may not have written its log yet (about 0.3 ms a commit)
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=path, replica_set_name=None,
                                  cache_size=cache_size or "512M", sync_on_commit=True)
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


@atexit.register
def _stop_all() -> None:
    with _lock:
        running = list(_servers.values())
        _servers.clear()
    for emb in running:
        _linger(emb)
        _stop(emb)
