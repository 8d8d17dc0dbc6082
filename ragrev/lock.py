"""The lease lock that lets one runner at a time migrate a store (DESIGN §4).

Each store keeps a lease (owner ``host:pid:uuid`` and an expiry) that its
adapter takes and renews atomically (``Store.lock_try``). :class:`Leases`
takes the leases of several stores in configuration order, waiting up to
``lock_timeout`` for each, renews them from a background thread while steps
run, and releases them at the end. A runner that is killed stops renewing:
its lease expires after ``lock_lease`` and the next runner proceeds.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from ragrev.errors import LockTimeout, RagrevError


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def local_pid(owner: str) -> int | None:
    """The pid in a :func:`new_owner` string when it names another process on
    this host; None for this process, another host or an unparsable owner."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return None
    return int(pid)


class LockLost(RagrevError):
    exit_code = 3


class Leases:
    def __init__(self, stores, timeout: float, lease: float, owner: str | None = None, poll: float = 0.2):
        self.stores = list(stores)
        self.timeout = timeout
        self.lease = lease
        self.owner = owner or new_owner()
        self.poll = poll
        self.held: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        for store in self.stores:
            store.ensure_meta()
            start = time.monotonic()
            while True:
                holder = store.lock_try(self.owner, self.lease)
                if holder is None:
                    self.held.append(store)
                    break
                waited = time.monotonic() - start
                if waited >= self.timeout:
                    self.release()
                    raise LockTimeout(store.name, holder, waited)
                time.sleep(min(self.poll, max(0.0, self.timeout - waited)))
        self._thread = threading.Thread(target=self._renew_loop, name="ragrev-lease", daemon=True)
        self._thread.start()

    def verify(self, store) -> None:
        """Renew now; raise if another runner took the lease meanwhile."""
        holder = store.lock_try(self.owner, self.lease)
        if holder is not None:
            raise LockLost(f"store {store.name!r}: lost the lock to {holder}; stopping before the next step")

    def _renew_loop(self) -> None:
        interval = max(self.lease / 3.0, 0.05)
        while not self._stop.wait(interval):
            for store in list(self.held):
                try:
                    store.lock_try(self.owner, self.lease)
                except Exception:  # a busy store: the next renewal or verify() retries
                    pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for store in reversed(self.held):
            try:
                store.lock_release(self.owner)
            except Exception:
                pass
        self.held = []

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
