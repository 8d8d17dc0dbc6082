"""Pause-past-lease trials (issue 12, part 1), shared by the per-store tests
and the reliability harness: runner A applies a slow data step, is paused
with SIGSTOP for longer than its lease, runner B takes the expired lease and
finishes the step, A is continued with SIGCONT (while B still runs, or after
B finished). A must stop before writing again: exit 3 with one line naming
the runner that took over; every row/document is transformed exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def wait_until(predicate, timeout=60.0, what="condition", poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def start(config, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ragrev", "-c", str(config), *args, "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def pause_past_lease(config, progressed, owner_pid, lease: float, cont_while_b_runs: bool = True,
                     b_progressed=None, timeout: float = 240.0) -> dict:
    """Run the trial on project ``config``: ``progressed()`` true once A has
    written some of the step, ``owner_pid()`` the pid in the store's lease
    (None when free or unreadable), ``b_progressed()`` true once B has
    written some. Returns the exit codes and stderr of both runners."""
    a = start(config, "upgrade", "head")
    try:
        wait_until(progressed, timeout=timeout, what="runner A's first batches")
        a.send_signal(signal.SIGSTOP)
        time.sleep(lease + 0.5)
        b = start(config, "upgrade", "head")
        if cont_while_b_runs:
            wait_until(lambda: owner_pid() == b.pid or b.poll() is not None, timeout=timeout,
                       what="runner B taking the lease")
            if b_progressed is not None:
                wait_until(lambda: b_progressed() or b.poll() is not None, timeout=timeout, what="runner B's progress")
            a.send_signal(signal.SIGCONT)
            b_out, b_err = b.communicate(timeout=timeout)
        else:
            b_out, b_err = b.communicate(timeout=timeout)
            a.send_signal(signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=timeout)
    finally:
        for proc in (a,):
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
    return {"a": (a.returncode, a.pid, _lines(a_err)), "b": (b.returncode, b.pid, _lines(b_err))}


def _lines(err: str) -> list[str]:
    """The lines a runner said, less JSON progress and the "waiting" notices."""
    return [ln for ln in err.splitlines()
            if ln.strip() and not ln.lstrip().startswith("{") and not ln.startswith("ragrev: waiting: ")]


def check_outcome(result: dict) -> None:
    """A exits 3 with one line naming B (its pid) and when it took over; B exits 0."""
    (a_code, _, a_lines), (b_code, b_pid, b_lines) = result["a"], result["b"]
    assert b_code == 0, f"runner B exited {b_code}: {b_lines}"
    assert a_code == 3, f"runner A exited {a_code}: {a_lines}"
    assert len(a_lines) == 1 and "Traceback" not in a_lines[0], a_lines
    assert f":{b_pid}:" in a_lines[0] and "took over" in a_lines[0], a_lines
