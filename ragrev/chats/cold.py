"""``archive`` and ``restore``: sessions to cold storage and back, over a
:class:`~ragrev.chats.Backend`.

Archive, per part file (a month's sessions, at most ``batch_size`` messages):

1. read the sessions' messages (ordered by session, order key, id);
2. write the file and its manifest, synced and read back (``archive.write_part``);
3. upsert one pointer record per session (id = hash of session and file);
4. delete exactly the archived messages (by id);
5. checkpoint.

Every stage is idempotent, so a rerun after a crash at any point loses and
duplicates nothing: sessions still in the store are archived again (the same
content gives the same file name; an existing file that verifies is kept),
pointer upserts overwrite themselves, and sessions already deleted are no
longer candidates. On SQL the whole step is one transaction anyway; only
orphan files can outlive a rollback.

Restore first reads and verifies every file it needs (SHA-256 against the
manifest and the pointer, every message hash, counts) and checks that no
message id exists in the store with other content; only then does it insert,
file by file, the messages not yet present (original ids, order, times) and
delete their pointers. A damaged file therefore changes nothing. Archive files
are never deleted by ragrev (cold storage is the safe copy).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections import OrderedDict

from ragrev.chats.archive import Line, cutoff, load_part, month_of, open_root, session_lines, to_utc, write_part
from ragrev.chats.codec import decode_key, encode_key, key_text, sha256_text
from ragrev.errors import OperationError, StepFailed

UNDATED = "undated"
#: restore keeps up to this many verified messages in memory between its two
#: phases; beyond, files are read and verified again when inserting
KEEP_IN_MEMORY = 200_000


def _base_dir(ctx):
    return getattr(getattr(ctx, "config", None), "directory", None)


def _candidates(be, op):
    """(session, count, last time) of the sessions to archive, oldest first."""
    stats = be.session_stats()
    if op.sessions is not None:
        wanted = {key_text(decode_key(s)) for s in op.sessions}
        chosen = [s for s in stats if key_text(s[0]) in wanted]
    else:
        limit = cutoff(op.older_than)
        chosen = [s for s in stats if (t := to_utc(s[2])) is not None and t < limit]
    return sorted(chosen, key=lambda s: (to_utc(s[2]) or _dt.datetime.max.replace(tzinfo=_dt.timezone.utc),
                                         key_text(s[0])))


def _parts(chosen, batch_size):
    """Group sessions into (month, [sessions]) parts of at most ``batch_size`` messages."""
    parts, current, month, size = [], [], None, 0
    for session, count, last in chosen:
        t = to_utc(last)
        m = month_of(t) if t else UNDATED
        if current and (m != month or size + count > batch_size):
            parts.append((month, current))
            current, size = [], 0
        month = m
        current.append(session)
        size += count
    if current:
        parts.append((month, current))
    return parts


def pointer_id(session, path: str) -> str:
    return hashlib.sha256(f"{key_text(session)}\n{path}".encode("utf-8")).hexdigest()[:32]


def archive(be, op, ctx):
    if not be.exists():
        raise OperationError(f"{op.where()}archive: no collection {be.collection!r} in store {op.store!r}")
    root = open_root(op.to, _base_dir(ctx), op.storage_options)
    tag = op.tag or ctx.captured.get("tag") or f"{ctx.revision}:{op.digest()}"
    ctx.captured.update(tag=tag, to=op.to, format=op.format)
    chosen = _candidates(be, op)
    done = ctx.rows_done if ctx.resuming else 0
    chosen, finished = _finish_interrupted(be, op, root, chosen, tag)
    done += finished
    total = done + sum(s[1] for s in chosen)
    ctx.progress(done, total)
    for month, sessions in _parts(chosen, op.batch_size):
        docs = list(be.messages(sessions))
        if not docs:
            continue
        lines = []
        for doc in docs:
            text = be.dumps(doc)
            lines.append(Line(doc.get(be.session_key), text, sha256_text(text), to_utc(doc.get(be.ts_key))))
        manifest = write_part(root, f"{be.collection}/{month}", lines, op.format, {
            "collection": be.collection, "codec": be.codec, "keys": be.keys(), "month": month, "tag": tag,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        by_key = {key_text(s): s for s in sessions}
        native = {e["session"]: by_key.get(e["session"], decode_key(json.loads(e["session"])))
                  for e in manifest["sessions"]}
        be.put_pointers([{
            "id": pointer_id(native[e["session"]], manifest["path"]), "session": native[e["session"]],
            "root": op.to, "path": manifest["path"], "format": op.format, "file_sha256": manifest["sha256"],
            "messages": e["count"], "checksum": e["checksum"], "first_ts": e["first"], "last_ts": e["last"],
            "archived_at": now, "tag": tag,
        } for e in manifest["sessions"]])
        be.delete_ids([doc[be.id_key] for doc in docs])
        done += len(docs)
        ctx.checkpoint({"month": month, "file": manifest["path"]}, done)
        ctx.progress(done, total)
    return done


def _finish_interrupted(be, op, root, chosen, tag):
    """Sessions that an interrupted run of this step already wrote and pointed
    to, but whose originals it had not (all) deleted: when the verified file
    holds every message still in the store, delete those and drop the session
    from the candidates (so no message ends up in two files)."""
    pointers = be.pointers([s for s, _, _ in chosen], tag) if chosen else []
    by_session: dict[str, list] = {}
    for p in pointers:
        if p["root"] == op.to:
            by_session.setdefault(key_text(p["session"]), []).append(p)
    settled, rows = set(), 0
    for key, group in by_session.items():
        held = set()
        for p in group:
            manifest, lines = load_part(root, p["path"], p["file_sha256"], action="archive")
            held |= {sha256_text(t) for t in session_lines(root, p["path"], manifest, lines, p["session"],
                                                           p["checksum"], p["messages"], action="archive")}
        docs = list(be.messages([group[0]["session"]]))
        if all(sha256_text(be.dumps(d)) in held for d in docs):
            be.delete_ids([d[be.id_key] for d in docs])
            settled.add(key)
            rows += sum(p["messages"] for p in group)
    return [c for c in chosen if key_text(c[0]) not in settled], rows


def restore(be, op, ctx):
    wanted = None if op.sessions in (None, "all") else [decode_key(s) for s in op.sessions]
    pointers = be.pointers(wanted, op.tag)
    if wanted is not None and not ctx.resuming:
        found = {key_text(p["session"]) for p in pointers}
        missing = [key_text(s) for s in wanted if key_text(s) not in found]
        if missing:
            raise OperationError(f"{op.where()}restore: no archived session {missing[0]} in {be.pointer_name!r}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                                 + "; nothing was restored")
    files: OrderedDict[tuple, list] = OrderedDict()
    for p in sorted(pointers, key=lambda p: (p["root"], p["path"], key_text(p["session"]))):
        files.setdefault((p["root"], p["path"]), []).append(p)
    roots = {}
    base = _base_dir(ctx)

    def load(root_url, path, group):
        if root_url not in roots:
            roots[root_url] = open_root(root_url, base, op.storage_options)
        root = roots[root_url]
        manifest, lines = load_part(root, path, group[0]["file_sha256"])
        out = []
        for p in group:
            if p["file_sha256"] != manifest["sha256"]:
                raise StepFailed(f"restore: archive file {root.location(path)} is not the file the pointer of session "
                                 f"{key_text(p['session'])} recorded; nothing was restored")
            out += session_lines(root, path, manifest, lines, p["session"], p["checksum"], p["messages"])
        return [(sha256_text(t), be.loads(t)) for t in out]

    total, kept, verified = 0, 0, []
    for (root_url, path), group in files.items():  # phase 1: verify everything, change nothing
        messages = load(root_url, path, group)
        present = _present(be, messages, path)
        total += len(messages)
        if kept + len(messages) > KEEP_IN_MEMORY:
            messages = None  # read (and verify) again in phase 2
        else:
            kept += len(messages)
        verified.append((root_url, path, group, messages, present))
    done, restored, seen = 0, OrderedDict(), set()
    ctx.progress(0, total)
    for root_url, path, group, messages, present in verified:  # phase 2: insert what is missing, drop pointers
        if messages is None:
            messages = load(root_url, path, group)
        be.insert([d for _, d in messages if key_text(d[be.id_key]) not in present])
        be.delete_pointers([p["id"] for p in group])
        for p in group:
            where = (root_url, p["format"], p.get("tag"))
            if (where, key_text(p["session"])) not in seen:
                seen.add((where, key_text(p["session"])))
                restored.setdefault(where, []).append(encode_key(p["session"]))
        done += len(messages)
        ctx.captured["restored"] = [{"to": r, "format": f, "tag": t, "sessions": s}
                                    for (r, f, t), s in restored.items()]
        ctx.checkpoint({"file": path}, done)
        ctx.progress(done, total)
    ctx.captured.setdefault("restored", [])
    be.drop_pointers_if_empty()
    return done


def _present(be, messages, path) -> set[str]:
    """Ids (as key text) of archived messages already in the store, identical
    (a rerun); refuse when one is there with other content."""
    hashes = {key_text(d[be.id_key]): h for h, d in messages}
    present = set()
    for doc in be.existing([d[be.id_key] for _, d in messages]):
        k = key_text(doc[be.id_key])
        if sha256_text(be.dumps(doc)) != hashes.get(k):
            raise StepFailed(f"restore: message {k} (archived in {path}) exists in {be.collection!r} with different "
                             "content; nothing was restored")
        present.add(k)
    return present


def estimate_archive(be, op):
    try:
        return sum(s[1] for s in _candidates(be, op))
    except OperationError:
        return None


def estimate_restore(be, op):
    wanted = None if op.sessions in (None, "all") else [decode_key(s) for s in op.sessions]
    return sum(int(p.get("messages") or 0) for p in be.pointers(wanted, op.tag))
