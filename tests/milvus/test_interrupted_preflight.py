"""A runner killed after a schema step ran and before it was journaled (the
``applied`` fault point; found by the reliability harness, issue 9): the
rerun's preflight must not reject the interrupted step because its work is
already done (the collection already in the trash, already renamed, the
index already dropped), and the run and its downgrade must end as an
uninterrupted one would."""
from __future__ import annotations

import signal
import time

import pytest

from ragrev.config import load_config
from ragrev.stores import open_store

BASE = '''
def upgrade(op):
    op.vectors.create_collection("c", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "vec", "type": "FLOAT_VECTOR", "dim": 4}],
        indexes={"vec": {"index_type": "FLAT", "metric_type": "L2"}})
    op.vectors.insert("c", rows=[{"id": i, "vec": [float(i), 1.0, 0.0, 2.0]} for i in range(50)])
'''

STEPS = {
    "drop_collection": 'op.vectors.drop_collection("c")',
    "rename_collection": 'op.vectors.rename_collection("c", "d")',
    "drop_index": 'op.vectors.drop_index("c", "vec")',
}


def state(p) -> dict:
    store = open_store(load_config(p.config).store("vectors"))
    store.connect()
    try:
        out = {"heads": store.read_heads()}
        for name in store.user_collections():
            cs = store.collection_state(name)
            out[name] = (sorted(cs.fields), sorted(cs.indexes), store.count(name))
        return out
    finally:
        store.close()


@pytest.mark.parametrize("step", sorted(STEPS))
def test_killed_after_a_schema_step_ran_then_upgrade_and_downgrade_finish(make_project, milvus_url, step):
    p = make_project({"vectors": milvus_url})
    p.set_options(lock_timeout="20s")
    p.add("k1", None, BASE)
    p.add("k2", "k1", f"def upgrade(op):\n    {STEPS[step]}\n")
    p.cli("upgrade", "k1", "-q")
    before = state(p)
    proc = p.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": "applied=1"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    time.sleep(0.5)
    p.cli("upgrade", "head", "-q")
    after = state(p)
    assert after["heads"] == ("k2",)
    p.cli("downgrade", "k1", "-q")
    assert state(p) == before
    p.cli("upgrade", "head", "-q")
    assert state(p) == after
