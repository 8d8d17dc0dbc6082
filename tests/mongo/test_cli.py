"""The MongoDB adapter end to end, through ``ragrev`` commands: a chain of
revisions and its derived downgrade checked level by level, set_schema over
violators, bad schemas, two runners on one store, and a transform killed with
SIGKILL and resumed."""
from __future__ import annotations

import re
import signal
import time

import pymongo
import pytest

from ragrev.config import StoreConfig
from ragrev.drivers.mongo import secantus
from ragrev.stores import open_store
from tests.helpers.project import REAL_MONGO
from tests.helpers.mongo import current, indexes_of, raw_docs, validator_of
from tests.helpers.mongo import V1, V2, sample_docs

CHAIN = {
    "r1": f"op.docs.create_collection('documents', schema={V1!r})\n    op.docs.create_index('documents', 'title')",
    "r2": "op.docs.add_field('documents', 'lang', default='en')",
    "r3": f"op.docs.set_schema('documents', {V2!r})",
    "r4": "op.docs.rename_field('documents', 'body', 'content', keep_order=True)\n    "
          "op.docs.rename_field('documents', 'content.text', 'content.plain', keep_order=True)",
    "r5": "op.docs.drop_field('documents', 'draft')\n    op.docs.expect_count('documents', 32)",
}


def add_chain(p, upto: int = 5):
    down = None
    for i in range(1, upto + 1):
        rev = f"r{i}"
        p.add(rev, down, f"def upgrade(op):\n    {CHAIN[rev]}\n")  # no downgrade(): derived from the inverses
        down = rev


def state(db):
    if "documents" not in db.list_collection_names():
        return None
    return raw_docs(db.documents), validator_of(db, "documents"), indexes_of(db, "documents")


@pytest.mark.slow
def test_chain_and_derived_downgrade_restore_every_level_exactly(mongo_project, db):
    p = mongo_project()
    add_chain(p)
    p.cli("upgrade", "r1", "-q")
    db.documents.insert_many(sample_docs())
    states = {"r1": state(db)}
    for rev in ("r2", "r3", "r4", "r5"):
        p.cli("upgrade", rev, "-q")
        assert current(db) == (rev,)
        states[rev] = state(db)
    assert db.documents.find_one({"_id": 1}) .keys() == {"_id", "title", "content", "n", "score", "when", "blob",
                                                          "price", "lang"}
    for rev in ("r4", "r3", "r2", "r1"):
        p.cli("downgrade", "-1", "-q")
        assert current(db) == (rev,)
        assert state(db) == states[rev], f"state at {rev} differs after downgrade"
    p.cli("upgrade", "head", "-q")
    assert state(db) == states["r5"]
    p.cli("downgrade", "r1", "-q")
    assert state(db) == states["r1"]
    p.cli("downgrade", "base", "-q")
    assert current(db) == () and "documents" not in db.list_collection_names()
    trash = [n for n in db.list_collection_names() if n.startswith("ragrev_trash_") and n.endswith("_documents")]
    assert len(trash) == 1 and raw_docs(db[trash[0]]) == states["r1"][0]
    result = p.cli("purge")
    assert trash[0] in result.output
    assert not [n for n in db.list_collection_names() if n.startswith("ragrev_trash_")]


def test_plan_shows_the_steps_and_rows_and_changes_nothing(mongo_project, db):
    p = mongo_project()
    add_chain(p, 2)
    p.cli("upgrade", "r1", "-q")
    db.documents.insert_many(sample_docs())
    before = state(db)
    out = p.cli("upgrade", "head", "--plan").output
    assert "add_field(collection='documents', field='lang', default='en'" in out and "25" in out
    assert state(db) == before and current(db) == ("r1",)


def test_set_schema_over_violators_fails_with_count_and_ids_and_changes_nothing(mongo_project, db):
    p = mongo_project()
    p.add("r1", None, f"def upgrade(op):\n    {CHAIN['r1']}\n")
    p.add("r2", "r1", f"def upgrade(op):\n    op.docs.set_schema('documents', {V2!r})\n")
    p.cli("upgrade", "r1", "-q")
    db.documents.insert_many(sample_docs())
    before = state(db)
    result = p.cli("upgrade", "head", "-q", expect=1)
    assert "set_schema 'documents': 25 existing document(s) violate the new schema (e.g. _id 1, 2, 3, 4, 6)" \
        in result.output
    assert state(db) == before and current(db) == ("r1",)


def test_invalid_json_schema_is_exit_2_with_file_and_line_and_nothing_changes(mongo_project, db):
    p = mongo_project()
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('a')\n    "
                      "op.docs.set_schema('a', {'properties': {'n': {'type': 'integr'}}})\n")
    result = p.cli("upgrade", "head", "-q", expect=2)
    assert re.search(r"revisions/r1\.py:10: set_schema: invalid JSON Schema at properties/n/type", result.output)
    assert len(result.output.strip().splitlines()) == 1
    assert db.list_collection_names() == []
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('a', schema={'if': {}, 'then': {}})\n")
    result = p.cli("upgrade", "head", "-q", expect=2)
    assert "cannot express: /: if; /: then" in result.output and db.list_collection_names() == []


SLOW = """\
import time


def bump(doc):
    time.sleep({delay})
    doc["hits"] = doc.get("hits", 0) + 1
    return doc


def upgrade(op):
    op.docs.transform("documents", bump, batch_size={batch})
"""


def slow_project(p, delay=0.004, batch=10):
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('documents')\n")
    p.add("r2", "r1", SLOW.format(delay=delay, batch=batch))
    return p


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lock_owner(db):
    try:
        doc = db.ragrev_lock.find_one({"_id": "lock"})
    except pymongo.errors.PyMongoError:
        return None
    return doc and doc.get("owner")


class Embedded:
    """A ``secantus:///dir`` store seen from the test: through the server of
    whichever process owns the directory (or our own when none does)."""

    def __init__(self, path):
        self.path = path
        self.url = f"secantus:///{path}"

    def db(self):
        uri = secantus.peer_uri(str(self.path))
        if uri is None:
            return None
        return pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)["rag"]

    def open(self):
        s = open_store(StoreConfig("docs", self.url, "mongo", {"database": "rag"}))
        s.connect()
        return s


@pytest.fixture(params=["server", "embedded"])
def target(request, mongo_project, tmp_path, db, make_project):
    """(project, function returning a pymongo Database of the store or None,
    function running ``fn(db)`` with the store's database)."""
    if request.param == "server":
        return mongo_project(), lambda: db, lambda fn: fn(db)
    if REAL_MONGO:
        pytest.skip("SecantusDB embedding")
    emb = Embedded(tmp_path / "var" / "docs")
    p = make_project({"docs": {"url": emb.url, "database": "rag"}})

    def with_db(fn):
        s = emb.open()
        try:
            return fn(s.db)
        finally:
            s.close()

    return p, emb.db, with_db


def test_two_runners_one_applies_the_other_exits_3_naming_the_holder(target):
    p, live_db, with_db = target
    slow_project(p, delay=0.03)  # long enough for the second runner to start and give up
    p.cli("upgrade", "r1", "-q")
    with_db(lambda d: d.documents.insert_many([{"_id": i} for i in range(150)]))
    first = p.run("upgrade", "head", "-q")
    owner = wait_until(lambda: (live_db() is not None and lock_owner(live_db())), what="the first runner's lock")
    assert owner.split(":")[1] == str(first.pid)
    second = p.run("upgrade", "head", "-q")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 3, err
    assert f":{first.pid}:" in err and "locked by" in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("ragrev: waiting: ")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "ragrev: waiting: store" in err and "is locked by" in err  # said at once while waiting (issue 12)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert with_db(lambda d: (current(d), d.documents.count_documents({"hits": 1}))) == (("r2",), 150)


def test_transform_killed_with_sigkill_resumes_without_touching_a_document_twice(target):
    p, live_db, with_db = target
    slow_project(p)
    p.cli("upgrade", "r1", "-q")
    with_db(lambda d: d.documents.insert_many([{"_id": i, "text": f"t{i}"} for i in range(400)]))
    # a killed runner leaves its lease (lock_lease = 2s): the next one waits it out
    p.set_options(lock_timeout="20s")
    kills = []
    for at_least in (60, 200):
        proc = p.run("upgrade", "head", "-q")

        def progressed():
            d = live_db()
            try:
                return d is not None and d.documents.count_documents({"hits": {"$gte": 1}}) >= at_least
            except pymongo.errors.PyMongoError:
                return False

        wait_until(progressed, what=f"{at_least} documents transformed")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(with_db(lambda d: d.documents.count_documents({"hits": {"$gte": 1}})))
    assert kills[0] < 400 and kills[1] < 400
    p.cli("upgrade", "head", "-q")

    def check(d):
        counts = {}
        for doc in d.documents.find():
            counts[doc.get("hits")] = counts.get(doc.get("hits"), 0) + 1
        return counts, current(d)

    assert with_db(check) == ({1: 400}, ("r2",))


def test_downgrade_of_a_load_skips_deleting_rows_from_the_collection_it_drops(mongo_project, db):
    """A revision that creates a collection and loads it: its derived
    downgrade drops the collection (into the trash) without first deleting
    the loaded documents one batch at a time (a step made moot by the drop)."""
    p = mongo_project()
    p.add("r1", None, "def upgrade(op):\n    op.docs.create_collection('loaded')\n"
                      "    op.docs.insert('loaded', [{'_id': i, 'n': i} for i in range(50)], batch_size=7)\n"
                      "    op.docs.create_collection('kept')\n")
    p.add("r2", "r1", "def upgrade(op):\n    op.docs.insert('kept', [{'_id': i} for i in range(5)])\n")
    p.cli("upgrade", "head", "-q")
    db.kept.insert_one({"_id": "theirs"})
    plan = p.cli("downgrade", "base", "--plan").output
    assert plan.count("delete_inserted") == 1 and "'kept'" in plan  # r2's: its collection stays until r1's revert
    p.cli("downgrade", "base", "-q")
    assert current(db) == () and not {"loaded", "kept"} & set(db.list_collection_names())
    trash = [n for n in db.list_collection_names() if n.startswith("ragrev_trash_") and n.endswith("_loaded")]
    assert len(trash) == 1 and db[trash[0]].count_documents({}) == 50  # dropped as it was, rows and all
    kept = [n for n in db.list_collection_names() if n.startswith("ragrev_trash_") and n.endswith("_kept")]
    assert len(kept) == 1 and [d["_id"] for d in db[kept[0]].find()] == ["theirs"]
    p.cli("upgrade", "head", "-q")
    assert db.loaded.count_documents({}) == 50 and db.kept.count_documents({}) == 6 - 1
