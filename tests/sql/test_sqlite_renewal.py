"""On SQLite the lease is renewed from a background thread on its own
connection while the runner writes on another: the two must never deadlock
(found by the reliability harness, issue 9: a run failed with "database is
locked" — the renewal held SQLite's write lock, waiting to commit, while the
runner's transaction, which had read first, asked for it; SQLite refuses such
a request at once instead of waiting). The runner's write transactions on
SQLite take the write lock when they begin, so they never have to upgrade."""
from __future__ import annotations


from tests.helpers.sql import slow_project
from tests.helpers.sql import heads, scalar


def test_renewals_never_fail_a_run_of_many_short_revisions(make_project, tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    p = slow_project(make_project, url, seconds=0.0, steps=1, revisions=40, mode="step")
    p.set_options(lock_lease="30ms")
    for _ in range(2):
        proc = p.run("upgrade", "head", "-q")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert heads(url) == {"q40"} and scalar(url, "SELECT COUNT(*) FROM counter") == 40
        proc = p.run("downgrade", "base", "-q")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert heads(url) == set()
