"""Drift: each live store against the state its current version implies.

For every store, :func:`drift` reads the revisions the store is at (its
version table), computes the state those revisions imply
(:mod:`ragrev.state`, no store touched), reads the live structure, and lists
what differs:

- Milvus: a collection missing, a field added, dropped or changed (type,
  dimension, length, nullability), the dynamic field switched, an index
  dropped, added or changed (type, metric, parameters), an alias missing or
  pointing elsewhere, an embedding contract (model, version, chunker) that is
  not the one the revisions recorded;
- MongoDB: a collection missing, a validator removed, changed or loosened
  (validation level / action), an index missing, added or changed;
- SQL: what Alembic's own ``compare_metadata`` finds between the live
  database and the tables the revisions imply (tables, columns, types when
  the store is SQLite, nullability, indexes);
- every kind: a count far from the one last recorded (``ragrev drift
  --record-counts`` records them), a chat archive root that is gone, and
  dangling references of the ``check_references`` steps (run again).

Objects the revisions never made (other collections, tables, aliases) are
listed apart as *unmanaged*: not drift. ragrev's own objects
(``ragrev_*``) are never listed.

Reading a store lists its objects once (Milvus: ``list_collections`` and
``list_aliases``; MongoDB: ``listCollections``, which carries validators;
SQL: one reflection), then describes only the managed objects (Milvus has no
call describing several collections at once, MongoDB none listing the
indexes of several).

Per-kind hooks live in :data:`CHECKERS` (kind -> ``fn(store, expected, options) -> report``).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Callable

from ragrev.config import Config
from ragrev.state import StoreState, implied_state

COUNTS_RECORD = "counts"


@dataclasses.dataclass
class StoreDrift:
    store: str
    kind: str
    revisions: tuple            # the heads the store is at
    drift: list = dataclasses.field(default_factory=list)       # {"object", "what", "expected", "actual"}
    unmanaged: list = dataclasses.field(default_factory=list)   # names
    notes: list = dataclasses.field(default_factory=list)
    counts: dict = dataclasses.field(default_factory=dict)

    def add(self, obj: str, what: str, expected=None, actual=None) -> None:
        self.drift.append({"object": obj, "what": what, "expected": expected, "actual": actual})

    def as_json(self) -> dict:
        return {"store": self.store, "kind": self.kind, "at": list(self.revisions), "drift": self.drift,
                "unmanaged": self.unmanaged, "notes": self.notes, "counts": self.counts}


# --- the command -------------------------------------------------------------------------------------

def drift(config: Config, store_names=None, count_tolerance: float = 0.5, record_counts: bool = False,
          references: list | None = None) -> list[StoreDrift]:
    """The drift of every store (or of ``store_names``)."""
    from ragrev.runner import Runner

    runner = Runner(config, store_names=store_names)
    reports = []
    with runner:
        runner.open()
        heads = {n: runner.heads(s) for n, s in runner.stores.items()}
        expected = implied_state(config, store_names=runner.store_names, scripts=runner.scripts,
                                 heads_by_store=heads)
        for name in runner.store_names:
            store = runner.stores[name]
            exp = expected[name]
            rep = StoreDrift(name, store.kind, heads[name], notes=list(exp.notes))
            checker = CHECKERS.get(store.kind)
            if checker is not None:
                managed = checker(store, exp, rep)
                _check_counts(store, managed, rep, count_tolerance, record_counts)
                _check_archives(exp, rep, config)
            _check_references(config, runner.stores, exp, rep)
            reports.append(rep)
    return reports


def has_drift(reports: list[StoreDrift]) -> bool:
    return any(r.drift for r in reports)


# --- counts --------------------------------------------------------------------------------------------

def _last_counts(store) -> dict:
    last = None
    for r in store.log_records():
        if r.get("type") == COUNTS_RECORD:
            last = r
    return (last or {}).get("captured") or {}


def _check_counts(store, managed: dict, rep: StoreDrift, tolerance: float, record: bool) -> None:
    """``managed``: {name the user sees: physical name} of the objects to count."""
    counter = COUNTERS.get(store.kind)
    if counter is None or not managed:
        return
    counts = {}
    for shown, phys in managed.items():
        try:
            counts[shown] = counter(store, phys)
        except Exception as e:  # noqa: BLE001 - a count that cannot be read is a note, not a crash
            rep.notes.append(f"{shown}: count not read ({type(e).__name__})")
    rep.counts = counts
    last = _last_counts(store)
    for name, n in counts.items():
        before = last.get(name)
        if before is None:
            continue
        far = (before == 0) != (n == 0) or (before and abs(n - before) / before > tolerance)
        if far:
            rep.add(name, "count far from the last recorded one", before, n)
    if record:
        from ragrev.journal import next_seq, now_iso
        import uuid

        store.ensure_meta()
        store.log_append({"id": uuid.uuid4().hex, "seq": next_seq(), "type": COUNTS_RECORD, "outcome": "done",
                          "started": now_iso(), "finished": now_iso(), "captured": counts,
                          "description": "ragrev drift --record-counts"})


def _count_milvus(store, name):
    return store.count(name)


def _count_mongo(store, name):
    return store.db[name].estimated_document_count()


def _count_sql(store, name):
    import sqlalchemy as sa

    n = store.conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
    store.conn.commit()
    return int(n)


COUNTERS: dict[str, Callable] = {"milvus": _count_milvus, "mongo": _count_mongo, "sql": _count_sql}


# --- chat archives ---------------------------------------------------------------------------------------

def _check_archives(exp: StoreState, rep: StoreDrift, config) -> None:
    for cname, ch in exp.data.get("chats", {}).items():
        for root in ch["archive_roots"]:
            try:
                from ragrev.chats.archive import open_root

                r = open_root(root, config.directory)
                if not r.fs.exists(r.path):
                    rep.add(f"chats {cname}", "archive root is gone", root, None)
            except Exception as e:  # noqa: BLE001
                rep.notes.append(f"chats {cname}: archive root {root} not checked ({type(e).__name__})")


# --- cross-store references ------------------------------------------------------------------------------

def _check_references(config, stores: dict, exp: StoreState, rep: StoreDrift) -> None:
    """Run again the ``check_references`` steps of the store's revisions."""
    from ragrev.references import CheckReferences, check
    from ragrev.stores import open_store

    def opener(name):
        s = open_store(config.store(name))
        s.connect()
        return s, s.close

    for params in exp.data.get("references", []):
        op = CheckReferences(**params)
        try:
            op.validate()
            op.base_dir = config.directory
            result = check(op, dict(stores), opener)
        except Exception as e:  # noqa: BLE001 - a reference that cannot be checked is a note
            rep.notes.append(f"{op.describe()}: not checked ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            continue
        if result["dangling"] > op.max_dangling:
            rep.add(f"references {op.source} -> {op.target}",
                    f"{result['dangling']} of {result['checked']} dangling", op.max_dangling, result["sample"])


# --- Milvus --------------------------------------------------------------------------------------------

_FIELD_KEYS = ("type", "primary", "dim", "max_length", "element_type", "max_capacity", "nullable")


def check_milvus(store, exp: StoreState, rep: StoreDrift) -> dict:
    from ragrev.drivers.milvus.store import RESERVED_PREFIX

    want_cols, want_aliases = exp.data["collections"], exp.data["aliases"]
    live_cols = set(store.c.list_collections())
    live_alias_names = set(store.c.list_aliases().get("aliases", []))
    live_aliases = {a: store.alias_target(a) for a in live_alias_names}
    phys_of: dict[str, str] = {}      # expected name -> live collection
    shown: dict[str, str] = {}        # expected name -> what the user calls it
    for alias, target in want_aliases.items():
        got = live_aliases.get(alias)
        if got is None and "~" in target and alias == target.rsplit("~", 1)[0] and alias in live_cols:
            # the change was made in place (a server's add_collection_field): no alias, same name
            phys_of.setdefault(target, alias)
            shown.setdefault(target, alias)
            continue
        if got is None:
            rep.add(f"alias {alias}", "alias missing", target if "~" not in target else "(a rebuilt collection)",
                    None)
            continue
        if "~" in target:
            phys_of.setdefault(target, got)
            shown.setdefault(target, alias)
        elif got != target:
            rep.add(f"alias {alias}", "alias points elsewhere", target, got)
    # a rebuilt collection no alias names any more (e.g. blue after a blue-green switch): the
    # store named it <logical>_v<n>; the generations are matched in order
    taken = set(phys_of.values())
    for name in sorted((n for n in want_cols if "~" in n and n not in phys_of),
                       key=lambda n: int(n.rsplit("~", 1)[1])):
        logical = name.rsplit("~", 1)[0]
        gens = sorted((n for n in live_cols if n not in taken and n.startswith(logical + "_v")
                       and n[len(logical) + 2:].isdigit()), key=lambda n: int(n[len(logical) + 2:]))
        if gens:
            phys_of[name], shown[name] = gens[0], gens[0]
            taken.add(gens[0])
        else:
            rep.add(f"collection {logical} (rebuilt)", "collection missing", f"{logical}_v<n>", None)
    for name in want_cols:
        if "~" in name:
            continue
        if name in live_cols:
            phys_of[name] = name
            shown[name] = name
        elif live_aliases.get(name) in live_cols:
            # rebuilt where the history expected an in-place change: the name is now an alias
            phys_of[name] = live_aliases[name]
            shown[name] = name
        else:
            rep.add(f"collection {name}", "collection missing", "present", None)
    for name, phys in phys_of.items():
        _compare_collection(rep, shown[name] if shown[name] == phys else f"{shown[name]} ({phys})",
                            want_cols[name], store.collection_state(phys))
    managed = set(phys_of.values())
    rep.unmanaged += sorted(f"collection {n}" for n in live_cols
                            if n not in managed and not n.startswith(RESERVED_PREFIX))
    rep.unmanaged += sorted(f"alias {a} -> {t}" for a, t in live_aliases.items() if a not in want_aliases)
    return {shown[n]: p for n, p in phys_of.items()}


def _compare_collection(rep: StoreDrift, label: str, want: dict, live) -> None:
    obj = f"collection {label}"
    for fname, f in want["fields"].items():
        g = live.fields.get(fname)
        if g is None:
            rep.add(f"{obj}.{fname}", "field missing", _fdesc(f), None)
            continue
        diff = {k: (f.get(k), g.get(k)) for k in _FIELD_KEYS if f.get(k) != g.get(k)}
        if diff:
            rep.add(f"{obj}.{fname}", "field changed: " + ", ".join(diff), {k: v[0] for k, v in diff.items()},
                    {k: v[1] for k, v in diff.items()})
    for fname, g in live.fields.items():
        if fname not in want["fields"]:
            rep.add(f"{obj}.{fname}", "field added outside ragrev", None, _fdesc(g))
    if bool(want["dynamic"]) != bool(live.dynamic):
        rep.add(obj, "dynamic field switched", want["dynamic"], live.dynamic)
    for fname, ix in want["indexes"].items():
        got = live.indexes.get(fname)
        if got is None:
            rep.add(f"{obj}.{fname}", "index missing", _idesc(ix), None)
        elif not _same_index(ix, got):
            rep.add(f"{obj}.{fname}", "index changed", _idesc(ix), _idesc(got))
    for fname, got in live.indexes.items():
        if fname not in want["indexes"]:
            rep.add(f"{obj}.{fname}", "index added outside ragrev", None, _idesc(got))
    want_c, live_c = want.get("embedding"), live.embedding
    if want_c:
        if not live_c:
            rep.add(obj, "embedding contract missing", want_c, None)
        else:
            diff = [k for k in ("field", "model", "version", "chunker") if want_c.get(k) != live_c.get(k)]
            if diff:
                rep.add(obj, "embedding contract changed: " + ", ".join(diff), {k: want_c.get(k) for k in diff},
                        {k: live_c.get(k) for k in diff})


def _fdesc(f: dict) -> str:
    size = f.get("dim") or f.get("max_length")
    return f"{f['type']}" + (f"({size})" if size else "") + (" nullable" if f.get("nullable") else "")


def _idesc(ix: dict) -> str:
    params = ix.get("params") or {}
    return f"{ix['index_type']}/{ix.get('metric_type')}" + (f" {json.dumps(params, sort_keys=True)}" if params else "")


def _same_index(want: dict, got: dict) -> bool:
    if want["index_type"] != got["index_type"] or (want.get("metric_type") or None) != (got.get("metric_type") or None):
        return False
    gp = got.get("params") or {}
    return all(str(gp.get(k)) == str(v) for k, v in (want.get("params") or {}).items())


# --- MongoDB ----------------------------------------------------------------------------------------------

_LEVEL_RANK = {"off": 0, "moderate": 1, "strict": 2}
_ACTION_RANK = {"warn": 0, "errorAndLog": 1, "error": 1}


def _canon(value) -> str:
    from bson import json_util

    return json.dumps(json.loads(json_util.dumps(value or None)), sort_keys=True)


def check_mongo(store, exp: StoreState, rep: StoreDrift) -> dict:
    from ragrev.drivers.mongo.store import RESERVED_PREFIX

    want = exp.data["collections"]
    live = {info["name"]: dict(info.get("options") or {}) for info in store.db.list_collections()}
    pointers = {ch["pointers"] for ch in exp.data.get("chats", {}).values()}
    managed = {}
    for name, w in want.items():
        if name not in live:
            rep.add(f"collection {name}", "collection missing", "present", None)
            continue
        managed[name] = name
        if w.get("unknown"):
            continue
        opts = live[name]
        obj = f"collection {name}"
        lv = opts.get("validator") or None
        if w["validator"] and not lv:
            rep.add(obj, "validator removed", "a validator", None)
        elif _canon(w["validator"]) != _canon(lv):
            rep.add(obj, "validator changed" if w["validator"] else "validator added outside ragrev",
                    w["validator"], lv)
        if w["validator"] and lv:
            wl, ll = w["validation_level"] or "strict", opts.get("validationLevel") or "strict"
            wa, la = w["validation_action"] or "error", opts.get("validationAction") or "error"
            if wl != ll:
                rep.add(obj, "validation level loosened" if _LEVEL_RANK.get(ll, 0) < _LEVEL_RANK.get(wl, 0)
                        else "validation level changed", wl, ll)
            if wa != la:
                rep.add(obj, "validation action loosened" if _ACTION_RANK.get(la, 0) < _ACTION_RANK.get(wa, 0)
                        else "validation action changed", wa, la)
        live_ix = {ix["name"]: ix for ix in store.db[name].list_indexes() if ix["name"] != "_id_"}
        for iname, ix in w["indexes"].items():
            got = live_ix.get(iname)
            if got is None:
                rep.add(f"{obj} index {iname}", "index missing", ix["key"], None)
                continue
            gkey = [[k, v] for k, v in dict(got["key"]).items()]
            if [[k, _num(v)] for k, v in ix["key"]] != [[k, _num(v)] for k, v in gkey]:
                rep.add(f"{obj} index {iname}", "index changed: keys", ix["key"], gkey)
            if bool(ix["unique"]) != bool(got.get("unique")):
                rep.add(f"{obj} index {iname}", "index changed: unique", ix["unique"], bool(got.get("unique")))
        for iname, got in live_ix.items():
            if iname not in w["indexes"]:
                rep.add(f"{obj} index {iname}", "index added outside ragrev", None,
                        [[k, v] for k, v in dict(got["key"]).items()])
    for name in pointers:
        if name in live:
            managed.setdefault(name, name)
    rep.unmanaged += sorted(f"collection {n}" for n in live if n not in managed and not n.startswith(RESERVED_PREFIX)
                            and not n.startswith("system."))
    return managed


def _num(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


# --- SQL --------------------------------------------------------------------------------------------------

def check_sql(store, exp: StoreState, rep: StoreDrift) -> dict:
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    md = exp.data["_metadata"]
    want = set(exp.data["tables"])
    live_names = set(sa.inspect(store.conn).get_table_names())
    pointers = {ch["pointers"] for ch in exp.data.get("chats", {}).values()}

    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table":
            return name in want
        return True

    ctx = MigrationContext.configure(connection=store.conn, opts={
        "compare_type": store.dialect == "sqlite", "compare_server_default": False, "include_object": include})
    try:
        diffs = compare_metadata(ctx, md)
    finally:
        store.conn.commit()
    for d in _flatten(diffs):
        _sql_diff(rep, d)
    rep.unmanaged += sorted(f"table {n}" for n in live_names
                            if n not in want and n not in pointers and not n.startswith("ragrev_"))
    return {n: n for n in sorted(want & live_names)} | {n: n for n in sorted(pointers & live_names)}


def _flatten(diffs):
    for d in diffs:
        if isinstance(d, list):
            yield from _flatten(d)
        else:
            yield d


def _sql_diff(rep: StoreDrift, d) -> None:
    kind = d[0]
    if kind == "add_table":
        rep.add(f"table {d[1].name}", "table missing", "present", None)
    elif kind == "remove_table":
        return  # unmanaged: listed apart
    elif kind == "add_column":
        rep.add(f"table {d[2]}.{d[3].name}", "column missing", str(d[3].type), None)
    elif kind == "remove_column":
        rep.add(f"table {d[2]}.{d[3].name}", "column added outside ragrev", None, str(d[3].type))
    elif kind == "modify_type":
        rep.add(f"table {d[2]}.{d[3]}", "column type changed", str(d[6]), str(d[5]))
    elif kind == "modify_nullable":
        rep.add(f"table {d[2]}.{d[3]}", "column nullability changed",
                "nullable" if d[6] else "not null", "nullable" if d[5] else "not null")
    elif kind == "add_index":
        rep.add(f"table {d[1].table.name} index {d[1].name}", "index missing",
                [c.name for c in d[1].columns], None)
    elif kind == "remove_index":
        rep.add(f"table {d[1].table.name} index {d[1].name}", "index added outside ragrev", None,
                [c.name for c in d[1].columns])
    else:
        rep.add("sql", f"{kind}", None, repr(d[1:])[:200])


#: store kind -> ``fn(store, expected: StoreState, report) -> {name: physical}`` of the managed objects
CHECKERS: dict[str, Callable] = {"milvus": check_milvus, "mongo": check_mongo, "sql": check_sql}


# --- output ----------------------------------------------------------------------------------------------

def to_text(reports: list[StoreDrift]) -> str:
    lines = []
    for r in reports:
        at = ", ".join(r.revisions) or "base"
        head = f"{r.store} ({r.kind}, at {at}): "
        lines.append(head + (f"{len(r.drift)} drift" if r.drift else "no drift"))
        for d in r.drift:
            lines.append(f"  DRIFT {d['object']}: {d['what']}" + _ea(d))
        for u in r.unmanaged:
            lines.append(f"  unmanaged {u}")
        for n in r.notes:
            lines.append(f"  note: {n}")
    return "\n".join(lines) + "\n"


def _ea(d: dict) -> str:
    if d["expected"] is None and d["actual"] is None:
        return ""
    return f" (expected {_short_or_none(d['expected'])}, found {_short_or_none(d['actual'])})"


def _short_or_none(v) -> str:
    return "nothing" if v is None else _short(v)


def _short(v) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def to_markdown(reports: list[StoreDrift]) -> str:
    total = sum(len(r.drift) for r in reports)
    out = [f"## ragrev drift: {'no drift' if not total else f'{total} finding(s)'}", ""]
    for r in reports:
        out.append(f"### {r.store} ({r.kind}, at {', '.join(r.revisions) or 'base'})")
        out.append("")
        if r.drift:
            out += ["| object | drift | expected | found |", "|---|---|---|---|"]
            for d in r.drift:
                out.append(f"| `{d['object']}` | {d['what']} | {_md(d['expected'])} | {_md(d['actual'])} |")
        else:
            out.append("No drift.")
        if r.unmanaged:
            out += ["", "Unmanaged (not drift): " + ", ".join(f"`{u}`" for u in r.unmanaged)]
        for n in r.notes:
            out.append(f"\n> note: {n}")
        out.append("")
    return "\n".join(out) + "\n"


def _md(v) -> str:
    if v is None:
        return "—"
    return _short(v).replace("|", "\\|")


def to_json(reports: list[StoreDrift]) -> dict:
    return {"drift": has_drift(reports), "stores": [r.as_json() for r in reports]}
