"""The Milvus store: Milvus Lite (embedded, ``milvus-lite:///path.db``) or a
Milvus server (``milvus://host:port[/db]``, ``milvus+https://host[:port][/db]``,
token from ``?token=`` or ``user:password@``), through pymilvus ``MilvusClient``.

The store is built in layers, one module each:

- :mod:`~ragrev.drivers.milvus.connection`: connecting (Lite or server), the
  meta collections, the lease, reading rows by primary key (with
  :mod:`~ragrev.drivers.milvus.lite` for Lite's data directory and
  :mod:`~ragrev.drivers.milvus.client` for the helpers that need no store);
- :mod:`~ragrev.drivers.milvus.schema`: collections, aliases, indexes, trash;
- this module: :class:`MilvusStore`, with the preflight hooks of
  :class:`ragrev.stores.Store` and ``purge``.

How each operation of :mod:`ragrev.ops.vector` is applied lives in
:mod:`~ragrev.drivers.milvus.schema_steps` (collections, indexes, aliases,
rebuilds) and :mod:`~ragrev.drivers.milvus.data_steps` (rows and checks),
imported here, so importing this module registers them;
:mod:`~ragrev.drivers.milvus.online` (catch-up, ``expect_fresh``,
``check_relevance``) registers itself when those operations are looked up.
"""
from __future__ import annotations

import time

from pymilvus import MilvusException

from ragrev.drivers.milvus import data_steps, schema_steps  # noqa: F401 (they register the implementations)
from ragrev.drivers.milvus.client import (  # noqa: F401 (re-exported: contracts, references, distributed, tests)
    CONTRACT_PROPERTY, KIND, ZERO, _first_line, _syntax_error, lit, read_contract,
)
from ragrev.drivers.milvus.schema import MilvusSchema
from ragrev.ops.vector import RESERVED_PREFIX, TRASH_PREFIX, MilvusOp  # noqa: F401 (RESERVED_PREFIX: re-exported for drift)
from ragrev.stores import trash_age


class MilvusStore(MilvusSchema):
    """A Milvus store (see the module docstring)."""

    kind = KIND

    # --- preflight hooks (the simulation itself is Store.preflight) ------------------------
    def preflight_filter(self, op, state, touched: set) -> None:
        """A filter on a collection that exists is tried on the server (a
        one-row query); on a collection an earlier step of the run creates or
        changes, only a syntax error counts (its fields may differ by then)."""
        name = getattr(op, "collection", None) or getattr(op, "source", None)
        filt = getattr(op, "filter", None)
        if isinstance(op, MilvusOp) and filt and (phys := self.resolve(name)):
            try:
                self.c.query(phys, filter=filt, limit=1, output_fields=[self.pk_of(phys)])
            except MilvusException as e:
                if name not in touched or _syntax_error(_first_line(e)):
                    raise op.fail(f"filter {filt!r} on {name!r}: {_first_line(e)}") from None

    def purge(self, older_than: float | None = None) -> list[str]:
        dropped, now = [], time.time()
        for name in self.c.list_collections():
            if not name.startswith(TRASH_PREFIX):
                continue
            age = trash_age(name, now)
            if older_than is not None and age is not None and age < older_than:
                continue
            self.c.drop_collection(name)
            dropped.append(name)
        return dropped
