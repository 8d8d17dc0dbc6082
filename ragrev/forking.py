"""Work split over forked child processes, for commands whose cost is CPU
spent importing and starting drivers (``ragrev current``: see
:func:`ragrev.commands.current`). Threads would run that work one at a time;
a forked child runs it on another core. Results come back pickled through a
pipe; a child's error is raised in the parent.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import threading


def forked(groups: list, work) -> dict:
    """Run ``work(group)`` for each of ``groups`` (tuples of store names) in
    a forked child process (on Linux, while this process runs no other
    thread: forking is safe then; elsewhere nothing is forked and the caller
    does the work itself). Returns ``{group: (pid, read end of its pipe)}``
    for :func:`collect`; ``work`` returns picklable data and closes what
    it opened."""
    if not groups or not sys.platform.startswith("linux") or threading.active_count() != 1:
        return {}
    children = {}
    for group in groups:
        sys.stdout.flush()
        sys.stderr.flush()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns (no atexit hook of the parent runs)
            try:
                os.close(r)
                _child(group, work, w)
            finally:
                os._exit(0)
        os.close(w)
        children[tuple(group)] = (pid, r)
    return children


def _child(group, work, fd: int) -> None:
    try:
        payload = ("rows", work(list(group)))
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
        payload = ("error", (type(e), e.args, dict(vars(e))))
        try:
            pickle.dumps(payload)
        except Exception:
            from ragrev.errors import RagrevError

            payload = ("error", (RagrevError, (str(e),), {"message": str(e), "data": {}}))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pickle.dumps(payload))
    except OSError:  # the parent stopped listening
        pass


def collect(children: dict, stop: bool = False) -> dict:
    """The results of :func:`forked`'s children, each waited for (after a
    SIGINT when ``stop``: the caller failed); raises the first child's
    error. A child that said nothing (killed) is left out."""
    rows, error = {}, None
    waiting = {pid for pid, _ in children.values()}
    for pid, r in children.values():
        if stop:
            os.kill(pid, signal.SIGINT)
        try:
            with os.fdopen(r, "rb") as f:
                data = f.read()
        except BaseException:  # Ctrl-C while waiting: stop the children still running, wait for them
            for other in waiting:
                os.kill(other, signal.SIGINT)
                _wait(other)
            raise
        _wait(pid)
        waiting.discard(pid)
        if stop or not data:
            continue
        kind, value = pickle.loads(data)
        if kind == "rows":
            rows.update(value)
        elif error is None:
            cls, args, state = value
            error = cls.__new__(cls)
            error.args = args
            error.__dict__.update(state)
    if error is not None:
        raise error
    return rows


def _wait(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
