"""The exit of a process that used MongoDB stores: pymongo joins its
monitor threads at exit (they sleep in half-second steps), which is pure
waiting once every client is closed, so ragrev drops that join then
(:func:`ragrev.drivers.mongo.store._exit_without_waiting_for_closed_clients`);
with a client still open pymongo's own exit hook runs. Either way the
process exits cleanly, with what it wrote in the store."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pymongo

SCRIPT = textwrap.dedent('''
    import sys
    from ragrev.config import StoreConfig
    from ragrev.drivers.mongo.store import _exit_without_waiting_for_closed_clients
    from ragrev.stores import open_store

    store = open_store(StoreConfig("docs", sys.argv[1], "mongo", {"database": sys.argv[2]}))
    store.connect()
    store.ensure_meta()
    store.write_heads(("r1",))
    if sys.argv[3] == "close":
        store.close()
    print(int(_exit_without_waiting_for_closed_clients()))
''')


def _run(url, database, how):
    p = subprocess.run([sys.executable, "-c", SCRIPT, url, database, how], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return int(p.stdout)


def test_pymongo_exit_join_is_dropped_only_once_every_client_is_closed(mongo_url):
    client = pymongo.MongoClient(mongo_url)
    try:
        assert _run(mongo_url, "exit_closed", "close") == 1      # pymongo's hook unregistered
        assert _run(mongo_url, "exit_open", "open") == 0         # a client still open: its hook stays
        for database in ("exit_closed", "exit_open"):
            assert client[database].ragrev_version.find_one({"_id": "heads"})["heads"] == ["r1"]
    finally:
        for database in ("exit_closed", "exit_open"):
            client.drop_database(database)
        client.close()
