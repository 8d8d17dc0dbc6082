"""What the MongoDB implementations share: failing a step, finding its
collection, query helpers, validators, the step's trash and resume token,
bulk writes, counts for estimates."""
from __future__ import annotations

import logging

from pymongo.errors import BulkWriteError, CollectionInvalid

from ragrev.drivers.mongo import secantus
from ragrev.errors import OperationError, StepFailed
from ragrev.stores import trash_name

KIND = "mongo"
log = logging.getLogger("ragrev.mongo")
SAMPLE = 5
#: documents per in-place update when values come back from a trash collection
TRASH_BATCH = 1000
_VKEYS = ("validator", "validationLevel", "validationAction")


def _fail(op, message: str, cls=StepFailed):
    return cls(f"{op.where()}{op.name} {op.collection!r}: {message}")


def _coll(store, op, name: str | None = None):
    name = name or op.collection
    if store.collection_options(name) is None:
        raise _fail(op, f"no collection {name!r} in store {store.name!r}", OperationError)
    return store.db[name]


def _and(*parts) -> dict:
    parts = [p for p in parts if p]
    return {} if not parts else parts[0] if len(parts) == 1 else {"$and": list(parts)}


def _exists(path: str, yes: bool = True) -> dict:
    return {path: {"$exists": yes}}


def _ids(docs) -> str:
    return ", ".join(repr(d) for d in docs)


def validator_state(store, name: str) -> dict:
    opts = store.collection_options(name) or {}
    return {k: opts[k] for k in _VKEYS if k in opts}


def set_validator(store, name: str, validator, level=None, action=None) -> None:
    cmd = {"validator": validator or {}}
    if level:
        cmd["validationLevel"] = level
    if action:
        cmd["validationAction"] = action
    store.db.command("collMod", name, **cmd)


def rename_collection(store, src: str, dst: str) -> None:
    """Rename keeping the validator (SecantusDB drops collection options on rename)."""
    state = validator_state(store, src)
    embedded = getattr(store, "_embedded", None)
    if not (embedded and embedded[1] and secantus.rename_here(embedded[0], store.db.name, src, dst)):
        store.db[src].rename(dst)
    if state and validator_state(store, dst) != state:
        set_validator(store, dst, state.get("validator"), state.get("validationLevel"), state.get("validationAction"))


def _token(ctx, what: str, create: bool = True, **start) -> dict:
    """The step's resume token; on a fresh start, a new trash name checkpointed
    before anything is written. ``create``: make the (empty) trash collection."""
    tok = ctx.resume_token if ctx.resuming and isinstance(ctx.resume_token, dict) else None
    if not tok or "trash" not in tok:
        tok = {"trash": trash_name(what, taken=ctx.store.collection_names(), limit=200), **start}
        ctx.captured["trash"] = tok["trash"]
        ctx.checkpoint(dict(tok), 0)
    ctx.captured["trash"] = tok["trash"]
    if create and ctx.store.collection_options(tok["trash"]) is None:
        try:
            ctx.store.db.create_collection(tok["trash"])
        except CollectionInvalid:
            pass
    return dict(tok)


def _bulk(op, coll, requests) -> None:
    if not requests:
        return
    try:
        coll.bulk_write(requests, ordered=False)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors") or [{}]
        first = errors[0]
        raise _fail(op, f"{len(errors)} write(s) failed, first: {first.get('errmsg')} "
                        f"(document {first.get('op', {}).get('q', first.get('op', {}))!r:.120})") from None



def _count(store, collection, query):
    if store.collection_options(collection) is None:
        return None
    coll = store.db[collection]
    return coll.count_documents(query) if query else coll.estimated_document_count()
