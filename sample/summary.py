"""What the sample RAG system holds, in a few lines: ``python -m sample.summary [-c ragrev.toml]``.

``./demo`` prints this after ``ragrev upgrade head`` / ``downgrade base``:
the count of each store's data (articles by language, passages and the
collection and index behind the ``chunks`` alias, live and archived
conversations, the source catalog, the files in cold storage), what the
trash holds, and a sample search — the query embedded with the function
that made the passages' vectors, the top 3 passages from Milvus (or pgvector).

It connects through the stores of ``ragrev.toml`` (so the same environment
variables point it at real servers) and then talks to each with its own
driver: pymongo, pymilvus (or the pgvector store's SQL), SQLAlchemy. Milvus Lite lets one process open a
data file at a time: run it when no ragrev is running.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa

from ragrev.config import load_config
from ragrev.embeddings import hashing
from ragrev.stores import open_store

QUERY = "how do I replace the brake pads"
#: the embedding of the passages, by the dimension of chunks.embedding
#: (revision c5d90e4b2a17 loads 64-d vectors, e63b4a9d7f25 switches to 256-d)
EMBEDDINGS = {64: hashing(dim=64), 256: hashing(dim=256, seed=1)}
TRASH = "ragrev_trash_"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample.summary", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="ragrev.toml")
    args = parser.parse_args(argv)
    for line in summary(args.config):
        print(line)
    return 0


def summary(config_path) -> list[str]:
    config = load_config(config_path)
    root = Path(config.path).parent
    stores = config.stores
    lines, trash = {}, 0
    with connected(stores["vectors"]) as vectors:  # first: the search needs the titles from docs
        if vectors.kind == "pgvector":
            names = [r["relname"] for r in vectors.q("SELECT relname FROM pg_class WHERE relkind IN ('r', 'v') "
                                                      "AND relnamespace = current_schema()::regnamespace")]
            trash += sum(n.startswith(TRASH) for n in names)
            lines["chunks"], hits, query_line = pgvector_chunks_lines(vectors, names)
        else:
            names = vectors.c.list_collections()
            trash += sum(n.startswith(TRASH) for n in names)
            lines["chunks"], hits, query_line = chunks_lines(vectors.c, names)
    with connected(stores["docs"]) as docs, connected(stores["eu"]) as eu:
        names = docs.db.list_collection_names()
        trash += sum(n.startswith(TRASH) for n in names)
        lines["documents"] = documents_line(docs.db, names)
        lines["conversations"] = conversations_line(docs.db, names)
        eu_names = eu.db.list_collection_names()
        if eu.db.name != docs.db.name or eu.config.url != docs.config.url:
            trash += sum(n.startswith(TRASH) for n in eu_names)
        if "conversations" in eu_names:
            n = eu.db.conversations.count_documents({})
            lines["eu"] = row("eu.conversations", n, "messages on the EU instance (merge_from copies, never moves)")
        else:
            lines["eu"] = row("eu.conversations", None, "no collection")
        titles = {d["_id"]: d["title"] for d in docs.db.documents.find(
            {"_id": {"$in": [h["entity"]["doc_id"] for h in hits]}}, {"title": 1})} if hits else {}
    cold = root / "var" / "cold"
    files = sorted(p for p in cold.rglob("*") if p.is_file()) if cold.exists() else []
    parts = [p for p in files if not p.name.endswith(".manifest.json")]
    size = sum(p.stat().st_size for p in files)
    lines["cold"] = row("var/cold", len(files), f"files: {len(parts)} archive parts and their manifests, "
                                                f"{size / 1024:.0f} KiB")
    engine = sa.create_engine(stores["meta"].url)
    with engine.connect() as c:
        tables = sa.inspect(c).get_table_names()
        trash += sum(t.startswith(TRASH) for t in tables)
        if "sources" in tables:
            n = c.execute(sa.text("SELECT count(*) FROM sources")).scalar()
            lines["sources"] = row("meta.sources", n, "sources in the catalog")
        else:
            lines["sources"] = row("meta.sources", None, "no table")
    engine.dispose()
    order = ["documents", "chunks", "conversations", "eu", "cold", "sources"]
    out = [lines[k] for k in order]
    if trash:
        out.append(f"  trash: {trash} collections/tables kept by drops and data steps for their inverses "
                   "('ragrev purge' deletes them)")
    if query_line:
        out.append(query_line)
    for hit in hits:
        e = hit["entity"]
        text = e["text"].replace("\n", " ")
        lang = f" [{e['lang']}]" if e.get("lang") else ""
        out.append(f"  {hit['distance']:.3f}  {e['doc_id']}#{e['position']}{lang} \"{titles.get(e['doc_id'], '?')}\"")
        out.append(f"         {text[:100]}{'...' if len(text) > 100 else ''}")
    return out


def row(name: str, count, text: str) -> str:
    number = "-" if count is None else f"{count:,}"
    return f"  {name:<20} {number:>6}  {text}"


class connected:
    """A store of the configuration, connected for a ``with`` block."""

    def __init__(self, config):
        self.store = open_store(config)

    def __enter__(self):
        self.store.connect()
        return self.store

    def __exit__(self, *exc):
        self.store.close()


def documents_line(db, names) -> str:
    if "documents" not in names:
        return row("docs.documents", None, "no collection")
    n = db.documents.count_documents({})
    langs = {d["_id"]: d["n"] for d in db.documents.aggregate(
        [{"$group": {"_id": "$lang", "n": {"$sum": 1}}}])}
    if list(langs) == [None]:
        return row("docs.documents", n, "articles (no language codes yet)")
    by_lang = ", ".join(f"{langs[k]:,} {k}" for k in sorted(langs, key=lambda k: -langs[k]) if k)
    return row("docs.documents", n, f"articles: {by_lang}")


def conversations_line(db, names) -> str:
    if "conversations" not in names:
        return row("docs.conversations", None, "no collection")
    n = db.conversations.count_documents({})
    sessions = db.conversations.distinct("session_id")
    from_eu = sum(s.startswith("eu") for s in sessions)
    archived = db.conversations_archive.count_documents({}) if "conversations_archive" in names else 0
    text = f"messages in {len(sessions):,} live sessions"
    if from_eu:
        text += f" ({from_eu} from the EU instance)"
    if archived:
        text += f"; {archived:,} sessions archived (pointers in conversations_archive)"
    return row("docs.conversations", n, text)


def chunks_lines(client, names) -> tuple[str, list, str | None]:
    aliases = client.list_aliases().get("aliases", [])
    if "chunks" not in names and "chunks" not in aliases:
        return row("vectors.chunks", None, "no collection"), [], None
    target = client.describe_alias("chunks")["collection_name"] if "chunks" in aliases else "chunks"
    n = client.query(target, filter="", output_fields=["count(*)"])[0]["count(*)"]
    fields = {f["name"]: f for f in client.describe_collection(target)["fields"]}
    dim = fields["embedding"]["params"]["dim"]
    index = {}
    for name in client.list_indexes(target):
        info = client.describe_index(target, name)
        if info.get("field_name") == "embedding":
            index = info
    via = f"alias -> {target}" if target != "chunks" else "collection"
    others = [c for c in names if c.startswith("chunks") and c != target]
    text = f"passages ({via}): {dim}-d, {index.get('index_type')}/{index.get('metric_type')}"
    if others:
        text += f"; also {', '.join(others)}"
    line = row("vectors.chunks", n, text)
    embed = EMBEDDINGS.get(dim)
    if embed is None or not n:
        return line, [], None
    hits = client.search("chunks", data=[embed([QUERY])[0].tolist()], anns_field="embedding", limit=3,
                         output_fields=["doc_id", "position", "text"] + (["lang"] if "lang" in fields else []),
                         search_params={"metric_type": index.get("metric_type"), "params": {}})[0]
    kind = "similarity" if index.get("metric_type") in ("COSINE", "IP") else "distance"
    return line, hits, f"search {QUERY!r}: the query embedded with {embed!r}, top 3 by {index.get('metric_type')} {kind}:"


def pgvector_chunks_lines(store, names) -> tuple[str, list, str | None]:
    """:func:`chunks_lines` for a pgvector store (``VECTORS_URL=pgvector:///./var/pg``)."""
    if "chunks" not in names:
        return row("vectors.chunks", None, "no collection"), [], None
    target = store.schema_state().physical("chunks")
    cs = store.state(target)
    n = store.q(f"SELECT count(*) AS n FROM {store.ident(target)}")[0]["n"]
    dim, index = cs.fields["embedding"]["dim"], cs.indexes.get("embedding", {})
    via = f"view -> {target}" if target != "chunks" else "table"
    others = [c for c in names if c.startswith("chunks") and c not in (target, "chunks")]
    text = f"passages ({via}): {dim}-d, {index.get('index_type')}/{index.get('metric_type')}"
    line = row("vectors.chunks", n, text + (f"; also {', '.join(others)}" if others else ""))
    embed = EMBEDDINGS.get(dim)
    if embed is None or not n:
        return line, [], None
    metric = index.get("metric_type", "COSINE")
    op = {"L2": "<->", "IP": "<#>", "COSINE": "<=>"}[metric]
    cols = ["doc_id", "position", "text"] + (["lang"] if "lang" in cs.fields else [])
    rows = store.q(f"SELECT {', '.join(cols)}, embedding {op} %s AS d FROM chunks ORDER BY d LIMIT 3",
                   (embed([QUERY])[0],))
    sign = {"L2": 1, "IP": -1, "COSINE": -1}[metric]  # pgvector orders by distance: back to Milvus's scores
    hits = [{"entity": {c: r[c] for c in cols}, "distance": (1 if metric == "COSINE" else 0) + sign * r["d"]}
            for r in rows]
    kind = "similarity" if metric in ("COSINE", "IP") else "distance"
    return line, hits, f"search {QUERY!r}: the query embedded with {embed!r}, top 3 by {metric} {kind}:"


if __name__ == "__main__":
    sys.exit(main())
