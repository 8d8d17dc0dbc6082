"""What an operation's implementation receives besides the operation: the
:class:`StepContext` of the step it runs as."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class StepContext:
    """The journal's view of one step, given to ``implementation(store, op, ctx)``.

    - ``captured``: fill with what the inverse needs (JSON data; large data
      goes into a trash table/collection inside the store, and its name here).
      Saved in the journal at every checkpoint and when the step completes;
      handed back to ``op.reverse(captured)`` for a derived downgrade.
    - ``resume_token`` / ``rows_done``: what the last :meth:`checkpoint` saved
      (None / 0 on a fresh start).
    - ``resuming``: this step started before and did not finish (a crash or an
      error): the implementation must not redo what is already done.
    - ``stores``: name -> connected :class:`~ragrev.stores.Store`, for steps
      that read another store (``merge_from``).
    """

    store: Any
    op: Any
    revision: str = ""
    step_id: str = ""
    captured: dict = field(default_factory=dict)
    resume_token: Any = None
    rows_done: int = 0
    resuming: bool = False
    stores: dict = field(default_factory=dict)
    on_checkpoint: Callable[["StepContext"], None] | None = None
    on_progress: Callable[[int, int | None], None] | None = None
    on_fence: Callable[[], None] | None = None
    config: Any = None

    def fence(self) -> None:
        """Call before writing a batch: raises :class:`~ragrev.lock.LockLost`
        when this runner's lease may have lapsed and another runner took it
        (usually no round trip; see :meth:`ragrev.lock.Leases.fence`)."""
        if self.on_fence:
            self.on_fence()

    def checkpoint(self, token, rows_done: int | None = None) -> None:
        """Durably record progress: the next run of this step starts from ``token``.
        The runner verifies its lease with the store first (and after):
        raises :class:`~ragrev.lock.LockLost` when another runner took it."""
        self.resume_token = token
        if rows_done is not None:
            self.rows_done = rows_done
        if self.on_checkpoint:
            self.on_checkpoint(self)

    def progress(self, done: int, total: int | None = None) -> None:
        """Report rows done (for the progress bar / structured log lines); also a :meth:`fence`."""
        self.fence()
        if self.on_progress:
            self.on_progress(done, total)
