"""The lease lock that lets one runner at a time migrate a store (DESIGN §4),
with fencing: a runner that lost its lease never writes again.

Each store keeps a lease (owner ``host:pid:uuid``, an expiry, the time it was
taken and a *fencing token*, a counter bumped at each takeover) that its
adapter takes atomically (``Store.lock_try``). :class:`Leases` takes the
leases of several stores in configuration order, waiting up to
``lock_timeout`` for each, renews them from background threads (one a store) every third
of ``lock_lease`` while steps run (``Store.lock_renew``: only while owner and
token are still this runner's; a renewal never takes a lease back), and
releases them at the end (the token stays, so the counter only grows).

Fencing (:meth:`Leases.fence`): before each revision, step and batch the
runner checks, without a round trip, that its lease was confirmed less than
half a lease ago (monotonic clock: a process paused with SIGSTOP, a suspended
VM, a network stall all show up as time passed); when not, and at every
checkpoint, it verifies owner and token in the store (``Store.lock_fence``,
which also renews; on a Milvus server, only when the lease was last confirmed
more than a sixth of a lease ago: ``Store.checkpoint_fresh``). A lease found in another runner's hands, or one that
could not be confirmed for a whole ``lock_lease``, raises :class:`LockLost`
(exit 3): the runner stops before its next write. SQL stores also verify the
token inside every write transaction, just before it commits (see
:mod:`ragrev.drivers.sql.store`), so a stale runner's transaction is rolled back.
A runner that is killed stops renewing: its lease expires after
``lock_lease`` and the next runner proceeds.
"""
from __future__ import annotations

import datetime as _dt
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from ragrev.errors import LockTimeout, RagrevError
from ragrev.notice import Notice

#: seconds between two "waiting for the lock" lines on standard error
NOTICE_EVERY = 5.0


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


def utc(epoch: float | None) -> str:
    """``epoch`` (seconds) as ``YYYY-MM-DD HH:MM:SS UTC``; ``?`` when unknown."""
    if epoch is None:
        return "?"
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def took_over(owner: str | None, since: str, released: bool = False) -> str:
    """How a store names the runner that took over a lease this runner lost."""
    if not owner:
        return f"another runner took over the lease (at {since})"
    return f"{owner} took over the lease at {since}" + (" (and has released it since)" if released else "")


class LockLost(RagrevError):
    """This runner's lease is gone (taken over, or not renewable for a whole lease)."""

    exit_code = 3


@dataclass
class Fence:
    """What a store needs to check that a write is made under this runner's
    lease (``Store.fence`` while :class:`Leases` holds it)."""

    owner: str
    token: int
    lease: float
    clock: Callable[[], float]
    #: ``clock()`` when the last renewal known to have succeeded was sent
    confirmed: float
    #: why the lease is lost, once known (the next write must not happen)
    lost: str | None = None
    #: the run is letting the lease go: a renewal still in flight must not write it again
    #: (on a store without compare-and-set it would overwrite the next runner's claim)
    released: bool = False

    def confirm(self, sent: float) -> None:
        self.confirmed = max(self.confirmed, sent)

    def lose(self, store: str, holder: str) -> "LockLost":
        if self.lost is None:
            self.lost = f"store {store!r}: {holder}; stopped before writing again"
        return LockLost(self.lost)


class Leases:
    """The leases of one run. ``clock`` (seconds, monotonic) is injectable so
    that tests can make a lease look lapsed without waiting it out."""

    def __init__(self, stores, timeout: float, lease: float, owner: str | None = None, poll: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.stores = list(stores)
        self.timeout = timeout
        self.lease = lease
        self.owner = owner or new_owner()
        self.poll = poll
        self.clock = clock
        self.held: list = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def acquire(self) -> None:
        for store in self.stores:
            store.ensure_meta()
            start = time.monotonic()
            notice = Notice(NOTICE_EVERY)  # says at once, then every few seconds, who holds the lock
            while True:
                sent = self.clock()
                holder = store.lock_try(self.owner, self.lease)
                if holder is None:
                    store.fence = Fence(self.owner, store.lock_token, self.lease, self.clock, sent)
                    self.held.append(store)
                    break
                waited = time.monotonic() - start
                if waited >= self.timeout:
                    self.release()
                    raise LockTimeout(store.name, holder, waited)
                notice(f"store {store.name!r} is locked by {holder}; waited {waited:.0f}s of {self.timeout:.0f}s")
                time.sleep(min(self.poll, max(0.0, self.timeout - waited)))
        # one thread per store: a store that is slow to answer never delays another's renewal
        self._threads = [threading.Thread(target=self._renew_loop, args=(store,), name=f"ragrev-lease-{store.name}",
                                          daemon=True) for store in self.held]
        for thread in self._threads:
            thread.start()

    def fence(self, store, verify: bool = False) -> None:
        """Raise :class:`LockLost` unless this runner still holds ``store``'s
        lease. Without ``verify`` a lease confirmed less than half a lease ago
        needs no round trip; with it (a checkpoint), one confirmed less than
        ``store.checkpoint_fresh`` of a lease ago (0 on most stores: always a
        round trip); otherwise the store verifies owner and token (and renews
        the lease)."""
        fence = store.fence
        if fence is None:
            return
        if fence.lost is not None:
            raise LockLost(fence.lost)
        if self.clock() - fence.confirmed < (store.checkpoint_fresh if verify else 0.5) * self.lease:
            return
        sent = self.clock()
        try:
            holder = store.lock_fence(fence)
        except LockLost:
            raise
        except Exception as e:
            if self.clock() - fence.confirmed < self.lease:
                return  # still inside the confirmed lease: a later check retries
            raise fence.lose(store.name, f"could not renew the lease for {self.clock() - fence.confirmed:.1f}s, "
                                         f"longer than lock_lease ({type(e).__name__}: {str(e).strip()[:200]})") from None
        if holder is not None:
            raise fence.lose(store.name, holder)
        fence.confirm(sent)

    #: kept for callers of the former API: a full check of ``store``'s lease
    def verify(self, store) -> None:
        self.fence(store, verify=True)

    def _renew_loop(self, store) -> None:
        interval = max(self.lease / 3.0, 0.05)
        while not self._stop.wait(interval):
            fence = store.fence
            if fence is None or fence.lost is not None or fence.released or store.renewal_blocked():
                continue
            sent = self.clock()
            try:
                holder = store.lock_renew(fence)
            except Exception:  # a busy store: the next renewal retries, and the runner's next
                continue      # fence() verifies itself once the lease is half gone (fatal if it cannot)
            if holder is not None:
                fence.lose(store.name, holder)
            else:
                fence.confirm(sent)

    def release(self) -> None:
        for store in self.held:
            if store.fence is not None:
                store.fence.released = True
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for store in reversed(self.held):
            fence, store.fence = store.fence, None
            if fence is None or fence.lost is not None:
                continue  # not ours any more: never touch another runner's lease
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
