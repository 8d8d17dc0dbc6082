"""Chat archives on a MongoDB collection (``store.db``, a pymongo Database;
MongoDB or the embedded SecantusDB).

Messages are archived as MongoDB Extended JSON v2 in canonical mode
(``bson.json_util``), which keeps every BSON type exactly — ObjectId,
int32 vs int64, Decimal128, binary subtypes, dates to the millisecond — and
the field order; restore inserts the decoded documents as they were.

Pointer records are documents of ``<collection>_archive`` (or ``pointers=``):
``_id`` (hash of session and file), ``session`` (the session id, native),
``root``, ``path``, ``format``, ``file_sha256``, ``messages``, ``checksum``,
``first_ts``, ``last_ts``, ``archived_at``, ``tag``. They are the user's data
(an application can show "archived — restore?" from them), so the name is not
``ragrev_*``. The collection is dropped when a restore leaves it empty.

There are no multi-document transactions here: each stage of a step is
idempotent instead (see :mod:`ragrev.chats.cold`).
"""
from __future__ import annotations

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo import ASCENDING, DESCENDING, DeleteOne, ReplaceOne
from pymongo.errors import BulkWriteError

from ragrev.chats import Backend, register_backend
from ragrev.stores import chunks

#: ids per ``$in`` query, and sessions per ``$in`` query of messages: short lists, because
#: SecantusDB's ``$in`` slows down with long ones (MongoDB does not mind either way)
CHUNK = 50
SESSION_CHUNK = 10
_JSON = JSONOptions(json_mode=JSONMode.CANONICAL, document_class=dict, tz_aware=False)


def _chunks(items, size=CHUNK):
    return chunks(items, size)


class MongoChats(Backend):
    kind = "mongo"
    codec = "mongodb-extended-json-v2-canonical"

    def __init__(self, store, collection, keys):
        super().__init__(store, collection, keys)
        self.db = store.db
        self.coll = self.db[collection]
        self.pcoll = self.db[self.pointer_name]

    def dumps(self, doc: dict) -> str:
        return json_util.dumps(doc, json_options=_JSON, ensure_ascii=False, separators=(",", ":"))

    def loads(self, line: str) -> dict:
        return json_util.loads(line, json_options=_JSON)

    def exists(self) -> bool:
        return bool(self.db.list_collection_names(filter={"name": self.collection}))

    def session_stats(self) -> list[tuple]:
        pipeline = [{"$match": {self.session_key: {"$ne": None}}},
                    {"$group": {"_id": f"${self.session_key}", "n": {"$sum": 1}, "last": {"$max": f"${self.ts_key}"}}}]
        return [(d["_id"], d["n"], d["last"]) for d in self.coll.aggregate(pipeline, allowDiskUse=True)]

    def sessions(self) -> list:
        pipeline = [{"$match": {self.session_key: {"$ne": None}}}, {"$group": {"_id": f"${self.session_key}"}}]
        return [d["_id"] for d in self.coll.aggregate(pipeline, allowDiskUse=True)]

    def _sort(self):
        keys = [(self.session_key, ASCENDING), (self.order_key, ASCENDING)]
        if self.id_key != self.order_key:
            keys.append((self.id_key, ASCENDING))
        return keys

    def messages(self, sessions=None):
        if sessions is None:
            yield from self.coll.find({}).sort(self._sort()).allow_disk_use(True)
            return
        for chunk in _chunks(sessions, SESSION_CHUNK):
            yield from self.coll.find({self.session_key: {"$in": chunk}}).sort(self._sort()).allow_disk_use(True)

    def count(self) -> int:
        return self.coll.count_documents({})

    def existing(self, ids) -> list[dict]:
        out = []
        for chunk in _chunks(ids):
            out += list(self.coll.find({self.id_key: {"$in": chunk}}))
        return out

    def insert(self, docs: list[dict]) -> int:
        n = 0
        for chunk in _chunks(docs, 1000):
            try:
                n += len(self.coll.insert_many(chunk, ordered=True).inserted_ids)
            except BulkWriteError as e:  # an id inserted meanwhile: keep going past duplicates only
                if any(err.get("code") != 11000 for err in e.details.get("writeErrors", [])):
                    raise
                n += e.details.get("nInserted", 0)
                done = {d[self.id_key] for d in self.existing([d[self.id_key] for d in chunk])}
                rest = [d for d in chunk if d[self.id_key] not in done]
                if rest:
                    n += self.insert(rest)
        return n

    def delete_ids(self, ids) -> int:
        n = 0
        for chunk in _chunks(ids, 1000):
            n += self.coll.bulk_write([DeleteOne({self.id_key: i}) for i in chunk], ordered=False).deleted_count
        return n

    def rename_session(self, old, new) -> int:
        return self.coll.update_many({self.session_key: old}, {"$set": {self.session_key: new}}).modified_count

    def max_int_id(self):
        doc = self.coll.find_one({self.id_key: {"$type": "number"}}, sort=[(self.id_key, DESCENDING)])
        return int(doc[self.id_key]) if doc else None

    # --- pointers -------------------------------------------------------------------------
    def pointers(self, sessions=None, tag=None) -> list[dict]:
        query = {} if tag is None else {"tag": tag}
        groups = [None] if sessions is None else list(_chunks(sessions))
        out = []
        for chunk in groups:
            q = dict(query, **({"session": {"$in": chunk}} if chunk is not None else {}))
            for d in self.pcoll.find(q):
                d["id"] = d.pop("_id")
                out.append(d)
        return out

    def put_pointers(self, records: list[dict]) -> None:
        if records:
            self.pcoll.bulk_write([ReplaceOne({"_id": r["id"]}, {"_id": r["id"], **{k: v for k, v in r.items()
                                                                                    if k != "id"}}, upsert=True)
                                   for r in records], ordered=True)

    def delete_pointers(self, ids: list[str]) -> None:
        for chunk in _chunks(ids):
            self.pcoll.delete_many({"_id": {"$in": chunk}})

    def drop_pointers_if_empty(self) -> None:
        if self.db.list_collection_names(filter={"name": self.pointer_name}) and not self.pcoll.count_documents({}):
            self.pcoll.drop()


register_backend("mongo", MongoChats)
