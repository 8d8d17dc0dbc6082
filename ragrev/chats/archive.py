"""Cold storage for chat archives: where the files go, what is in them, how
they are made durable and how they are verified.

Layout under the archive root (an fsspec URL; ``file://`` by default)::

    <root>/<collection>/<YYYY-MM>/part-<content id>.jsonl.gz          (or .parquet)
    <root>/<collection>/<YYYY-MM>/part-<content id>.jsonl.gz.manifest.json

A session goes to the month of its last message, whole, in one part file.
The content id is derived from the hashes of the messages in the file, so a
rerun after a crash writes the same name with the same content.

- ``jsonl.gz``: one message per line (the backend's lossless JSON), gzip with
  a zero timestamp, so equal messages give equal bytes.
- ``parquet``: columns ``session`` (the session id as JSON text), ``ts``
  (UTC timestamp of the message, when it has one), ``hash`` (SHA-256 of the
  line) and ``message`` (the same line as in ``jsonl.gz``); restore reads only
  ``message``, the other columns are for querying the archive in place.

The manifest (JSON) holds the SHA-256 of the data file, its size, the
message count, and per session its position in the file, message count,
checksum (SHA-256 over its messages' hashes in order), first and last time.

Writing is: data to a temporary file, ``fsync``, rename, ``fsync`` of the
directory (local files), or one PUT (object stores); then the file is read
back and every message hash checked before the manifest is written the same
way. Only then may a caller write pointers and delete originals.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ragrev.chats.codec import chain_hash, key_text, sha256_bytes, sha256_text
from ragrev.config import parse_duration
from ragrev.errors import ConfigError, OperationError, StepFailed
from ragrev.lock import pid_alive

FORMATS = {"jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}
MANIFEST_SUFFIX = ".manifest.json"
LAYOUT = "ragrev-chat-archive/1"
UTC = _dt.timezone.utc


class ArchiveDamaged(StepFailed):
    """An archive file or its manifest is missing, unreadable or fails its checksum."""


# --- time -------------------------------------------------------------------------------

def to_utc(value) -> _dt.datetime | None:
    """A message's time as an aware UTC datetime: datetimes (naive means UTC),
    epoch seconds, ISO-8601 strings; None for anything else."""
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return to_utc(_dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def cutoff(older_than, now: _dt.datetime | None = None) -> _dt.datetime:
    """The cutoff for ``older_than``: a duration (``"90d"``, seconds, a
    timedelta) before ``now``, or a datetime / ISO date as it is."""
    now = now or _dt.datetime.now(UTC)
    if isinstance(older_than, _dt.timedelta):
        return now - older_than
    if isinstance(older_than, (_dt.datetime, _dt.date)) and not isinstance(older_than, _dt.datetime):
        older_than = _dt.datetime.combine(older_than, _dt.time())
    if isinstance(older_than, _dt.datetime):
        return to_utc(older_than)
    try:
        return now - _dt.timedelta(seconds=parse_duration(older_than, "older_than"))
    except ConfigError:
        pass
    when = to_utc(older_than) if isinstance(older_than, str) else None
    if when is None:
        raise OperationError(f"older_than={older_than!r}: give a duration ('90d', '12h', seconds) or a date/datetime")
    return when


def month_of(when: _dt.datetime) -> str:
    return f"{when.year:04d}-{when.month:02d}"


# --- roots --------------------------------------------------------------------------------

@dataclass
class Root:
    """An archive root: the URL as the revision wrote it, its file system and path."""

    url: str
    fs: object
    path: str
    local: bool

    def full(self, rel: str) -> str:
        return f"{self.path.rstrip('/')}/{rel}"

    def location(self, rel: str) -> str:
        """Where a file is, for messages: a local path or the object URL."""
        if self.local:
            return self.full(rel)
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, (tuple, list)) else self.fs.protocol
        return f"{protocol}://{self.full(rel)}"


def check_url(url: str) -> None:
    """Validation that needs nothing installed: a known shape of URL."""
    if not isinstance(url, str) or not url:
        raise OperationError(f"to={url!r}: give an fsspec URL such as 'file://./var/cold' or 's3://bucket/prefix'")


def open_root(url: str, base_dir, storage_options: dict | None = None) -> Root:
    """Resolve an archive URL. ``file://./rel`` and bare relative paths are
    relative to ``base_dir`` (the directory of ragrev.toml); ``file:///abs``
    is absolute; other schemes go to fsspec (``s3://`` needs s3fs)."""
    check_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "file", url
    if scheme in ("file", "local"):
        from fsspec.implementations.local import LocalFileSystem

        p = Path(rest)
        if not p.is_absolute():
            p = Path(base_dir or ".") / p
        return Root(url, LocalFileSystem(), str(p.resolve()), True)
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:
        raise OperationError(f"archive URL {url!r} needs an fsspec driver that is not installed ({e}); "
                             f"for s3:// run 'pip install s3fs'") from None
    except ValueError as e:
        raise OperationError(f"archive URL {url!r}: {e}") from None
    return Root(url, fs, path, False)


def put_durable(root: Root, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` so that it survives a crash once this returns."""
    if root.local:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        fd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _remove_stale_tmp(p.parent)
    else:
        root.fs.pipe_file(path, data)


def _remove_stale_tmp(directory: Path) -> None:
    """Remove temporary files a killed writer left in ``directory`` (``.<name>.<pid>.tmp``, pid gone)."""
    for stale in directory.glob(".*.tmp"):
        pid = stale.name[:-len(".tmp")].rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            try:
                stale.unlink()
            except OSError:
                pass


def read_bytes(root: Root, path: str) -> bytes:
    if root.local:
        return Path(path).read_bytes()
    return root.fs.cat_file(path)


# --- formats ---------------------------------------------------------------------------------

@dataclass
class Line:
    """One message as archived: its session, its JSON line, the line's hash, its time."""

    session: object
    text: str
    hash: str
    ts: _dt.datetime | None


def build(lines: list[Line], fmt: str) -> bytes:
    if fmt == "jsonl.gz":
        body = "".join(x.text + "\n" for x in lines).encode("utf-8")
        return gzip.compress(body, compresslevel=6, mtime=0)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "session": pa.array([key_text(x.session) for x in lines], pa.string()),
        "ts": pa.array([x.ts for x in lines], pa.timestamp("us", tz="UTC")),
        "hash": pa.array([x.hash for x in lines], pa.string()),
        "message": pa.array([x.text for x in lines], pa.string()),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def parse(data: bytes, fmt: str) -> list[str]:
    """The message lines of a data file."""
    if fmt == "jsonl.gz":
        text = gzip.decompress(data).decode("utf-8")
        return text.split("\n")[:-1] if text else []
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data), columns=["message"]).column("message").to_pylist()


# --- parts -------------------------------------------------------------------------------------

def write_part(root: Root, directory: str, lines: list[Line], fmt: str, meta: dict) -> dict:
    """Write, sync and verify one part file and its manifest; return the manifest."""
    if fmt not in FORMATS:
        raise OperationError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
    hashes = [x.hash for x in lines]
    rel = f"{directory}/part-{chain_hash(hashes)[:20]}{FORMATS[fmt]}"
    kept = _existing_part(root, rel, hashes)
    if kept is not None:  # a rerun after a crash: the same messages are already there, verified
        return kept
    data = build(lines, fmt)
    digest = sha256_bytes(data)
    sessions, start = [], 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or key_text(lines[i].session) != key_text(lines[start].session):
            group = lines[start:i]
            times = [x.ts for x in group if x.ts is not None]
            sessions.append({"session": key_text(group[0].session), "offset": start, "count": len(group),
                             "checksum": chain_hash(x.hash for x in group),
                             "first": min(times).isoformat() if times else None,
                             "last": max(times).isoformat() if times else None})
            start = i
    manifest = {"layout": LAYOUT, "file": rel.rsplit("/", 1)[1], "format": fmt, "sha256": digest,
                "bytes": len(data), "messages": len(lines), **meta, "sessions": sessions}
    path = root.full(rel)
    put_durable(root, path, data)
    back = read_bytes(root, path)
    if sha256_bytes(back) != digest or [sha256_text(t) for t in parse(back, fmt)] != hashes:
        raise ArchiveDamaged(f"archive file {root.location(rel)} did not read back as written; originals kept")
    text = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    put_durable(root, path + MANIFEST_SUFFIX, text)
    if read_bytes(root, path + MANIFEST_SUFFIX) != text:
        raise ArchiveDamaged(f"manifest {root.location(rel + MANIFEST_SUFFIX)} did not read back as written; "
                             "originals kept")
    manifest["path"] = rel
    return manifest


def _existing_part(root: Root, rel: str, hashes: list[str]) -> dict | None:
    try:
        manifest, lines = load_part(root, rel)
    except (ArchiveDamaged, OSError):
        return None
    if [sha256_text(t) for t in lines] != hashes:
        return None
    manifest["path"] = rel
    return manifest


def load_part(root: Root, rel: str, expect_sha256: str | None = None,
              action: str = "restore") -> tuple[dict, list[str]]:
    """Read a part and its manifest and verify the file's SHA-256 against both
    the manifest and ``expect_sha256`` (from a pointer). Raises
    :class:`ArchiveDamaged` naming the file (and what ``action`` did not do)."""
    where = root.location(rel)
    done = "nothing was restored" if action == "restore" else "its originals were kept"
    try:
        manifest = json.loads(read_bytes(root, root.full(rel) + MANIFEST_SUFFIX))
    except FileNotFoundError:
        raise ArchiveDamaged(f"{action}: manifest of archive file {where} is missing; {done}") from None
    except (ValueError, OSError) as e:
        raise ArchiveDamaged(f"{action}: manifest of archive file {where} is unreadable ({e}); {done}") from None
    try:
        data = read_bytes(root, root.full(rel))
    except FileNotFoundError:
        raise ArchiveDamaged(f"{action}: archive file {where} is missing; {done}") from None
    digest = sha256_bytes(data)
    if digest != manifest.get("sha256") or (expect_sha256 and digest != expect_sha256):
        raise ArchiveDamaged(f"{action}: archive file {where} is damaged: its SHA-256 {digest[:12]}... does not match "
                             f"its manifest/pointer ({str(manifest.get('sha256'))[:12]}...); {done}")
    try:
        lines = parse(data, manifest.get("format", "jsonl.gz"))
    except Exception as e:  # noqa: BLE001 - any decoding failure means a damaged file
        raise ArchiveDamaged(f"{action}: archive file {where} cannot be read ({type(e).__name__}: {e}); "
                             f"{done}") from None
    if len(lines) != manifest.get("messages"):
        raise ArchiveDamaged(f"{action}: archive file {where} holds {len(lines)} messages, its manifest says "
                             f"{manifest.get('messages')}; {done}")
    return manifest, lines


def session_lines(root: Root, rel: str, manifest: dict, lines: list[str], session, checksum: str | None,
                  count: int | None, action: str = "restore") -> list[str]:
    """The lines of one session in a verified part, checked against the
    manifest and the pointer (count and checksum)."""
    where = root.location(rel)
    done = "nothing was restored" if action == "restore" else "its originals were kept"
    wanted = key_text(session)
    entry = next((s for s in manifest.get("sessions", []) if s["session"] == wanted), None)
    if entry is None:
        raise ArchiveDamaged(f"{action}: archive file {where} has no session {wanted}; {done}")
    chunk = lines[entry["offset"]: entry["offset"] + entry["count"]]
    got = chain_hash(sha256_text(t) for t in chunk)
    if got != entry["checksum"] or (checksum and got != checksum) or (count is not None and len(chunk) != count):
        raise ArchiveDamaged(f"{action}: archive file {where}: session {wanted} fails its checksum; {done}")
    return chunk
