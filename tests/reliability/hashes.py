"""Content hashes of the user's data in every store, read with the drivers
directly (never through ragrev's adapters), for the reliability tests.

Each store's part also holds its heads (``@heads``: what its
``ragrev_version`` says, ``[]`` when it has none), so a snapshot also tells
where each store is. A *snapshot* is ``{store name: {object: {"schema": ..., "rows": {key: [hash, ...]}}}}``
— per table/collection its schema and a map from primary key to the hashes of
the rows having that key (a list, so a duplicated key shows). What counts:

- SQL: tables (not ``ragrev_*``), their columns by name (type, nullable,
  default — not their order: a restored column comes back at the end of its
  table, a documented decision), primary key, indexes, and rows by primary key;
- MongoDB: collections (not ``ragrev_*``), validator (default level/action
  and an empty validator left out), indexes, and each document as its exact
  BSON bytes (field order and types count) by ``_id``. Pointer records of
  chat archives lose ``archived_at`` (the time of the archive run);
- Milvus: collections (not ``ragrev_*``), fields (type, dim, length,
  nullable, default, primary), dynamic field, indexes (type, metric,
  params), aliases, and rows by primary key (vectors as float32 bytes);
- cold storage: every file under a directory by relative path and SHA-256
  (a manifest's ``created`` time left out).

Stores are read only when no ragrev process has them open (Milvus Lite and an
embedded SecantusDB belong to one process at a time).
"""
from __future__ import annotations

import collections
import contextlib
import gzip
import hashlib
import json
import os
from pathlib import Path

VOLATILE = {"conversations_archive": ("archived_at",)}
#: the pseudo-object holding a store's heads (its ``ragrev_version``; [] when absent)
HEADS = "@heads"
Snapshot = dict


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _j(value) -> bytes:
    return json.dumps(value, sort_keys=True, default=repr).encode()


# --- opening the embedded engines ---------------------------------------------------------

@contextlib.contextmanager
def mongo_database(path, name: str):
    """A pymongo Database on the SecantusDB data in ``path`` (started in this process)."""
    import pymongo

    from ragrev.drivers.mongo import secantus

    uri, owned = secantus.acquire(str(path), "reliability")
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    try:
        yield client[name]
    finally:
        client.close()
        secantus.release(str(path), owned)


@contextlib.contextmanager
def milvus_client(path):
    """A MilvusClient on the Milvus Lite data in ``path`` (its server started for this process)."""
    import logging

    logging.getLogger("pymilvus").setLevel(logging.ERROR)  # query_iterator warns about Lite's timestamps
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import MilvusClient

    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    uri = server_manager_instance.start_and_get_uri(path)
    if uri is None:
        raise RuntimeError(f"cannot open Milvus Lite data {path} (is a ragrev process still holding it?)")
    client = MilvusClient(uri=uri)
    try:
        yield client
    finally:
        client.close()
        server_manager_instance.release_server(path)


# --- per kind ---------------------------------------------------------------------------------

def sql_snapshot(url: str, internal: bool = False) -> dict:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out = {}
    try:
        insp = sa.inspect(engine)
        with engine.connect() as conn:
            for table in sorted(insp.get_table_names()):
                if table.startswith("ragrev_") and not internal:
                    continue
                cols = insp.get_columns(table)
                pk = insp.get_pk_constraint(table).get("constrained_columns") or [c["name"] for c in cols]
                schema = {
                    "columns": {c["name"]: [str(c["type"]), bool(c["nullable"]), str(c.get("default"))] for c in cols},
                    "pk": pk,
                    "indexes": sorted([i["name"], i["column_names"], bool(i.get("unique"))]
                                      for i in insp.get_indexes(table)),
                }
                rows: dict = collections.defaultdict(list)
                for r in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings():
                    rows[repr(tuple(r[k] for k in pk))].append(_h(_j({k: r[k] for k in sorted(r.keys())})))
                out[table] = {"schema": schema, "rows": {k: sorted(v) for k, v in rows.items()}}
            heads = []
            if insp.has_table("ragrev_version"):
                heads = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM ragrev_version"))]
            out[HEADS] = {"schema": sorted(heads), "rows": {}}
    finally:
        engine.dispose()
    return out


def mongo_snapshot(db, internal: bool = False) -> dict:
    import bson
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from bson.son import SON

    out = {}
    raw_opts = CodecOptions(document_class=RawBSONDocument)
    son_opts = CodecOptions(document_class=SON)
    for info in sorted(db.list_collections(), key=lambda i: i["name"]):
        name = info["name"]
        if name.startswith("system.") or (name.startswith("ragrev_") and not internal):
            continue
        opts = dict(info.get("options") or {})
        validator = {k: opts[k] for k in ("validator", "validationLevel", "validationAction") if k in opts}
        if not validator.get("validator"):
            validator.pop("validator", None)
        if validator.get("validationLevel") == "strict":
            validator.pop("validationLevel")
        if validator.get("validationAction") == "error":
            validator.pop("validationAction")
        indexes = {ix["name"]: json.loads(bson.json_util.dumps({k: v for k, v in ix.items() if k not in ("v", "ns")}))
                   for ix in db[name].list_indexes()}
        rows: dict = collections.defaultdict(list)
        drop = VOLATILE.get(name, ())
        for doc in db[name].with_options(codec_options=raw_opts).find():
            data = doc.raw
            if drop:
                son = bson.decode(data, codec_options=son_opts)
                for f in drop:
                    son.pop(f, None)
                data = bson.encode(son)
            rows[bson.json_util.dumps(doc["_id"])].append(_h(data))
        out[name] = {"schema": {"validator": json.loads(bson.json_util.dumps(validator)), "indexes": indexes},
                     "rows": {k: sorted(v) for k, v in rows.items()}}
    doc = db["ragrev_version"].find_one({"_id": "heads"})
    out[HEADS] = {"schema": sorted(doc["heads"]) if doc else [], "rows": {}}
    return out


def milvus_snapshot(client, internal: bool = False) -> dict:
    import numpy as np
    from pymilvus import DataType

    out = {}
    for name in sorted(client.list_collections()):
        if name.startswith("ragrev_") and not internal:
            continue
        d = client.describe_collection(name)
        fields, vectors, pk = {}, set(), None
        for f in d["fields"]:
            ftype = DataType(f["type"]).name
            params = {k: str(v) for k, v in (f.get("params") or {}).items()}
            default = f.get("default_value")
            fields[f["name"]] = [ftype, params, bool(f.get("is_primary")), bool(f.get("nullable")),
                                 None if default is None else str(default).strip()]
            if "VECTOR" in ftype:
                vectors.add(f["name"])
            if f.get("is_primary"):
                pk = f["name"]
        indexes = {}
        for iname in client.list_indexes(name):
            info = dict(client.describe_index(name, iname) or {})
            for k in ("total_rows", "indexed_rows", "pending_index_rows", "state", "index_state", "failed_reason"):
                info.pop(k, None)
            indexes[iname] = {k: str(v) for k, v in sorted(info.items())}
        schema = {"fields": fields, "dynamic": bool(d.get("enable_dynamic_field")), "indexes": indexes,
                  "aliases": sorted(client.list_aliases(name).get("aliases", []))}
        client.load_collection(name)
        rows: dict = collections.defaultdict(list)
        it = client.query_iterator(name, batch_size=2000, output_fields=["*"], filter="")
        try:
            while True:
                page = it.next()
                if not page:
                    break
                for r in page:
                    h = hashlib.sha256()
                    for key in sorted(r):
                        value = r[key]
                        if key in vectors:
                            h.update(key.encode() + np.asarray(value, dtype=np.float32).tobytes())
                        else:
                            h.update(key.encode() + _j(value))
                    rows[repr(r[pk])].append(h.hexdigest()[:16])
        finally:
            it.close()
        out[name] = {"schema": schema, "rows": {k: sorted(v) for k, v in rows.items()}}
    heads = []
    if client.has_collection("ragrev_version"):
        client.load_collection("ragrev_version")
        found = client.query("ragrev_version", filter='id == "heads"', output_fields=["heads"])
        heads = json.loads(found[0]["heads"]) if found else []
    out[HEADS] = {"schema": sorted(heads), "rows": {}}
    return out


def files_snapshot(root: Path) -> dict:
    """Every file under ``root`` (relative path -> SHA-256); manifests without their ``created`` time."""
    out = {}
    root = Path(root)
    if root.exists():
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            data = p.read_bytes()
            if p.name.endswith(".manifest.json"):
                try:
                    m = json.loads(data)
                    m.pop("created", None)
                    data = _j(m)
                except ValueError:
                    pass
            out[str(p.relative_to(root))] = [_h(data)]
    return {"files": {"schema": None, "rows": out}} if out else {}


# --- a whole project ----------------------------------------------------------------------------

def snapshot(config_path, cold: tuple[str, ...] = ("var/cold",), stores=None, internal: bool = False) -> Snapshot:
    """The snapshot of every store of a ragrev project (and its cold storage
    directories, relative to the project); ``stores`` limits the stores read;
    ``internal`` adds ragrev's own tables/collections (version, log, lock,
    trash) as objects of their stores: to check that nothing at all changed."""
    from ragrev.config import load_config

    config = load_config(config_path)
    out: Snapshot = {}
    for name, sc in config.stores.items():
        if stores is not None and name not in stores:
            continue
        scheme = sc.url.split("://", 1)[0].lower()
        if sc.kind == "sql":
            out[name] = sql_snapshot(sc.url, internal)
        elif scheme == "milvus-lite":
            with milvus_client(sc.path) as client:
                out[name] = milvus_snapshot(client, internal)
        elif scheme == "secantus":
            with mongo_database(sc.path, sc.options.get("database") or "ragrev") as db:
                out[name] = mongo_snapshot(db, internal)
        elif sc.kind == "mongo":
            import pymongo

            client = pymongo.MongoClient(sc.url, serverSelectionTimeoutMS=5000)
            try:
                db = client[sc.options.get("database") or client.get_default_database("ragrev").name]
                out[name] = mongo_snapshot(db, internal)
            finally:
                client.close()
        else:
            raise ValueError(f"no reader for store {name!r} ({sc.url.split('://', 1)[0]}://)")
    base = Path(config_path).parent
    for rel in cold:
        files = files_snapshot(base / rel)
        if files:
            out[f"cold:{rel}"] = files
    return out


def digest(snap: Snapshot) -> str:
    """One short hash of a snapshot (or of one store's part of it)."""
    return _h(_j(snap))


def diff(a: Snapshot, b: Snapshot, limit: int = 6) -> list[str]:
    """Where two snapshots differ, as short lines (empty when equal):
    missing/extra stores and objects, schema changes, and rows lost,
    duplicated, added or changed (with a few keys)."""
    out = []
    for store in sorted(set(a) | set(b)):
        if store not in a or store not in b:
            out.append(f"{store}: only in {'the second' if store in b else 'the first'}")
            continue
        for obj in sorted(set(a[store]) | set(b[store])):
            x, y = a[store].get(obj), b[store].get(obj)
            if x is None or y is None:
                out.append(f"{store}.{obj}: only in {'the second' if x is None else 'the first'}")
                continue
            if x["schema"] != y["schema"]:
                out.append(f"{store}.{obj}: schema {json.dumps(x['schema'], default=str)[:300]} != "
                           f"{json.dumps(y['schema'], default=str)[:300]}")
            rx, ry = x["rows"], y["rows"]
            if rx == ry:
                continue
            lost = [k for k in rx if k not in ry]
            added = [k for k in ry if k not in rx]
            dup = [k for k in ry if len(ry[k]) > 1 and len(ry[k]) > len(rx.get(k, ()))]
            changed = [k for k in rx if k in ry and k not in dup and rx[k] != ry[k]]
            for what, keys in (("lost", lost), ("added", added), ("duplicated", dup), ("changed", changed)):
                if keys:
                    out.append(f"{store}.{obj}: {len(keys)} rows {what}: {', '.join(keys[:limit])}")
    return out


def counts(snap: Snapshot) -> dict:
    """``store.object -> (rows, distinct keys)``."""
    return {f"{s}.{o}": (sum(len(v) for v in obj["rows"].values()), len(obj["rows"]))
            for s, objs in snap.items() for o, obj in objs.items()}


# --- chat messages wherever they are ----------------------------------------------------------

def message_ledger(db, root: Path, collection: str = "conversations") -> collections.Counter:
    """How many copies of each message exist: in the collection, plus in the
    archive files its pointer records reference (read and checked here
    against the pointer's SHA-256, without ragrev's reader)."""
    import bson.json_util

    seen: collections.Counter = collections.Counter()
    for doc in db[collection].find({}, {"_id": 1}):
        seen[str(doc["_id"])] += 1
    for p in db[f"{collection}_archive"].find():
        path = Path(root) / p["path"]
        data = path.read_bytes()
        assert _sha(data) == p["file_sha256"], f"archive file {path} does not match its pointer"
        manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
        lines = gzip.decompress(data).decode().splitlines()
        key = json.dumps(p["session"]) if not isinstance(p["session"], str) else p["session"]
        entry = next(e for e in manifest["sessions"] if e["session"] in (key, json.dumps(p["session"])))
        for line in lines[entry["offset"]: entry["offset"] + entry["count"]]:
            seen[str(bson.json_util.loads(line)["_id"])] += 1
    return seen


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- ragrev's own records ------------------------------------------------------------------------

def journals(config_path, stores=None) -> dict[str, list[dict]]:
    """Every ``ragrev_log`` record of every store (read with the drivers; JSON
    fields decoded where the store keeps them as text), oldest first."""
    from ragrev.config import load_config

    config = load_config(config_path)
    out = {}
    for name, sc in config.stores.items():
        if stores is not None and name not in stores:
            continue
        scheme = sc.url.split("://", 1)[0].lower()
        if sc.kind == "sql":
            import sqlalchemy as sa

            engine = sa.create_engine(sc.url)
            try:
                with engine.connect() as conn:
                    if not sa.inspect(conn).has_table("ragrev_log"):
                        out[name] = []
                        continue
                    rows = [dict(r) for r in conn.execute(sa.text("SELECT * FROM ragrev_log")).mappings()]
            finally:
                engine.dispose()
        elif scheme == "milvus-lite":
            with milvus_client(sc.path) as client:
                rows = []
                if client.has_collection("ragrev_log"):
                    client.load_collection("ragrev_log")
                    it = client.query_iterator("ragrev_log", batch_size=1000, output_fields=["doc"], filter="")
                    while page := it.next():
                        rows += [json.loads(r["doc"]) for r in page]
                    it.close()
        elif scheme == "secantus":
            with mongo_database(sc.path, sc.options.get("database") or "ragrev") as db:
                rows = list(db["ragrev_log"].find())
        else:
            raise ValueError(f"no journal reader for store {name!r}")
        for r in rows:
            for k in ("resume_token", "captured"):
                if isinstance(r.get(k), str):
                    try:
                        r[k] = json.loads(r[k])
                    except ValueError:
                        pass
        out[name] = sorted(rows, key=lambda r: (r.get("seq") or 0))
    return out


def applications(records: list[dict]) -> collections.Counter:
    """How many times each (revision, step index) was completed by an ``up`` run."""
    return collections.Counter((r["revision"], r["step_index"]) for r in records
                               if r.get("type") == "step" and r.get("direction") == "up" and r.get("outcome") == "done")
