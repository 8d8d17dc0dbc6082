"""Which collections the application writes to while a switch is in progress.

A ``copy``/``reembed`` with ``catch_up=`` records, in its journal step, the
collection it copies from and the one it builds (``captured["dual_write"]``).
While the revision's ``upgrade`` run is open (running, or failed and not yet
finished or reverted) the application writes each change to both; otherwise
to the one collection its name resolves to. It reads this from the store's
journal, so no redeploy is needed when a switch starts or ends::

    from ragrev.dualwrite import DualWrite

    dw = DualWrite.open("ragrev.toml", "vectors")   # or DualWrite(connected_store)
    for name in dw.targets("docs"):                  # ["docs_v1", "docs_v2"] during a switch
        client.upsert(name, rows)

The application writes the source (the collection in service) first, then the
target, and deletes from both: catch-up and ``expect_fresh`` rely on that
order, and on the watermark field (epoch seconds) set on every write. The
pair is published once the copy's first pass is over (the pass inserts, so
nobody else may write the target before); until the application reads it,
its writes go to the source alone and the catch-up rounds carry them. The
journal is read again every ``refresh`` seconds (at most
:data:`MAX_REFRESH`, which the catch-up waits for).

On Milvus Lite one process owns the data file: the application (a thread
sharing the process with ragrev, as in the tests) asks through the same
process; on a server any process can ask.
"""
from __future__ import annotations

import time

#: the longest an application may keep its answer (seconds): the catch-up
#: waits twice this after publishing the pair before its last rounds
MAX_REFRESH = 1.0


class DualWrite:
    def __init__(self, store, refresh: float = MAX_REFRESH):
        self.store = store
        self.refresh = min(float(refresh), MAX_REFRESH)
        self._pairs: list[dict] = []
        self._read_at = float("-inf")
        self._owned = False

    @classmethod
    def open(cls, config_path, store_name: str, refresh: float = MAX_REFRESH) -> "DualWrite":
        """Connect to ``store_name`` of the ragrev configuration at ``config_path``."""
        from ragrev.config import load_config
        from ragrev.stores import open_store

        store = open_store(load_config(config_path).store(store_name))
        store.connect()
        dw = cls(store, refresh)
        dw._owned = True
        return dw

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pairs(self) -> list[dict]:
        """The ``{"name", "source", "target"}`` of the switches in progress."""
        if time.monotonic() - self._read_at >= self.refresh:
            from ragrev.journal import Journal

            pairs = []
            for st in Journal(self.store).open_runs().values():
                if st.direction != "up":
                    continue
                for step in st.steps.values():
                    pair = (step.get("captured") or {}).get("dual_write")
                    if pair:
                        pairs.append(pair)
            self._pairs, self._read_at = pairs, time.monotonic()
        return self._pairs

    def _resolve(self, name: str) -> str | None:
        resolve = getattr(self.store, "resolve", None)
        return resolve(name) if resolve else name

    def _exists(self, name: str) -> bool:
        exists = getattr(self.store, "is_collection", None)
        return exists(name) if exists else True

    def targets(self, name: str) -> list[str]:
        """The collections to write a change of ``name`` (a collection or an
        alias) to, the one in service first."""
        current = self._resolve(name) or name
        out = [current]
        for pair in self.pairs():
            if current in (pair["source"], pair["target"]) or name == pair["name"]:
                for other in (pair["source"], pair["target"]):
                    if other not in out and self._exists(other):
                        out.append(other)
        return out

    def switching(self, name: str) -> bool:
        """True while a switch of ``name`` is in progress."""
        return len(self.targets(name)) > 1
