"""The runner: moves every selected store to a target (docs/concepts.md).

A run has two phases:

1. **Plan** (touches nothing): import every revision, connect every store,
   read each store's heads and journal, compute per store the revisions to
   apply or revert (a store added later starts at base and catches up
   alone), record each revision's operations, compare checksums of applied
   revisions, derive omitted downgrades (refusing when an operation has no
   inverse), and let each adapter preflight its operations.
2. **Execute**: take every store's lease, re-plan (another runner may have
   moved a store meanwhile), then walk the revisions in topological order
   (reverse order for a downgrade). A store applies the steps of a revision
   that target it, journaling each step as it completes, then stamps the
   revision. A rerun after a crash or an error resumes at the first step not
   done; a long step resumes from its last checkpoint.
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ragrev import faults
from ragrev.config import Config
from ragrev.context import StepContext
from ragrev.errors import (
    AmbiguousRevision, BadTarget, EditedRevision, Interrupted, Irreversible, RagrevError, StepFailed, UnknownRevision,
)
from ragrev.journal import Journal, RunState, git_commit, who
from ragrev.lock import Leases, LockLost
from ragrev.plan import RevisionPlan
from ragrev.script import ScriptDirectory
from ragrev.stores import connects_in_main_thread, open_store

log = logging.getLogger("ragrev.runner")
#: marks log records whose news the CLI prints anyway (its error line): its log handler skips them
_SHOWN = {"ragrev_cli_shown": True}


@dataclass
class Action:
    """One revision to apply or revert in one store."""

    store: str
    revision: str
    direction: str            # "up" | "down"
    ops: list                 # the operations to run, in order
    resume: RunState | None = None   # an open run to continue
    reverts_half: RunState | None = None  # for "down": the half-applied up run being reverted
    skip: set = field(default_factory=set)  # step indexes already done
    finish_only: bool = False  # run the steps not skipped, then leave the run open (see Runner._finish_interrupted)

    @property
    def mode(self) -> str:
        if self.resume is not None:
            return "resume"
        if self.reverts_half is not None:
            return "revert half-applied"
        return "apply" if self.direction == "up" else "revert"


class Reporter:
    """Receives what the runner does; the CLI prints it. Silent by default."""

    def run_start(self, action: Action, message: str) -> None: ...
    def step_start(self, action: Action, index: int, op) -> None: ...
    def step_progress(self, action: Action, index: int, done: int, total: int | None) -> None: ...
    def step_done(self, action: Action, index: int, op, rows) -> None: ...
    def run_done(self, action: Action) -> None: ...


class Runner:
    def __init__(self, config: Config, scripts: ScriptDirectory | None = None, store_names=None,
                 allow_edited: bool = False, reporter: Reporter | None = None):
        self.config = config
        self.scripts = scripts or ScriptDirectory(config.script_location)
        names = list(store_names) if store_names else list(config.stores)
        for n in names:
            config.store(n)  # unknown store -> ConfigError
        self.store_names = names
        self.allow_edited = allow_edited
        self.reporter = reporter or Reporter()
        self.stores: dict = {}
        self._plans: dict[str, RevisionPlan] = {}
        self._leases: Leases | None = None
        #: per store, [heads, applied revisions] as stamped by this runner (see _stamp)
        self._versions: dict[str, list] = {}
        self._who: dict | None = None  # who runs, and the project's git commit: asked when a run is recorded
        self._current: tuple | None = None  # (action, step index) running now, for Ctrl-C's message

    # --- setup ------------------------------------------------------------------
    @property
    def graph(self):
        return self.scripts.revision_map

    def open(self, load: bool = True, graph: bool = True, names=None) -> None:
        """Connect the selected stores (in parallel: each may wait on a
        server or start an embedded one), after importing every revision
        file unless ``load`` is false (``current`` needs only headers) and
        validating the graph unless ``graph`` is false (``purge`` needs none).
        ``names``: only these of the selected stores (default: all)."""
        if load:
            self.scripts.load_all()
        if graph:
            _ = self.graph.heads  # validates the graph
        todo = [n for n in self.store_names if n not in self.stores and (names is None or n in names)]
        if len(todo) == 1:
            self.stores[todo[0]] = self._connect(todo[0])
            return
        if not todo:
            return
        from concurrent.futures import ThreadPoolExecutor

        here = [n for n in todo if connects_in_main_thread(self.config.store(n))]
        # the drivers are imported here, one after the other: two threads importing one C extension
        # at once (numpy, under pymilvus and another driver) can find it half initialized
        made = {n: self._make(n) for n in todo}
        results: dict = {}
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="ragrev-open") as pool:
            futures = {n: pool.submit(self._connect, n, made[n]) for n in todo if n not in here}
            for n in here:
                try:
                    results[n] = self._connect(n, made[n])
                except BaseException as e:  # noqa: BLE001 - raised below
                    results[n] = e
        error = None
        for name in todo:  # every store that opened is kept (and closed by close()); the first error is raised
            try:
                result = results[name] if name in here else futures[name].result()
                if isinstance(result, BaseException):
                    raise result
                self.stores[name] = result
            except BaseException as e:  # noqa: BLE001 - re-raised below
                error = error or e
        if error is not None:
            raise error

    def _make(self, name: str):
        """The (unconnected) store ``name``: its driver is imported now."""
        store = open_store(self.config.store(name))
        if "lock_timeout" not in store.config.options:  # stores that wait inside connect (Milvus Lite)
            store.lock_timeout = self.config.lock_timeout
        return store

    def _connect(self, name: str, store=None):
        store = store if store is not None else self._make(name)
        store.connect()
        return store

    def close(self) -> None:
        for store in self.stores.values():
            try:
                store.close()
            except Exception:
                pass
        self.stores.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def plan_of(self, rev: str) -> RevisionPlan:
        if rev not in self._plans:
            self._plans[rev] = RevisionPlan(self.scripts.script(rev), self.config.stores)
        return self._plans[rev]

    def heads(self, store) -> tuple[str, ...]:
        heads = store.read_heads()
        for h in heads:
            if h not in self.graph.revisions:
                raise RagrevError(
                    f"store {store.name!r} is at revision {h!r}, which is not in {self.config.script_location.name}/; "
                    f"restore the file or run 'ragrev stamp --purge REV --store {store.name}'")
        return heads

    # --- planning ------------------------------------------------------------------
    def compute(self, direction: str, target: str, repair: bool = False) -> list[Action]:
        """The actions of a run, in execution order. Touches nothing, except
        with ``repair`` (under the lease): runs that completed but whose record
        a killed runner never closed are closed (see :meth:`Journal.open_runs`)."""
        per_store: list[list[Action]] = []
        for name in self.store_names:
            store = self.stores[name]
            heads = self.heads(store)
            journal = Journal(store)
            applied = self.graph.applied_from_heads(heads)
            open_runs = self._existing(store, journal.open_runs(applied))
            if repair:  # under the lease: the stamps start from these heads (no second read)
                self._versions[name] = [heads, set(applied)]
                journal.close_unclosed()
            self._check_edited(store, journal, heads)
            actions = self._up_actions(store, heads, target, open_runs) if direction == "up" \
                else self._down_actions(store, heads, target, open_runs, journal)
            per_store.append(actions)
        order = {rev: i for i, rev in enumerate(self.graph.topological())}
        store_rank = {n: i for i, n in enumerate(self.store_names)}

        def key(a: Action):
            plan_stores = self.plan_of(a.revision).stores()
            srank = plan_stores.index(a.store) if a.store in plan_stores else len(plan_stores) + store_rank[a.store]
            return (order[a.revision], srank)

        actions = sorted((a for acts in per_store for a in acts), key=key, reverse=(direction == "down"))
        if direction == "down":  # within one revision, stores keep their forward order
            actions = _stable_store_order(actions, key)
        for name in self.store_names:
            ops = [o for a in actions if a.store == name for i, o in enumerate(a.ops) if i not in a.skip]
            if ops:
                self.stores[name].preflight(ops)
        return actions

    def _existing(self, store, open_runs: dict) -> dict:
        """``open_runs`` without those of revisions whose file no longer exists:
        a run that completed no step left nothing to finish or revert and is
        passed over; one that did is refused (``ragrev repair`` forgets it)."""
        out = {}
        for rev, st in open_runs.items():
            if rev in self.graph.revisions:
                out[rev] = st
            elif st.done_steps():
                raise RagrevError(
                    f"store {store.name!r}: revision {rev} is half-applied ({len(st.done_steps())} step(s) done) "
                    f"but its file no longer exists in {self.config.script_location.name}/; restore the file to "
                    f"finish or revert it, or run 'ragrev repair' to forget the run")
        return out

    def _check_edited(self, store, journal: Journal, heads) -> None:
        if self.allow_edited:
            return
        for rev in self.graph.applied_from_heads(heads):
            applied = journal.applied_checksum(rev)  # from the records open_runs read: no query per revision
            if applied is not None and not self.plan_of(rev).matches(applied):
                raise EditedRevision(
                    f"revision {rev} ({self.scripts.script(rev).path.name}) was edited after it was applied to store "
                    f"{store.name!r}: its operations changed; revert the edit, write a new revision, or run 'ragrev repair' to accept it"
                )

    def _check_half_edited(self, store, rev: str, st: RunState, command: str) -> None:
        """Refuse to finish or revert a half-applied revision whose operations
        changed since its run started: the journal's steps and captured data
        belong to the operations as they were."""
        if not self.plan_of(rev).matches(st.run.get("checksum")) and not self.allow_edited:
            raise EditedRevision(
                f"store {store.name!r}: revision {rev} is half-applied and its file changed since; "
                f"restore the file, then run {command} again"
            )

    def _up_actions(self, store, heads, target, open_runs) -> list[Action]:
        for rev, st in open_runs.items():
            if st.direction == "down":
                raise RagrevError(
                    f"store {store.name!r}: revision {rev} is half-reverted ({len(st.done_steps())} steps); "
                    f"run the same 'ragrev downgrade' again to finish it first"
                )
        actions = []
        for r in self.graph.upgrade_path(heads, target):
            ops = self.plan_of(r.revision).up_for(store.name)
            st = open_runs.get(r.revision)
            action = Action(store.name, r.revision, "up", ops)
            if st is not None:
                self._check_half_edited(store, r.revision, st, "ragrev upgrade")
                action.resume = st
                action.skip = set(st.done_steps())
            actions.append(action)
        return actions

    def _down_actions(self, store, heads, target, open_runs, journal: Journal) -> list[Action]:
        actions = []
        applied = self.graph.applied_from_heads(heads)
        keep = self.graph.applied_from_heads(self.graph.resolve(target, heads))
        for rev, st in open_runs.items():
            if rev in applied or rev in keep:
                continue
            self._check_half_edited(store, rev, st.reverting or st, "ragrev downgrade")
            if st.direction == "up" and self._finished_whole(store.name, rev, st):  # then its downgrade() reverts it
                actions.append(Action(store.name, rev, "down", self._down_ops(store, self.plan_of(rev), journal)))
            elif st.direction == "up":
                actions.append(Action(store.name, rev, "down", self._half_inverse(store, rev, st), reverts_half=st))
            elif st.reverting is not None:  # reverting a half-applied revision was interrupted: finish it
                actions.append(Action(store.name, rev, "down", self._half_inverse(store, rev, st.reverting),
                                      resume=st, reverts_half=st.reverting, skip=set(st.done_steps())))
        for r in self.graph.downgrade_path(heads, target):
            plan = self.plan_of(r.revision)
            st = open_runs.get(r.revision)
            if st is not None and st.direction == "down":
                ops = self._down_ops(store, plan, journal, st)
                actions.append(Action(store.name, r.revision, "down", ops, resume=st, skip=set(st.done_steps())))
            else:
                actions.append(Action(store.name, r.revision, "down", self._down_ops(store, plan, journal)))
        for rev, st in open_runs.items():
            if st.direction == "down" and not any(a.revision == rev for a in actions):
                raise RagrevError(f"store {store.name!r}: revision {rev} is half-reverted; "
                                  f"downgrade to below it to finish, or 'ragrev upgrade' after finishing")
        return actions

    def _half_inverse(self, store, rev: str, up: RunState) -> list:
        """The inverses of the steps of a half-applied ``up`` run, last first:
        of its completed steps, and of the part its failed step wrote (what
        that step recorded as it wrote it, see ``Operation.reverse_failed``)."""
        ops = []
        up_ops = self.plan_of(rev).up_for(store.name)
        for i in sorted((i for i in up.steps if i < len(up_ops)), reverse=True):
            captured = up.steps[i].get("captured") or {}
            if up.steps[i].get("outcome") == "done":
                ops += up_ops[i].reverse(captured)
            else:
                ops += up_ops[i].reverse_failed(captured)
        return without_moot(ops)

    def _down_ops(self, store, plan: RevisionPlan, journal: Journal, resuming: RunState | None = None) -> list:
        explicit = plan.down_for(store.name)
        if explicit is not None:
            return explicit
        up_ops = plan.up_for(store.name)
        last = journal.last_applied_run(plan.revision)
        ops = []
        for i in reversed(range(len(up_ops))):
            op = up_ops[i]
            if not op.reversible:
                raise Irreversible(
                    f"{op.where()}revision {plan.revision} has no downgrade() and {op.describe()} on store "
                    f"{store.name!r} has no inverse; write downgrade(op) — nothing was changed"
                )
            captured = (last.steps.get(i) or {}).get("captured") if last else None
            ops += op.reverse(captured or {})
        return without_moot(ops)

    # --- execution ------------------------------------------------------------------
    def run(self, direction: str, target: str, plan_only: bool = False) -> list[Action]:
        """Plan, then (unless ``plan_only``) execute; Ctrl-C raises
        :class:`~ragrev.errors.Interrupted` saying how to resume."""
        try:
            return self._run(direction, target, plan_only)
        except KeyboardInterrupt:
            raise self._interrupted(direction, target) from None

    def _interrupted(self, direction: str, target: str) -> Interrupted:
        verb = "upgrade" if direction == "up" else "downgrade"
        if self._current is None:
            return Interrupted(f"interrupted (Ctrl-C) before any step ran: nothing changed; "
                               f"run 'ragrev {verb} {target}' again")
        action, index = self._current
        where = f"store {action.store!r}, revision {action.revision}"
        step = f"step {index + 1}/{len(action.ops)}" if index is not None else "its version stamp"
        done = "what it did is journaled"
        if direction == "up":
            back = _parent_target(self.graph, action.revision)
            return Interrupted(f"interrupted (Ctrl-C) at {step} of {where}; {done}: run 'ragrev upgrade {target}' "
                               f"again to resume it, or 'ragrev downgrade {back}' to revert it")
        return Interrupted(f"interrupted (Ctrl-C) at {step} of {where} (downgrade); {done}: run "
                           f"'ragrev downgrade {target}' again to finish it")

    def _run(self, direction: str, target: str, plan_only: bool = False) -> list[Action]:
        self.scripts.load_all()
        try:  # a target that names no revision is bad input: say so before opening any store
            self.graph.resolve(target, ())
        except (BadTarget, UnknownRevision, AmbiguousRevision):
            raise
        except RagrevError:  # relative targets resolve per store, later
            pass
        self.open()
        actions = self.compute(direction, target)
        if plan_only:
            return actions
        busy = [self.stores[n] for n in self.store_names if any(a.store == n for a in actions)]
        if not busy:
            return actions
        with Leases(busy, self.config.lock_timeout, self.config.lock_lease) as leases:
            self._leases = leases
            self._versions = {}
            if direction == "down":
                self._finish_interrupted(target)
            actions = self.compute(direction, target, repair=True)
            for action in actions:
                store = self.stores[action.store]
                leases.fence(store)  # no round trip while the lease was confirmed recently
                self._execute(store, action)
        return actions

    def _finish_interrupted(self, target: str) -> None:
        """Before reverting a half-applied revision whose run was killed (its
        record still ``running``) in the middle of a step, finish that step:
        it resumes like any interrupted step, so that its inverse then undoes
        all of it, not only what its journal saw done. When a step it ran has
        no inverse (``execute``, ``bulk_insert``) but the revision has a
        ``downgrade()``, finish the whole revision instead: its downgrade then
        reverts it. (A run that failed with an error is not retried.)"""
        for name in self.store_names:
            store = self.stores[name]
            heads = self.heads(store)
            applied = self.graph.applied_from_heads(heads)
            keep = self.graph.applied_from_heads(self.graph.resolve(target, heads))
            for rev, st in self._existing(store, Journal(store).open_runs(applied)).items():
                if st.direction != "up" or st.outcome != "running" or rev in applied or rev in keep:
                    continue
                ops = self.plan_of(rev).up_for(name)
                pending = {i for i, rec in st.steps.items() if rec.get("outcome") != "done"}
                if self._finished_whole(name, rev, st):
                    self._execute(store, Action(name, rev, "up", ops, resume=st, skip=set(st.done_steps())))
                elif pending:
                    self._execute(store, Action(name, rev, "up", ops, resume=st,
                                                skip=set(range(len(ops))) - pending, finish_only=True))

    def _finished_whole(self, store_name: str, rev: str, st: RunState) -> bool:
        """A killed half-applied run that ran a step without an inverse, of a
        revision with a ``downgrade()``: a downgrade finishes it, then runs that."""
        plan = self.plan_of(rev)
        ops = plan.up_for(store_name)
        return st.outcome == "running" and plan.down is not None and \
            any(not ops[i].reversible for i in st.steps if i < len(ops))

    def _execute(self, store, action: Action) -> None:
        if self._who is None:
            self._who = {**who(), "git_commit": git_commit(self.config.directory)}
        journal = Journal(store, self._who)
        plan = self.plan_of(action.revision)
        log.info("%s: %s %s (%s), %s", store.name, action.direction, action.revision, action.mode, plan.script.message)
        self.reporter.run_start(action, plan.script.message)
        self._current = (action, None)
        run = action.resume.run if action.resume else None
        try:
            with store.revision_scope():
                if run is None:
                    run = journal.start_run(action.revision, action.direction, plan.checksum, self._leases.owner)
                elif run.get("outcome") != "running":
                    store.log_update(run["id"], {"outcome": "running", "error": None})
                prior_steps = action.resume.steps if action.resume else {}
                for i, op in enumerate(action.ops):
                    if i in action.skip:
                        continue
                    self._step(store, journal, run, action, i, op, prior_steps.get(i))
                if action.finish_only:  # the revision stays half-applied, to be reverted next
                    self.reporter.run_done(action)
                    return
                self._fence(store, verify=not store.commits_fenced)
                self._stamp(store, action)
                faults.hit("stamp")
                if action.reverts_half is not None:
                    journal.finish_run(action.reverts_half.run, "reverted")
                journal.finish_run(run, "done")
        except LockLost:
            raise  # another runner has the store now: write nothing more (not even the failure)
        except BaseException as e:
            self._versions.pop(store.name, None)  # the stamp may have been rolled back: read it again
            self._record_failure(store, journal, action, run, e)
            if isinstance(e, KeyboardInterrupt):
                log.warning("%s: revision %s interrupted", store.name, action.revision, extra=_SHOWN)
                raise
            log.error("%s: revision %s failed: %s: %s", store.name, action.revision, type(e).__name__,
                      store.config.scrub(str(e)), extra=_SHOWN)
            if isinstance(e, RagrevError):
                raise
            # anything else, SystemExit from a step's code too, is a failed revision
            path, line = self._user_frame(e, action)
            text = store.config.scrub(str(e)).strip()
            index = self._current[1] if self._current else None
            at = f" at step {index + 1}/{len(action.ops)}" if index is not None else ""
            raise StepFailed(
                (f"{path}:{line}: " if path else "")
                + f"store {store.name!r}: revision {action.revision} failed{at}: {type(e).__name__}: "
                f"{text.splitlines()[0] if text else ''}", path=path, line=line,
            ) from e
        self._current = None
        log.info("%s: %s %s done", store.name, action.direction, action.revision)
        self.reporter.run_done(action)

    def _user_frame(self, exc: BaseException, action: Action) -> tuple[str | None, int | None]:
        """Where in the revision files ``exc`` came from: the innermost
        traceback frame in the revision directory (a user's function), else
        the line that recorded the failing step."""
        root = self.config.script_location.resolve()
        found = None
        for frame in traceback.extract_tb(exc.__traceback__):
            try:
                Path(frame.filename).resolve().relative_to(root)
            except (ValueError, OSError):
                continue
            found = (frame.filename, frame.lineno)
        if found is None and self._current and self._current[1] is not None:
            loc = getattr(action.ops[self._current[1]], "location", None)
            found = (loc[0], loc[1]) if loc else None
        if found is None:
            return None, None
        path, line = found
        try:
            path = Path(path).resolve().relative_to(self.config.directory.resolve()).as_posix()
        except (ValueError, OSError):
            pass
        return path, line

    def _step(self, store, journal: Journal, run: dict, action: Action, index: int, op, prior: dict | None) -> None:
        if prior is not None and prior.get("digest") not in op.digests() and not self.allow_edited:
            raise EditedRevision(f"store {store.name!r}: step {index + 1} of revision {action.revision} changed since it started")
        self._current = (action, index)
        log.info("%s: %s step %d/%d %s", store.name, action.revision, index + 1, len(action.ops), op.describe())
        self.reporter.step_start(action, index, op)
        self._fence(store)
        with store.step_scope():
            step = prior if prior is not None else journal.start_step(run, index, op)
            ctx = StepContext(
                store=store, op=op, revision=action.revision, step_id=step["id"],
                captured=dict(step.get("captured") or {}), resume_token=step.get("resume_token"),
                rows_done=step.get("rows_done") or 0, resuming=prior is not None, stores=self.stores,
                config=self.config,
            )

            def on_checkpoint(c: StepContext):
                self._fence(store, verify=not store.commits_fenced)  # SQL: checked again before the commit
                journal.checkpoint(step, c.resume_token, c.rows_done, c.captured)
                faults.hit("checkpoint")

            ctx.on_checkpoint = on_checkpoint
            ctx.on_fence = lambda: self._fence(store)
            ctx.on_progress = lambda done, total: self.reporter.step_progress(action, index, done, total)
            rows = store.apply(op, ctx)
            faults.hit("applied")
            self._fence(store)
            journal.finish_step(step, rows, ctx.captured)
        faults.hit("step")
        self._current = (action, None)
        log.info("%s: %s step %d done (%s rows)", store.name, action.revision, index + 1, rows)
        self.reporter.step_done(action, index, op, rows)

    def _fence(self, store, verify: bool = False) -> None:
        if self._leases is not None:
            self._leases.fence(store, verify)

    def _stamp(self, store, action: Action) -> None:
        if action.reverts_half is not None:
            return  # never stamped: heads stay as they are
        version = self._versions.get(store.name)
        if version is None:  # read once per store and run, then kept up to date here (under the lease)
            heads = store.read_heads()
            version = self._versions[store.name] = [heads, self.graph.applied_from_heads(heads)]
        version[0] = self.graph.step_heads(version[0], version[1], action.revision, action.direction == "up")
        store.write_heads(version[0])

    def _record_failure(self, store, journal: Journal, action: Action, run, exc) -> None:
        if run is None or (store.fence is not None and store.fence.lost is not None):
            return
        message = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else \
            store.config.scrub(f"{type(exc).__name__}: {exc}")
        try:
            with store.failure_scope():
                ids = {r["id"] for r in store.log_records(action.revision)}
                if run["id"] in ids:
                    journal.finish_run(run, "failed", message)
                else:  # rolled back with the revision's transaction
                    failed = journal.start_run(action.revision, action.direction, run.get("checksum"), run.get("owner", ""))
                    journal.finish_run(failed, "failed", message)
        except Exception:  # the store itself is failing: the journal keeps what it had
            log.warning("%s: could not record the failure of revision %s in the journal", store.name,
                        action.revision, exc_info=True)


def _parent_target(graph, rev: str) -> str:
    parents = graph.revisions[rev].down_revision
    return parents[0] if len(parents) == 1 else "base" if not parents else " ".join(parents)


def without_moot(ops: list) -> list:
    """A derived downgrade without the inverses a later one makes moot: one
    that only changes the rows of a collection (deleting the documents or
    vectors a step inserted, unsetting an added field...) when a later
    inverse of the same revert drops that collection (it was created by the
    revision), with nothing in between naming that collection otherwise (a
    rename, an alias...). The drop is soft: the trash keeps the collection as
    it was, with those rows. Deterministic, so a resumed revert derives the
    same steps."""
    keep = [True] * len(ops)
    for j, drop in enumerate(ops):
        if not drop.drops_collection:
            continue
        target = getattr(drop, "collection", None)
        for i in range(j - 1, -1, -1):
            op = ops[i]
            if op.store != drop.store or not keep[i]:
                continue
            if op.rows_only and getattr(op, "collection", None) == target:
                keep[i] = False
            elif _names(op, target):
                break
    return [op for op, k in zip(ops, keep) if k]


def _names(op, name) -> bool:
    """Whether ``name`` is one of ``op``'s parameters (or inside a list of them)."""
    for value in op.params().values():
        if value == name or (isinstance(value, (list, tuple)) and name in value):
            return True
    return False


def _stable_store_order(actions: list[Action], key) -> list[Action]:
    out: list[Action] = []
    i = 0
    while i < len(actions):
        j = i
        while j < len(actions) and actions[j].revision == actions[i].revision:
            j += 1
        out += sorted(actions[i:j], key=lambda a: key(a)[1])
        i = j
    return out
