"""``ragrev current`` on embedded SecantusDB stores (two databases of one
directory, next to a SQL store): it reads them through SecantusDB's storage
engine (:class:`ragrev.drivers.mongo.secantus_read.SecantusReader`), without
a server or pymongo, as its own process and in this one. Both must say what
the store says: the heads, a half-applied revision with its step count; a
directory this process or another serves is read through its server."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from ragrev.config import StoreConfig
from ragrev.drivers.mongo.secantus_read import SecantusReader
from ragrev.stores import open_store

C1 = '''
def upgrade(op):
    op.docs.create_collection("items")
    op.eu.create_collection("items")
    op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))
'''

C2 = '''
def rows():
    for i in range(150):
        yield {"_id": i, "n": i}
    raise RuntimeError("source went away")


def upgrade(op):
    op.docs.insert("items", rows=[{"_id": 1000, "n": 0}])
    op.docs.insert("items", rows=rows, batch_size=100)
    op.eu.insert("items", rows=[{"_id": 1, "n": 1}])
    op.meta.add_column("notes", sa.Column("body", sa.Text))
'''

HOLD = textwrap.dedent('''
    import sys
    from ragrev.config import load_config
    from ragrev.stores import open_store
    store = open_store(load_config(sys.argv[1]).store("docs"))
    store.connect()
    print("connected", flush=True)
    sys.stdin.readline()
    store.close()
''')


def _both(p, *args):
    """``current`` as its own process and in this one: (exit, stdout, stderr) of each."""
    proc = p.run("current", *args)
    out, err = proc.communicate(timeout=120)
    here = p.cli("current", *args, expect=None)
    return (proc.returncode, out, err), (here.exit_code, here.output)


def _config(p, name="docs", database="rag") -> StoreConfig:
    return StoreConfig(name, f"secantus:///{p.root}/var/docs", "mongo", {"database": database})


def _project(make_project):
    p = make_project({"docs": {"url": "secantus:///./var/docs", "database": "rag"},
                      "eu": {"url": "secantus:///./var/docs", "database": "rag_eu"},
                      "meta": "sqlite:///./var/meta.db"})
    p.add("c1", None, C1)
    p.add("c2", "c1", C2)
    return p


def test_heads_and_half_applied_revision_read_alike_forked_and_in_process(make_project):
    p = _project(make_project)
    (code, out, err), (here_code, here) = _both(p)
    assert code == here_code == 0, err
    assert out == here and out.split() == ["docs", "<base>", "(2", "pending)", "eu", "<base>", "(2", "pending)",
                                           "meta", "<base>", "(2", "pending)"]

    p.cli("upgrade", "c1")
    p.cli("upgrade", "head", expect=1)                # the second insert fails after its first batch
    (code, out, err), (here_code, here) = _both(p)
    assert code == here_code == 0, err
    assert out == here, (out, here)
    assert out.splitlines()[0].split()[:3] == ["docs", "c1", "(1"]
    assert "revision c2 half-applied (1/2 steps)" in out and "'ragrev downgrade c1' reverts it" in out

    (code, out, err), (_, here) = _both(p, "--json")
    assert code == 0 and json.loads(out) == json.loads(here)
    docs = json.loads(out)["stores"][0]
    assert docs["heads"] == ["c1"] and docs["half_applied"][0]["steps_done"] == 1

    # the reader's answers are the store's own, for both databases of the directory (one opening)
    answers = {}
    readers = [SecantusReader.open(_config(p)), SecantusReader.open(_config(p, "eu", "rag_eu"))]
    try:
        assert None not in readers and readers[0]._storage is readers[1]._storage
        for r in readers:
            answers[r.name] = (r.read_heads(), r.log_records(), r.log_records("c2"))
    finally:
        for r in readers:
            r.close()
    for name, database in (("docs", "rag"), ("eu", "rag_eu")):
        store = open_store(_config(p, name, database))
        store.connect()
        try:
            heads, records, only_c2 = answers[name]
            assert heads == store.read_heads() == ("c1",)
            assert records == store.log_records() and only_c2 == store.log_records("c2")
            assert bool(only_c2) == (name == "docs")      # c2 failed before its steps on eu
        finally:
            store.close()


def test_a_directory_served_here_or_by_another_process_is_read_through_its_server(make_project):
    p = _project(make_project)
    p.cli("upgrade", "c1")
    store = open_store(_config(p))
    store.connect()                                   # this process serves the directory now
    try:
        assert SecantusReader.open(_config(p)) is None
        here = p.cli("current", expect=None)
    finally:
        store.close()
    assert here.exit_code == 0 and here.output.split() == ["docs", "c1", "(1", "pending)", "eu", "c1", "(1",
                                                          "pending)", "meta", "c1", "(1", "pending)"]

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(p.config)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "connected"
        assert SecantusReader.open(_config(p)) is None
        proc = p.run("current")                       # a peer of the holder's server
        out, err = proc.communicate(timeout=120)
    finally:
        holder.communicate("\n", timeout=60)
    assert proc.returncode == 0 and out == here.output, err


def test_a_fresh_or_in_memory_store_is_left_to_the_store(tmp_path):
    assert SecantusReader.open(StoreConfig("d", f"secantus:///{tmp_path}/none", "mongo", {})) is None
    assert not (tmp_path / "none").exists()
    assert SecantusReader.open(StoreConfig("d", "secantus:///:memory:", "mongo", {})) is None
