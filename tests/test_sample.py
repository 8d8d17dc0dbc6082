"""The sample RAG system of the repository (``ragrev.toml`` + ``revisions/``,
what ``./demo`` migrates), end to end on its embedded engines: a copy of the
project in a temporary directory, with a small corpus (RAGREV_SAMPLE_DOCS),
goes up to head, down to base and up again through the CLI. At head every
store's content is checked against what the revisions' seeded generators
make; at base nothing of the user's is left but the trash (and the cold
files, which ragrev never deletes); the second head equals the first."""
from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ragrev.cli import cli
from ragrev.config import load_config
from ragrev.stores import open_store

REPO = Path(__file__).resolve().parent.parent
HEAD = "b81e5d3f6c0a"
CORPUS = "c5d90e4b2a17_load_the_corpus.py"
CUTOFF = dt.datetime(2026, 11, 27) - dt.timedelta(days=90)
DOCS = 150


@pytest.fixture
def sample(tmp_path, monkeypatch):
    """The repository's sample project, copied (its ./var stays untouched)."""
    for var in ("VECTORS_URL", "DOCS_URL", "EU_DOCS_URL", "META_URL", "RAGREV_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAGREV_SAMPLE_DOCS", str(DOCS))
    shutil.copy(REPO / "ragrev.toml", tmp_path / "ragrev.toml")
    shutil.copytree(REPO / "revisions", tmp_path / "revisions", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def ragrev(project: Path, *args):
    result = CliRunner().invoke(cli, ["-c", str(project / "ragrev.toml"), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def generated(project: Path):
    """The revisions' own generators: what the stores must hold."""
    spec = importlib.util.spec_from_file_location("sample_corpus", project / "revisions" / CORPUS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Stores:
    """Every store of the project, connected."""

    def __init__(self, project: Path):
        config = load_config(project / "ragrev.toml")
        self.all = {name: open_store(cfg) for name, cfg in config.stores.items()}

    def __enter__(self):
        for s in self.all.values():
            s.connect()
        return self

    def __exit__(self, *exc):
        for s in self.all.values():
            s.close()

    def __getattr__(self, name):
        return self.all[name]


def sql_tables(meta) -> tuple[list[str], int | None]:
    engine = sa.create_engine(meta.config.url)
    with engine.connect() as c:
        tables = sa.inspect(c).get_table_names()
        n = c.execute(sa.text("SELECT count(*) FROM sources")).scalar() if "sources" in tables else None
    engine.dispose()
    return [t for t in tables if not t.startswith("ragrev_")], n


def at_head(project: Path, gen) -> dict:
    """Check every store at head against the generators; a snapshot to compare."""
    docs_expected = list(gen.documents())
    chunks_expected = list(gen.chunks())
    main = list(gen.conversations())
    eu = list(gen.eu_conversations())
    last = {}
    for m in main:
        last[m["session_id"]] = max(last.get(m["session_id"], m["ts"]), m["ts"])
    archived = {s for s, ts in last.items() if ts < CUTOFF}
    with Stores(project) as st:
        for store in st.all.values():
            assert store.read_heads() == (HEAD,), store.name

        assert sql_tables(st.meta) == (["sources"], 6)

        db = st.docs.db
        assert st.docs.user_collections() == ["conversations", "conversations_archive", "documents"]
        assert db.documents.count_documents({}) == len(docs_expected) == DOCS
        by_source = {(d["source_id"], d["lang"]) for d in db.documents.find({}, {"source_id": 1, "lang": 1})}
        assert {lang for _, lang in by_source} <= {"en", "de", "fr"}
        assert all(lang == {5: "de", 6: "fr"}.get(src, "en") for src, lang in by_source)
        validator = db.command("listCollections", filter={"name": "documents"})["cursor"]["firstBatch"][0]
        assert "lang" in validator["options"]["validator"]["$jsonSchema"]["required"]
        assert "lang_1_source_id_1" in {ix["name"] for ix in db.documents.list_indexes()}

        # archived: exactly the sessions whose last message is older than the cutoff
        pointers = list(db.conversations_archive.find())
        assert {p["session"] for p in pointers} == archived and archived and archived != set(last)
        for p in pointers:
            assert (project / "var" / "cold" / p["path"]).is_file()
            assert (project / "var" / "cold" / (p["path"] + ".manifest.json")).is_file()
        assert not db.conversations.count_documents({"session_id": {"$in": sorted(archived)}})
        # merged: EU-only sessions, replicas continued, clashing ids renamed, retries dropped
        live = [m for m in main if m["session_id"] not in archived]
        def content(m):
            return tuple(sorted((k, v) for k, v in m.items() if k != "_id"))

        eu_content = {content(m) for m in eu}
        replica_dups = [m for m in live if content(m) in eu_content]
        retries = [m for m in eu if m["_id"].endswith("-retry")]
        assert replica_dups and retries
        assert db.conversations.count_documents({}) == len(live) + len(eu) - len(replica_dups) - len(retries)
        sessions = set(db.conversations.distinct("session_id"))
        assert {m["session_id"] for m in eu if m["session_id"].startswith("eu-")} <= sessions
        clashes = {s for s in sessions if s.startswith("eu:")}
        assert clashes and {s[3:] for s in clashes} <= set(last) - archived
        replica = replica_dups[0]["session_id"]
        assert db.conversations.count_documents({"session_id": replica}) == \
            sum(m["session_id"] == replica for m in eu)
        assert not db.conversations.count_documents({"_id": {"$regex": "-retry$"}})
        assert st.eu.db.conversations.count_documents({}) == len(eu)              # the source is left as it was

        c = st.vectors
        assert c.alias_target("chunks") == "chunks_256"
        green = c.collection_state("chunks_256")
        assert green.fields["embedding"]["dim"] == 256 and "lang" in green.fields
        assert (green.indexes["embedding"]["index_type"], green.indexes["embedding"]["metric_type"]) == ("HNSW", "COSINE")
        assert c.count("chunks_256") == len(chunks_expected)
        (blue,) = [n for n in c.user_collections() if n != "chunks_256"]
        blue_state = c.collection_state(blue)
        assert blue_state.fields["embedding"]["dim"] == 64 and "lang" in blue_state.fields
        assert blue_state.indexes["embedding"]["index_type"] == "HNSW" and c.count(blue) == len(chunks_expected)
        rows = c.c.query("chunks", filter="id < 300", output_fields=["id", "doc_id", "lang", "text"])
        expected = {r["id"]: r for r in chunks_expected if r["id"] < 300}
        assert {r["id"]: (r["doc_id"], r["text"]) for r in rows} == \
            {i: (r["doc_id"], r["text"]) for i, r in expected.items()}

        return {"sessions": sorted(sessions), "pointers": sorted(p["session"] for p in pointers),
                "messages": db.conversations.count_documents({}), "documents": db.documents.count_documents({}),
                "chunks": c.count("chunks"), "files": sorted(p.name for p in (project / "var" / "cold").rglob("*"))}


def at_base(project: Path) -> None:
    with Stores(project) as st:
        for store in st.all.values():
            assert store.read_heads() == (), store.name
        assert sql_tables(st.meta) == ([], None)
        assert st.docs.user_collections() == [] and st.eu.user_collections() == []
        assert st.vectors.user_collections() == [] and not st.vectors.aliases()
        trash = [n for n in st.docs.collection_names() if n.startswith("ragrev_trash_")]
        assert any(n.endswith("_documents") for n in trash) and any(n.endswith("_conversations") for n in trash)
    assert list((project / "var" / "cold").rglob("*.jsonl.gz"))      # cold storage is never deleted


@pytest.mark.slow
def test_the_sample_chain_up_down_and_up_again(sample):
    assert "No problems found in 8 revision(s)" in ragrev(sample, "check")     # lint and ragrev.sum
    gen = generated(sample)
    plan = ragrev(sample, "upgrade", "head", "--plan")
    assert "insert('documents', documents(), batch_size=500)" in plan and "alter_alias" in plan
    ragrev(sample, "upgrade", "head", "-q")
    first = at_head(sample, gen)

    from sample.summary import summary
    lines = "\n".join(summary(sample / "ragrev.toml"))
    assert f"{first['chunks']:,}  passages (alias -> chunks_256): 256-d, HNSW/COSINE" in lines
    assert "search 'how do I replace the brake pads'" in lines and len(lines.splitlines()) >= 10

    ragrev(sample, "downgrade", "base", "-q")
    at_base(sample)
    ragrev(sample, "upgrade", "head", "-q")
    assert at_head(sample, gen) == first
