"""Bulk import for the first pass of ``copy``/``reembed`` into a Milvus
server (``bulk=``): the rows go through the step's transform into Parquet
files written by pymilvus' ``BulkWriter`` (``pymilvus[bulk_writer]``), the
server imports them (``do_bulk_insert``), ragrev waits for the jobs and
verifies the count. Milvus Lite has no bulk import: the step falls back to
inserts there (``captured["bulk"]["mode"] = "inserts"``).

``bulk`` names the staging place the server can read:

- a directory path (or ``file://`` URL) on a file system the server shares
  (a Milvus with local storage, as the ``milvus`` package's standalone
  server): the server is given absolute paths;
- an fsspec URL of object storage (``s3://bucket/prefix``): the files are
  written locally, uploaded with fsspec, and the server is given their key
  in the bucket (it must be the bucket the server's storage uses).

``bulk=True`` takes the ``[ragrev] bulk_staging`` setting. Resumable:
``captured["bulk"]`` records the phase (``write`` -> ``import`` ->
``verify``), the files and the job ids; a step killed between starting a
job and recording it finds the job again by listing the target's import
tasks, so no file is imported twice.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
import warnings

from ragrev.errors import OperationError
from ragrev.drivers.milvus.schema import MilvusSchema

#: how long to wait for the import jobs, and then for the rows to be visible (seconds)
IMPORT_TIMEOUT = 3600.0


def staging_of(op, ctx) -> str | None:
    value = getattr(op, "bulk", None)
    if value is True:
        options = getattr(getattr(ctx, "config", None), "options", None) or {}
        value = options.get("bulk_staging")
        if not value:
            raise OperationError(f"{op.where()}{op.name}: bulk=True needs the [ragrev] bulk_staging setting "
                                 "(a directory or object storage URL the Milvus server can read)")
    return value or None


def _connection(store: MilvusSchema) -> str:
    from pymilvus import connections

    alias = f"ragrev-bulk-{id(store)}"
    if not connections.has_connection(alias):
        connections.connect(alias=alias, uri=store.uri, token=store.token, db_name=store.db_name or "default")
    return alias


def bulk_pass(store: MilvusSchema, op, ctx, source: str, target: str, transform, staging: str, filter=None) -> int:
    """The first pass by bulk import (see the module); rows imported."""
    with warnings.catch_warnings():  # pymilvus 2.5+ calls its import API (the one Milvus 2.3 has) deprecated
        warnings.simplefilter("ignore")
        return _bulk_pass(store, op, ctx, source, target, transform, staging, filter)


def _bulk_pass(store: MilvusSchema, op, ctx, source, target, transform, staging, filter):
    c = ctx.captured
    if store.lite:
        c["bulk"] = {"mode": "inserts"}
        return None  # the caller inserts
    if "bulk" not in c and not _importable(store, target):
        c["bulk"] = {"mode": "inserts", "why": f"the server cannot bulk-import into database {store.db_name!r}"}
    if c.get("bulk", {}).get("mode") == "inserts":
        return None
    b = c.setdefault("bulk", {"mode": "import", "phase": "write", "tag": uuid.uuid4().hex[:12]})
    if b["phase"] == "write":
        b["files"], b["rows"] = _write(store, op, source, target, transform, staging, b["tag"], filter)
        b["phase"] = "import"
        ctx.checkpoint(ctx.resume_token, 0)
    if b["phase"] == "import":
        from pymilvus import utility

        alias = _connection(store)
        jobs = b.get("jobs") or _adopt(store, target, b["files"], alias)
        for batch in b["files"]:
            if any(batch[0] in str(j.get("file", "")) for j in jobs):
                continue
            job = utility.do_bulk_insert(target, files=batch, using=alias)
            jobs.append({"id": job, "file": batch[0]})
            b["jobs"] = jobs
            ctx.checkpoint(ctx.resume_token, 0)
        b["jobs"] = jobs
        _wait(op, jobs, alias)
        b["phase"] = "verify"
        ctx.checkpoint(ctx.resume_token, 0)
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:  # imported segments become visible once loaded
        n = store.count(target)
        if n == b["rows"]:
            break
        if n > b["rows"] or time.monotonic() > deadline:
            raise OperationError(f"{op.where()}{op.name}: bulk import into {target!r} left {n} rows, "
                                 f"{b['rows']} were written")
        time.sleep(1.0)
    b["phase"] = "done"
    _cleanup(staging, b["tag"])
    ctx.checkpoint(ctx.resume_token, b["rows"])
    return b["rows"]


def _write(store: MilvusSchema, op, source, target, transform, staging, tag, filter) -> tuple[list, int]:
    import fsspec
    from pymilvus.bulk_writer import BulkFileType, LocalBulkWriter

    protocol, _, path = staging.partition("://") if "://" in staging else ("file", "", staging)
    local_root = os.path.abspath(path) if protocol == "file" else tempfile.mkdtemp(prefix="ragrev-bulk-")
    local = os.path.join(local_root, tag)
    shutil.rmtree(local, ignore_errors=True)  # a write phase killed before: start it again
    os.makedirs(local)
    schema = MilvusSchema._schema(store.collection_state(target), False)
    writer = LocalBulkWriter(schema=schema, local_path=local, segment_size=256 * 1024 * 1024,
                             file_type=BulkFileType.PARQUET)
    rows = 0
    pk = store.pk_of(source)
    for page in store.scan(source, filter, batch=op.batch_size, pk=pk):
        out = transform(page) if transform else page
        for row in out:
            writer.append_row(row)
        rows += len(out)
    writer.commit()
    batches = [[os.path.abspath(f) for f in files] for files in writer.batch_files]
    if protocol != "file":  # upload; the server reads the keys inside its bucket
        fs = fsspec.filesystem(protocol)
        remote, uploaded = f"{path.rstrip('/')}/{tag}", []
        for files in batches:
            keys = []
            for f in files:
                dest = f"{remote}/{os.path.relpath(f, local)}"
                fs.put(f, dest)
                keys.append(dest.split("/", 1)[1])  # without the bucket
            uploaded.append(keys)
        shutil.rmtree(local_root, ignore_errors=True)
        batches = uploaded
    return batches, rows


def _importable(store: MilvusSchema, target: str) -> bool:
    """Whether the server finds ``target`` for an import: Milvus 2.3 imports
    into the default database only (a collection elsewhere is "not found")."""
    from pymilvus import MilvusException, utility

    try:
        utility.list_bulk_insert_tasks(collection_name=target, using=_connection(store))
    except MilvusException as e:
        if "not found" in str(e).lower():
            return False
        raise
    return True


def _adopt(store, target, files, alias) -> list:
    """Jobs already started for our files (a kill between starting and recording one)."""
    from pymilvus import utility

    ours = {f for batch in files for f in batch}
    jobs = []
    for task in utility.list_bulk_insert_tasks(collection_name=target, using=alias):
        listed = str((task.infos or {}).get("files", ""))
        if any(f in listed for f in ours) and task.state_name != "Failed":
            jobs.append({"id": task.task_id, "file": listed.split(",")[0]})
    return jobs


def _wait(op, jobs, alias) -> None:
    from pymilvus import utility

    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:
        states = [utility.get_bulk_insert_state(j["id"], using=alias) for j in jobs]
        failed = [s for s in states if s.state_name == "Failed"]
        if failed:
            raise OperationError(f"{op.where()}{op.name}: bulk import failed: "
                                 f"{failed[0].infos.get('failed_reason') or failed[0].state_name}")
        if all(s.state_name == "Completed" for s in states):
            return
        if time.monotonic() > deadline:
            raise OperationError(f"{op.where()}{op.name}: bulk import not finished after {IMPORT_TIMEOUT:.0f}s")
        time.sleep(1.0)


def _cleanup(staging: str, tag: str) -> None:
    try:
        import fsspec

        protocol, _, path = staging.partition("://") if "://" in staging else ("file", "", staging)
        fs = fsspec.filesystem(protocol)
        target = os.path.join(os.path.abspath(path), tag) if protocol == "file" else f"{path.rstrip('/')}/{tag}"
        if fs.exists(target):
            fs.rm(target, recursive=True)
    except Exception:  # staging files are only a cache of what was imported
        pass
