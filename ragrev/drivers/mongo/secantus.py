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
migrates. A sharing process holds a shared ``flock`` on
``dir/ragrev-secantus.users`` from its connection to its close (the kernel
drops it if the process dies); the owner stops its server only once it holds
that file exclusively. So the server outlives every ragrev process using it:
an owner done with it (its last :func:`release`) leaves it running while a
sharer holds on, and at exit waits for the last one, saying so on standard
error at once and every few seconds (a second Ctrl-C stops waiting). A
sharer that comes while the owner is stopping waits for it to finish, then
opens the directory itself. When the owner was killed, a sharer's next lock
attempt takes the directory over. A directory held by a process that wrote
no address (a standalone ``python -m secantus``) is reported as
:class:`DirectoryBusy` (exit 3): connect to it with its ``mongodb://`` URL
instead.
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
#: held shared (``flock``) by every process using another's server, exclusively by the owner stopping it
USERS_FILE = "ragrev-secantus.users"
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
        if real != MEMORY:
            fd = _share(real)
            if fd is not None:
                uri = peer_uri(real)
                if uri:
                    with _lock:
                        _shares.setdefault(real, []).append(fd)
                    return uri, False
                _close(fd)
        if time.monotonic() > deadline:
            raise DirectoryBusy(store, real, PEER_WAIT)
        time.sleep(0.1)


def release(path: str, owned: bool) -> None:
    """Drop one reference. A sharer's drops its hold on the owner's server; the
    owner's last one stops the server and removes its address file, unless
    another process still shares it (then the server stops at exit, once
    the last sharer is done)."""
    real = path if path == MEMORY else os.path.realpath(path)
    if not owned:
        _unshare(real)
        return
    with _lock:
        emb = _servers.get(real)
        if emb is None:
            return
        emb.refs -= 1
        if emb.refs > 0:
            return
        fd = _exclusive(real)
        if fd is _SHARED:  # used by other processes: stopped at exit (see _stop_all)
            return
        del _servers[real]
    try:
        _stop(emb)
    finally:
        _close(fd)



def rename_here(path: str, db: str, src: str, dst: str) -> bool:
    """Rename ``db.src`` to ``db.dst`` on the server this process runs for
    ``path``, in one storage transaction; False (nothing done) when another
    process runs it, or this SecantusDB lacks what the call needs (then
    rename with the ``renameCollection`` command).

    SecantusDB's ``renameCollection`` moves every document, each move its own
    commit: with the log synced on every commit (see the module docstring),
    a few milliseconds a document, so that dropping a collection of 20,000
    documents into the trash took minutes, and a crash in the middle left it
    split between the two names. One transaction is one commit, and all or
    nothing."""
    emb = _servers.get(path if path == MEMORY else os.path.realpath(path))
    storage = getattr(emb, "server", None) and getattr(emb.server, "storage", None)
    needed = ("_lock", "_ensure_doc_shard", "_batch_transaction", "rename_collection")
    if storage is None or not all(hasattr(storage, n) for n in needed):
        return False
    with storage._lock:
        storage._ensure_doc_shard(db, dst)  # creating a table: not inside the transaction
        with storage._batch_transaction(sync=True):
            ok, err = storage.rename_collection(db, src, db, dst)
    if not ok:
        from pymongo.errors import OperationFailure

        raise OperationFailure(err or f"cannot rename {db}.{src} to {db}.{dst}")
    cursors = getattr(emb.server, "cursors", None)
    if cursors is not None and hasattr(cursors, "kill_namespace"):
        cursors.kill_namespace(f"{db}.{src}")  # as the command does: cursors on the old name end
    return True

#: ``path -> descriptors`` of this process's holds on servers other processes own
_shares: dict[str, list[int]] = {}
#: returned by :func:`_exclusive` when another process shares the server
_SHARED = -2


def _share(path: str) -> int | None:
    """Take a shared hold on ``path``'s server (``flock(LOCK_SH)`` on
    :data:`USERS_FILE`); None while its owner is stopping it (holds the file
    exclusively). The owner stops its server only with the file held
    exclusively, so a server a process holds a share of keeps running."""
    import fcntl

    try:
        fd = os.open(os.path.join(path, USERS_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return -1  # a read-only directory: no protocol possible; share without a hold
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unshare(path: str) -> None:
    with _lock:
        fds = _shares.get(path) or []
        fd = fds.pop() if fds else None
        if not fds:
            _shares.pop(path, None)
    _close(fd)


def _close(fd) -> None:
    if isinstance(fd, int) and fd >= 0:
        try:
            os.close(fd)  # drops the flock
        except OSError:
            pass


def _exclusive(path: str):
    """The owner's exclusive hold on :data:`USERS_FILE` (a descriptor, or None
    without one: ``:memory:``, a read-only directory), or :data:`_SHARED`
    while another process holds a share."""
    import fcntl

    if path == MEMORY:
        return None
    try:
        fd = os.open(os.path.join(path, USERS_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return _SHARED
    return fd


#: seconds between two "waiting" lines on standard error
NOTICE_EVERY = 5.0


def _wait_exclusive(emb: "_Embedded", poll: float = 0.1):
    """At exit: wait until no other process shares ``emb``'s server (saying so
    on standard error at once and every :data:`NOTICE_EVERY` seconds); the
    exclusive descriptor, or None when waiting was cut short by Ctrl-C."""
    from ragrev.notice import Notice

    notice = Notice(NOTICE_EVERY)
    start = time.monotonic()
    try:
        while True:
            fd = _exclusive(emb.path)
            if fd is not _SHARED:
                return fd
            notice(f"keeping the embedded SecantusDB server of {emb.path} running while another ragrev process "
                   f"uses it ({time.monotonic() - start:.0f}s); Ctrl-C stops it now")
            time.sleep(poll)
    except KeyboardInterrupt:  # a second Ctrl-C stops waiting
        return None


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
        for path in list(_shares):  # this process's own holds on other servers first: no deadlock
            for fd in _shares.pop(path):
                _close(fd)
    for emb in running:
        fd = _wait_exclusive(emb)
        try:
            _stop(emb)
        finally:
            _close(fd)
