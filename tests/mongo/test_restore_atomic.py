"""The inverses of ``drop_field`` and ``add_field`` never take a document out
of its collection, not even for a moment (found by the reliability harness,
issue 9: a downgrade SIGKILLed during ``restore_field`` lost a document —
SecantusDB runs ``$merge`` with a pipeline as a delete then an insert, and
the kill fell between them). They now update each document in place.

A reader polls the collection's count while the downgrade runs in another
process (connected to this process's SecantusDB): the count never drops."""
from __future__ import annotations

import threading

import pytest

from tests.helpers.mongo import raw_docs

N = 1000


@pytest.mark.parametrize("step", ["drop_field('items', 'n')", "add_field('items', 'lang', default='en')"])
def test_the_inverse_never_removes_a_document(mongo_project, db, step):
    p = mongo_project()
    db.items.insert_many([{"_id": i, "n": i, "s": "x" * (i % 13)} for i in range(N)])
    before = raw_docs(db.items)
    p.add("a1", None, f"def upgrade(op):\n    op.docs.{step}\n")
    p.cli("upgrade", "head", "-q")
    counts, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            counts.append(db.items.count_documents({}))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        proc = p.run("downgrade", "base", "-q")
        _, err = proc.communicate(timeout=300)
    finally:
        stop.set()
        reader.join()
    assert proc.returncode == 0, err
    assert len(counts) > 5 and min(counts) == N, f"a document was missing during the downgrade ({min(counts)} < {N})"
    assert raw_docs(db.items) == before
