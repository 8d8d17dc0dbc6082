"""Vector store data operations and checks (docs/store-kinds.md): ``copy``,
``insert``, ``upsert``, ``delete``, their inverse ``restore_rows``, and the
checks ``expect_count`` and ``check_recall``. Registered with the other
vector store operations of :mod:`ragrev.ops.vector`."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

from ragrev.errors import Irreversible, OperationError
from ragrev.ops import register
from ragrev.ops.vector_schema import DENSE_TYPES, FAMILY, KIND, METRICS, VECTOR_TYPES, MilvusOp, _captured, _no_reserved
from ragrev.ops.vector_online import catch_up_params, simulate_catch_up, validate_catch_up


@register(FAMILY)
@dataclass
class Copy(MilvusOp):
    """Copy rows (``filter``-ed, through ``transform(row) -> row | None``) from
    ``source`` into ``target`` in primary-key order, ``batch_size`` at a time,
    resumable from the last primary key done. A missing target is created
    with the source's schema (inverse: drop it); into an existing target the
    rows it overwrites are kept in the trash (inverse: restore them).

    ``catch_up="updated_at"`` (a numeric field holding epoch seconds, set by
    the application on every write) then re-copies, in rounds, the rows
    changed since the pass began, until a round finds fewer than
    ``catch_up_threshold`` (at most ``catch_up_rounds`` rounds), and carries
    deletes over: rows whose ``tombstone`` field is true, or else the primary
    keys the target has and the source no longer has. Only into a target the
    copy creates (see :mod:`ragrev.drivers.milvus.online`).

    ``bulk="/staging/dir"`` (or an object storage URL, or True for the
    ``[ragrev] bulk_staging`` setting): on a Milvus server the first pass
    writes Parquet files and bulk-imports them (see
    :mod:`ragrev.drivers.milvus.bulk`); on Milvus Lite it inserts."""

    name = "copy"
    data_step = True
    source: str
    target: str
    transform: Callable | None = None
    filter: str | None = None
    batch_size: int = 1000
    catch_up: str | None = None
    tombstone: str | None = None
    catch_up_threshold: int = 100
    catch_up_rounds: int = 10
    catch_up_skew: float = 1.0
    bulk: Any = None

    def params(self) -> dict:
        return catch_up_params(self, super().params())

    def validate(self) -> None:
        _no_reserved(self, self.target)
        validate_catch_up(self)

    def simulate(self, state):
        src = self.need(state, self.source)
        dst = state.collection(self.target)
        simulate_catch_up(self, src, self.source)
        if dst is None:
            state.put(self.target, src.clone())
            return
        if self.catch_up or self.bulk:
            raise self.fail(f"{'catch_up=' if self.catch_up else 'bulk='} copies into a collection the copy "
                            f"creates; {self.target!r} exists")
        if self.transform is None:
            for fname, f in src.fields.items():
                g = dst.fields.get(fname)
                if g is None and not dst.dynamic:
                    raise self.fail(f"target {self.target!r} has no field {fname!r} (the source has)")
                if g is not None and f["type"] in VECTOR_TYPES and (g["type"], g["dim"]) != (f["type"], f["dim"]):
                    raise self.fail(f"{self.target}.{fname} is {g['type']}({g['dim']}), the source's "
                                    f"{self.source}.{fname} is {f['type']}({f['dim']}): wrong dimension")

    def reverse(self, captured):
        return _rows_inverse(self, self.target, captured)


def _rows_inverse(op: MilvusOp, collection: str, captured) -> list:
    c = _captured(op, captured, "undo")
    if c["undo"] == "drop":
        from ragrev.ops.vector import DropCollection

        return op.inverse(DropCollection(collection))
    return op.inverse(RestoreRows(collection, saved=c.get("saved"), created=c.get("created"),
                                  created_keys=c.get("created_keys")))


class _RowsOp(MilvusOp):
    data_step = True

    def peek(self, n: int = 5) -> list:
        rows = self.rows() if callable(self.rows) else self.rows
        return list(itertools.islice(iter(rows), n))

    def simulate(self, state):
        cs = self.need(state, self.collection)
        if self.rows is not None:
            try:
                sample = self.peek()
            except OperationError:
                raise
            except Exception as e:
                raise self.fail(f"rows for {self.collection!r} failed: {type(e).__name__}: {e}") from None
            self.check_rows(cs, self.collection, sample)


@register(FAMILY)
@dataclass
class Insert(_RowsOp):
    """Write rows: a list, or a function returning an iterable (a generator) —
    called again on resume, so it must yield the same rows in the same order.
    Written by primary key (a resumed step never duplicates). Inverse: delete
    exactly those rows (and restore any they overwrote)."""

    name = "insert"
    collection: str
    rows: Any
    batch_size: int = 1000

    def validate(self) -> None:
        if not (callable(self.rows) or isinstance(self.rows, (list, tuple))):
            raise self.fail(f"{self.collection}: rows= must be a list of dicts or a function returning rows")

    def reverse(self, captured):
        return _rows_inverse(self, self.collection, captured)


@register(FAMILY)
@dataclass
class Upsert(_RowsOp):
    """Either write ``rows`` (as ``insert``), or update the rows matching
    ``filter`` with ``values`` (a dict) or ``transform(row) -> row`` (same
    primary key). The rows overwritten are kept in the trash for the inverse."""

    name = "upsert"
    destructive = True
    collection: str
    rows: Any = None
    filter: str | None = None
    values: dict | None = None
    transform: Callable | None = None
    batch_size: int = 1000

    def validate(self) -> None:
        if (self.rows is None) == (self.filter is None):
            raise self.fail(f"{self.collection}: give rows= or filter= (with values= or transform=)")
        if self.filter is not None and (self.values is None) == (self.transform is None):
            raise self.fail(f"{self.collection}: with filter=, give values= or transform=")

    def simulate(self, state):
        super().simulate(state)
        if self.values:
            cs = state.collection(self.collection)
            for key in self.values:
                if key not in cs.fields and not cs.dynamic:
                    raise self.fail(f"collection {self.collection!r} has no field {key!r}")
                if key in cs.fields and cs.fields[key]["primary"]:
                    raise self.fail(f"{self.collection}.{key} is the primary key; values= cannot change it")

    def reverse(self, captured):
        return _rows_inverse(self, self.collection, captured)


@register(FAMILY)
@dataclass
class Delete(MilvusOp):
    """Delete the rows matching ``filter``; they are kept in the trash and the
    inverse writes them back."""

    name = "delete"
    destructive = True
    data_step = True
    collection: str
    filter: str
    batch_size: int = 1000

    def validate(self) -> None:
        if not isinstance(self.filter, str) or not self.filter.strip():
            raise self.fail(f"{self.collection}: filter= must be a boolean expression (e.g. \"lang == 'xx'\")")

    def simulate(self, state):
        self.need(state, self.collection)

    def reverse(self, captured):
        return _rows_inverse(self, self.collection, captured)


@register(FAMILY)
@dataclass
class RestoreRows(MilvusOp):
    """Inverse of the data steps: delete the primary keys in the ranges
    ``created_keys`` (``[[first, last], ...]``, integer keys, kept in the
    step's journal record) and those listed in the ``created`` trash
    collection, then write back the rows of the ``saved`` one (rows a step
    overwrote or deleted)."""

    name = "restore_rows"
    inverse_only = True
    data_step = True
    rows_only = True
    collection: str
    saved: str | None = None
    created: str | None = None
    batch_size: int = 1000
    created_keys: list | None = None

    def params(self) -> dict:  # without created_keys when there are none: digests as before
        return {k: v for k, v in super().params().items() if k != "created_keys" or v is not None}

    def simulate(self, state):
        self.need(state, self.collection)
        for trash in (self.saved, self.created):
            if trash and not state.exists(trash):
                raise self.fail(f"trash collection {trash!r} of {self.collection!r} is gone (purged?): "
                                "this step cannot be undone")

    def reverse(self, captured):
        raise Irreversible(f"{self.where()}restore_rows has no inverse")


# --- checks ----------------------------------------------------------------------------------

@register(FAMILY)
@dataclass
class ExpectCount(MilvusOp):
    """Check the number of rows (matching ``filter``): exactly ``count``, at
    least ``at_least``, at most ``at_most``, or as many as the collection
    ``same_as`` has (matching the same ``filter`` on Milvus). (Formerly
    ``expected=``: a number or a collection name; still accepted, with a warning.)"""

    name = "expect_count"
    is_check = True
    renamed = {"expected": lambda v: ("same_as", v) if isinstance(v, str) else ("count", v)}
    former_keys = {"count": "expected", "same_as": "expected"}
    added = ("at_least", "at_most", "same_as")
    collection: str
    count: int | None = None
    filter: str | None = None
    at_least: int | None = None
    at_most: int | None = None
    same_as: str | None = None

    def __post_init__(self):
        if isinstance(self.count, str) and self.same_as is None:  # the former positional expected="other"
            self.count, self.same_as = None, self.count
            self.former_spellings = (f"expect_count({self.collection!r}, {self.same_as!r}) is deprecated: "
                                     f"write expect_count({self.collection!r}, same_as={self.same_as!r})",)

    def validate(self) -> None:
        for key in ("count", "at_least", "at_most"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise self.fail(f"{self.collection}: {key}= must be a number")
        if self.same_as is not None and not isinstance(self.same_as, str):
            raise self.fail(f"{self.collection}: same_as= must be a collection name")
        if self.count is not None and self.same_as is not None:
            raise self.fail(f"{self.collection}: give count= or same_as=, not both")
        if all(getattr(self, k) is None for k in ("count", "at_least", "at_most", "same_as")):
            raise self.fail(f"{self.collection}: give count=, at_least=, at_most= or same_as=")

    def simulate(self, state):
        self.need(state, self.collection)
        if self.same_as is not None:
            self.need(state, self.same_as)

    def verdict(self, n: int, reference: int | None = None) -> str | None:
        """Why ``n`` rows fail the check (``reference``: the count of ``same_as``); None when it holds."""
        where = f" matching {self.filter!r}" if self.filter else ""
        want = []
        if self.count is not None and n != self.count:
            want.append(str(self.count))
        if self.same_as is not None and n != reference:
            want.append(f"{reference} (the rows of {self.same_as!r})")
        if self.at_least is not None and n < self.at_least:
            want.append(f"at least {self.at_least}")
        if self.at_most is not None and n > self.at_most:
            want.append(f"at most {self.at_most}")
        return f"{self.collection!r} has {n} rows{where}, expected {' and '.join(want)}" if want else None


@register(FAMILY)
@dataclass
class CheckRecall(MilvusOp):
    """Top-``k`` recall of ``collection``'s index against exact search
    (``against="exact"``, by ``metric_type``: the index's own by default) or
    against another collection's search; on ``queries`` (a number of stored
    vectors sampled with ``seed``, or a list of vectors), with ``filter``.
    Fails the step below ``min_recall``."""

    name = "check_recall"
    is_check = True
    collection: str
    against: str = "exact"
    k: int = 10
    queries: Any = 100
    filter: str | None = None
    min_recall: float = 0.95
    field: str | None = None
    metric_type: str | None = None
    search_params: dict | None = None
    seed: int = 0

    def validate(self) -> None:
        if not isinstance(self.k, int) or self.k <= 0:
            raise self.fail(f"{self.collection}: k= must be a positive integer")
        if not 0 <= float(self.min_recall) <= 1:
            raise self.fail(f"{self.collection}: min_recall= must be between 0 and 1")
        if not (isinstance(self.queries, int) and self.queries > 0) and not isinstance(self.queries, (list, tuple)):
            raise self.fail(f"{self.collection}: queries= must be a count or a list of vectors")

    def simulate(self, state):
        cs = self.need(state, self.collection)
        vf = self.vector_field(cs, self.collection, self.field)
        f = cs.fields[vf]
        if f["type"] not in DENSE_TYPES:
            raise self.fail(f"{self.collection}.{vf}: check_recall works on dense vectors, not {f['type']}")
        if vf not in cs.indexes:
            raise self.fail(f"{self.collection}.{vf} has no index to check")
        if self.metric_type and str(self.metric_type).upper() not in METRICS[f["type"]]:
            raise self.fail(f"{self.collection}.{vf}: metric {self.metric_type!r} does not apply to {f['type']}")
        if isinstance(self.queries, (list, tuple)):
            for q in self.queries:
                if len(q) != f["dim"]:
                    raise self.fail(f"{self.collection}.{vf}: a query vector has dimension {len(q)}, "
                                    f"the field has dim {f['dim']}")
        if self.against != "exact":
            other = self.need(state, self.against)
            of = other.fields.get(vf)
            if of is None or (of["type"], of["dim"]) != (f["type"], f["dim"]):
                raise self.fail(f"{self.against}.{vf} is not a {f['type']}({f['dim']}) field like "
                                f"{self.collection}.{vf}: compare against='exact' instead")

