"""An embedded SecantusDB directory shared by two ragrev processes, when the
one that owns the server finishes first (found by the reliability harness,
issue 9: the runner that lost the lock owned the server, exited 3, and the
winner's run failed with "connection closed" half-way).

The owner must keep serving while another ragrev process is connected: here
an owner opens the store and closes it while a second process, connected to
its server, runs a slow transform holding the lock; that run must finish."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from tests.reliability.hashes import mongo_database

OWNER = textwrap.dedent('''
    import sys, time
    from ragrev.config import load_config
    from ragrev.stores import open_store
    store = open_store(load_config(sys.argv[1]).store("docs"))
    store.connect()
    print("connected", flush=True)
    time.sleep(float(sys.argv[2]))
    store.close()
''')

SLOW = '''
import time


def slow(doc):
    time.sleep(0.1)
    return {**doc, "n": doc["n"] + 1}


def back(doc):
    return {**doc, "n": doc["n"] - 1}


def upgrade(op):
    op.docs.transform("items", slow, inverse=back, batch_size=5)
'''


def test_the_owner_of_the_server_keeps_it_while_another_runner_uses_it(make_project):
    p = make_project({"docs": {"url": "secantus:///./var/docs", "database": "rag"}})
    with mongo_database(p.root / "var" / "docs", "rag") as db:
        db.items.insert_many([{"_id": i, "n": i} for i in range(40)])
    p.add("s1", None, SLOW)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(p.config), "1.5"], stdout=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "connected"
    runner = p.run("upgrade", "head", "-q")       # a peer of the owner's server; ~4s of transform
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
    start = time.monotonic()
    assert owner.wait(timeout=60) == 0
    assert time.monotonic() - start < 5           # the owner stopped once the runner was gone
    with mongo_database(p.root / "var" / "docs", "rag") as db:
        assert sorted(d["n"] for d in db.items.find()) == list(range(1, 41))
        assert db.ragrev_version.find_one({"_id": "heads"})["heads"] == ["s1"]
