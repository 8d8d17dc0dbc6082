"""One reference for the reliability tests of a run: the chain project's
seeded stores, their snapshots before and after an uninterrupted
``upgrade head`` and after ``downgrade base`` (see ``harness.Harness.prepare``).

Under pytest-xdist the first worker that needs it prepares it, under a file
lock, in the directory the run's workers share; the others wait for it and
read it (the seeded stores are only ever copied from). Each worker's trials
still run in its own directory."""
from __future__ import annotations

import fcntl
import os
import pickle

import pytest

from tests.reliability.harness import Harness


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reliability")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # set in every worker of one xdist run
    # a worker's base directory is one of the run's (popen-gw0, ...); without xdist nothing is shared
    shared = tmp_path_factory.getbasetemp().parent / f"reliability-{run}" if run else workdir / "shared"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "reference.pickle"
        if not done.exists():
            done.with_suffix(".tmp").write_bytes(pickle.dumps(Harness(shared, seed=1).prepare()))
            done.with_suffix(".tmp").rename(done)
        reference = pickle.loads(done.read_bytes())
    return Harness(workdir, seed=1, pristine=shared / "pristine", reference=reference)
