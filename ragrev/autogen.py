"""Autogenerate: a revision from the difference between the declared state of
the stores and the state the head revisions imply.

The declared state is a Python module named in ``ragrev.toml``
(``[ragrev] models = "ragrev_models.py"``, relative to the file) that defines
``stores``, a dict by store name:

- a Milvus store: ``{"collections": {name: {"fields": [...], "indexes": {...},
  "dynamic": False, "description": "", "embedding": {...}}}, "aliases": {alias: collection}}``
  (fields, indexes and embedding as ``create_collection`` takes them);
- a MongoDB store: ``{"collections": {name: {"schema": {...} | None,
  "validation_level": "strict", "validation_action": "error",
  "indexes": [{"keys": [("a", 1)], "name": None, "unique": False, **options}]}}}``;
- a SQL store: a SQLAlchemy ``MetaData``.

A store the module leaves out is not compared. The comparison is against
:func:`ragrev.state.implied_state` at head (no store is touched), or with
``against_live`` against the live stores (:func:`live_state`); for SQL it is
Alembic's own (``alembic.autogenerate.produce_migrations`` against the
implied tables replayed in an in-memory SQLite database, or against the live
database, rendered by Alembic with ``op.<store>.`` as its prefix).

What ragrev can express becomes operations; a vector dimension change
becomes a ``reembed`` (which creates the new collection, copies the rows
through the embedding and switches the alias) followed by a ``check_recall``
gate, with a TODO for the embedding function the file will not import
without. Whatever cannot be expressed is written as a ``# TODO`` comment,
never dropped.
"""
from __future__ import annotations

import importlib.util
import json
import pprint
import re
import sys
from pathlib import Path

from ragrev.config import Config
from ragrev.errors import BadInput, ConfigError


class Diff:
    """The operations (as code lines) and TODOs for one store."""

    def __init__(self, store: str):
        self.store = store
        self.lines: list[str] = []     # upgrade() body lines (operations and comments)
        self.preamble: list[str] = []  # module-level lines (embedding TODOs)
        self.changes: list[str] = []   # one phrase per difference, for `ragrev check`

    def op(self, phrase: str, code: str) -> None:
        self.changes.append(phrase)
        self.lines.append(code)

    def todo(self, phrase: str, *lines: str) -> None:
        self.changes.append(phrase)
        self.lines.append(f"# TODO: {phrase}")
        self.lines += [f"# {ln}" for ln in lines]


# --- the declared state -------------------------------------------------------------------------

def models_path(config: Config) -> Path | None:
    name = config.options.get("models")
    if not name:
        return None
    if not isinstance(name, str):
        raise ConfigError(f"{config.path}: [ragrev] models must be a path to a Python file")
    return (config.directory / name).resolve()


def load_declared(config: Config) -> dict:
    path = models_path(config)
    if path is None:
        raise ConfigError(f"{config.path}: no declared state; add models = \"ragrev_models.py\" under [ragrev]")
    if not path.is_file():
        raise ConfigError(f"{config.path}: [ragrev] models: no file {path}")
    spec = importlib.util.spec_from_file_location("ragrev_models_" + re.sub(r"\W", "_", path.stem), path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - a broken models file is bad input, one line
        raise ConfigError(f"{path}: fails to import: {type(e).__name__}: {e}") from None
    finally:
        sys.path.remove(str(path.parent))
    stores = getattr(module, "stores", None)
    if not isinstance(stores, dict):
        raise ConfigError(f"{path}: define stores = {{store name: declared state}}")
    for name in stores:
        if name not in config.stores:
            raise ConfigError(f"{path}: unknown store {name!r}; the configuration defines: {', '.join(config.stores)}")
    return stores


# --- the comparison ----------------------------------------------------------------------------------

def compare(config: Config, scripts=None, against_live: bool = False) -> list[Diff]:
    """The differences between the declared state and head (or, with
    ``against_live``, the live stores), per declared store."""
    from ragrev.state import implied_state

    declared = load_declared(config)
    implied = implied_state(config, None, list(declared), scripts=scripts)
    out = []
    opened = []
    try:
        for name, decl in declared.items():
            kind = config.store(name).kind
            have = implied[name]
            if against_live:
                from ragrev.stores import open_store

                store = open_store(config.store(name))
                store.connect()
                opened.append(store)
                have = live_state(store, have)
            diff = Diff(name)
            COMPARERS[kind](diff, decl, have)
            out.append(diff)
    finally:
        for store in opened:
            store.close()
    return out


def live_state(store, implied):
    """A live store's structure in the form of :func:`ragrev.state.implied_state`'s
    data (what ``--against-live`` compares with). Rebuilt generations
    (``<alias>_v<n>`` behind the alias ``<alias>``) are named as the state names
    them; chat pointer collections the history made are left out."""
    from ragrev.state import StoreState

    pointers = {ch["pointers"] for ch in implied.data.get("chats", {}).values()}
    data = LIVE_READERS[store.kind](store, pointers)
    data["chats"] = implied.data.get("chats", {})
    return StoreState(store.name, store.kind, implied.revisions, data, [])


def _live_milvus(store, pointers):
    from ragrev.state import milvus_collection_json

    names = store.user_collections()
    aliases = {a: store.alias_target(a) for a in store.c.list_aliases().get("aliases", [])}
    rename = {}
    for a, t in aliases.items():
        m = re.fullmatch(re.escape(a) + r"_v(\d+)", t or "")
        if m:
            rename[t] = f"{a}~{m.group(1)}"
    cols = {rename.get(n, n): milvus_collection_json(store.collection_state(n)) for n in names}
    return {"collections": cols, "aliases": {a: rename.get(t, t) for a, t in aliases.items()}}


def _live_mongo(store, pointers):
    cols = {}
    for info in store.db.list_collections():
        name = info["name"]
        if name.startswith(("ragrev_", "system.")) or name in pointers:
            continue
        opts = dict(info.get("options") or {})
        indexes = {}
        for ix in store.db[name].list_indexes():
            if ix["name"] == "_id_":
                continue
            ix = dict(ix)
            key = [[k, int(v) if isinstance(v, float) and v.is_integer() else v] for k, v in dict(ix.pop("key")).items()]
            iname = ix.pop("name")
            unique = bool(ix.pop("unique", False))
            for drop in ("v", "ns", "background"):
                ix.pop(drop, None)
            indexes[iname] = {"key": key, "unique": unique, "options": ix}
        cols[name] = {"validator": opts.get("validator") or None, "validation_level": opts.get("validationLevel"),
                      "validation_action": opts.get("validationAction"), "indexes": indexes}
    return {"collections": cols}


def _live_sql(store, pointers):
    return {"tables": {}, "_connection": store.conn, "_skip": set(pointers)}


LIVE_READERS = {"milvus": _live_milvus, "mongo": _live_mongo, "sql": _live_sql}


def _fail(store, msg):
    return BadInput(f"declared state of store {store!r}: {msg}")


# Milvus ------------------------------------------------------------------------------------------

def _declared_milvus(store: str, name: str, spec: dict):
    from ragrev.ops.vector import CreateCollection
    from ragrev.state import milvus_collection_json

    if not isinstance(spec, dict) or "fields" not in spec:
        raise _fail(store, f"collection {name!r}: give a dict with fields= (and indexes=, embedding=...)")
    extra = set(spec) - {"fields", "indexes", "dynamic", "description", "embedding"}
    if extra:
        raise _fail(store, f"collection {name!r}: unknown key(s) {', '.join(sorted(extra))}")
    op = CreateCollection(name, spec["fields"], spec.get("indexes"), bool(spec.get("dynamic", False)),
                          spec.get("description", ""), spec.get("embedding"))
    op.store = store
    op.validate()
    return op, milvus_collection_json(op.state())


def compare_milvus(diff: Diff, decl: dict, implied) -> None:
    from ragrev.ops.vector_schema import DENSE_TYPES, VECTOR_TYPES

    s = diff.store
    if not isinstance(decl, dict):
        raise _fail(s, "a dict with collections= and aliases=")
    cols, aliases = implied.data["collections"], implied.data["aliases"]
    # what the user sees: a rebuilt collection under the alias that names it
    def logical(n):
        return n.rsplit("~", 1)[0]

    visible = {}
    for name, c in cols.items():
        if "~" in name:
            if aliases.get(logical(name)) != name:
                continue  # an old generation kept by the history: nothing to declare
            visible[logical(name)] = c
        else:
            visible[name] = c
    implied_aliases = {a: logical(t) for a, t in aliases.items() if a != logical(t)}
    want_aliases = dict(decl.get("aliases") or {})
    for name, spec in (decl.get("collections") or {}).items():
        op, want = _declared_milvus(s, name, spec)
        have = visible.get(name)
        if have is None:
            args = [repr(name), "fields=" + _py(op.fields, 8)]
            if op.indexes:
                args.append("indexes=" + _py(op.indexes, 8))
            if op.dynamic:
                args.append("dynamic=True")
            if op.description:
                args.append(f"description={op.description!r}")
            if op.embedding:
                args.append("embedding=" + _py(op.embedding, 8))
            diff.op(f"add collection {name}", f"op.{s}.create_collection(" + ", ".join(args) + ")")
            continue
        _compare_milvus_collection(diff, name, want, have, DENSE_TYPES, VECTOR_TYPES)
    for name in visible:
        if name not in (decl.get("collections") or {}) and name not in want_aliases:
            diff.op(f"remove collection {name}", f"op.{s}.drop_collection({name!r})")
    for alias, target in want_aliases.items():
        have = implied_aliases.get(alias)
        if have is None:
            diff.op(f"add alias {alias}", f"op.{s}.create_alias({target!r}, {alias!r})")
        elif have != target:
            diff.changes.append(f"point alias {alias} at {target}")
            diff.lines += [f"# TODO: gate the switch of {alias!r}, e.g. op.{s}.expect_count({target!r}, same_as={alias!r}) "
                           f"or op.{s}.check_recall({target!r}, ...)",
                           f"op.{s}.alter_alias({target!r}, {alias!r})"]
    for alias, target in implied_aliases.items():
        if alias not in want_aliases:
            diff.op(f"remove alias {alias}", f"op.{s}.drop_alias({alias!r})")


_ALTERABLE = ("type", "max_length", "nullable", "default", "element_type", "max_capacity")


def _compare_milvus_collection(diff: Diff, name: str, want: dict, have: dict, dense, vector) -> None:
    s = diff.store
    wf, hf = want["fields"], have["fields"]
    reembedded = None
    for fname, f in wf.items():
        g = hf.get(fname)
        if g is None:
            if f["type"] in vector:
                diff.todo(f"add vector field {name}.{fname}",
                          f"op.{s}.add_field({name!r}, {fname!r}, {f['type']!r}, dim={f['dim']}, fill=<row -> vector>)")
                continue
            kw = {k: f[k] for k in ("max_length", "element_type", "max_capacity") if f.get(k) is not None}
            if f.get("default") is not None:
                kw["default"] = f["default"]
            kw["nullable"] = f["nullable"]
            diff.op(f"add field {name}.{fname}", f"op.{s}.add_field({name!r}, {fname!r}, {f['type']!r}"
                    + "".join(f", {k}={v!r}" for k, v in kw.items()) + ")")
            continue
        if f["type"] in vector or g["type"] in vector:
            if (f["type"], f["dim"]) != (g["type"], g["dim"]):
                if f["type"] in dense and g["type"] in dense and f["type"] == g["type"]:
                    reembedded = (fname, f, g)
                else:
                    diff.todo(f"vector field {name}.{fname} changes from {g['type']}({g['dim']}) to "
                              f"{f['type']}({f['dim']})", "ragrev has no operation for this change; write it by hand")
            continue
        if f["primary"] != g["primary"]:
            diff.todo(f"primary key of {name} changes ({fname})", "copy into a new collection and switch an alias")
            continue
        changes = {k: f.get(k) for k in _ALTERABLE if f.get(k) != g.get(k)}
        if changes:
            diff.op(f"alter field {name}.{fname} ({', '.join(changes)})", f"op.{s}.alter_field({name!r}, {fname!r}"
                    + "".join(f", {k}={v!r}" for k, v in changes.items()) + ")")
    for fname, g in hf.items():
        if fname not in wf:
            if g["type"] in vector and reembedded is None:
                diff.op(f"drop vector field {name}.{fname}", f"op.{s}.drop_field({name!r}, {fname!r})")
            elif g["type"] not in vector:
                diff.op(f"drop field {name}.{fname}", f"op.{s}.drop_field({name!r}, {fname!r})")
    if bool(want["dynamic"]) != bool(have["dynamic"]):
        diff.todo(f"dynamic field of {name}: {have['dynamic']} -> {want['dynamic']}",
                  "Milvus cannot switch the dynamic field of a collection: copy into a new one")
    if reembedded:
        _reembed(diff, name, want, have, *reembedded)
        return
    for fname in sorted(set(want["indexes"]) | set(have["indexes"])):
        wi, hi = want["indexes"].get(fname), have["indexes"].get(fname)
        if wi == hi or fname not in wf:
            continue
        if hi is not None:
            diff.op(f"drop index {name}.{fname}", f"op.{s}.drop_index({name!r}, {fname!r})")
        if wi is not None:
            diff.op(f"create index {name}.{fname} ({wi['index_type']}/{wi['metric_type']})",
                    f"op.{s}.create_index({name!r}, {fname!r}, index_type={wi['index_type']!r}, "
                    f"metric_type={wi['metric_type']!r}" + (f", params={wi['params']!r}" if wi["params"] else "") + ")")
            if wf[fname]["type"] in vector:
                diff.lines += ["# the gate of the new vector index (TODO: check the thresholds)",
                               f"op.{s}.check_recall({name!r}, field={fname!r}, k=10, queries=100, min_recall=0.95)"]
    we, he = want.get("embedding"), have.get("embedding")
    if we and any(we.get(k) is not None and we.get(k) != (he or {}).get(k) for k in we):
        diff.todo(f"embedding contract of {name}: {json.dumps(he)} -> {json.dumps(we)}",
                  "vectors of another model need a reembed(); the contract is recorded by create_collection/reembed")
    if (want.get("description") or "") != (have.get("description") or ""):
        diff.todo(f"description of {name} changes to {want.get('description')!r}",
                  "ragrev has no operation that changes a collection's description")


def _reembed(diff: Diff, name: str, want: dict, have: dict, fname: str, f: dict, g: dict) -> None:
    s = diff.store
    texts = [n for n, x in want["fields"].items() if x["type"] == "VARCHAR"]
    text = next((n for n in texts if n in ("text", "content", "chunk", "passage", "body")), texts[0] if texts else None)
    var = "EMBED_" + re.sub(r"\W", "_", name).upper()
    model = (want.get("embedding") or {}).get("model") or "the new model"
    diff.preamble += [f"# TODO: the embedding function of {name}.{fname} ({model}, {f['dim']} dimensions):",
                      "# a callable texts -> vectors, e.g. ragrev.embeddings.hashing(dim=...) or your model's",
                      f"{var} = None"]
    ix = want["indexes"].get(fname)
    we = want.get("embedding") or {}
    kw = "".join(f", {k}={we[k]!r}" for k in ("model", "version", "chunker") if we.get(k))
    diff.changes.append(f"re-embed {name}.{fname}: {g['dim']} -> {f['dim']} dimensions")
    diff.lines += [
        f"# {name}.{fname}: {g['dim']} -> {f['dim']} dimensions. reembed creates the new collection, copies",
        "# every row through the embedding and points the alias at it; check_recall is the gate.",
        f"# TODO: check text_field= ({'guessed' if text else 'no VARCHAR field found'}) and the gate's thresholds.",
        f"op.{s}.reembed({name!r}, text_field={text!r}, embed={var}, dim={f['dim']}"
        + (f", index={ix!r}" if ix else "") + kw + ")",
        f"op.{s}.check_recall({name!r}, k=10, queries=100, min_recall=0.95)",
    ]
    for other in sorted(set(want["indexes"]) | set(have["indexes"])):
        if other != fname and want["indexes"].get(other) != have["indexes"].get(other):
            diff.todo(f"index of {name}.{other} also changes", "add create_index/drop_index after the reembed")


# MongoDB --------------------------------------------------------------------------------------------

def compare_mongo(diff: Diff, decl: dict, implied) -> None:
    from ragrev.ops import document as m

    s = diff.store
    if not isinstance(decl, dict):
        raise _fail(s, "a dict with collections=")
    have_all = implied.data["collections"]
    want_all = decl.get("collections") or {}
    for name, spec in want_all.items():
        spec = dict(spec or {})
        extra = set(spec) - {"schema", "validation_level", "validation_action", "indexes"}
        if extra:
            raise _fail(s, f"collection {name!r}: unknown key(s) {', '.join(sorted(extra))}")
        schema = spec.get("schema")
        level, action = spec.get("validation_level", "strict"), spec.get("validation_action", "error")
        cop = m.CreateCollection(name, schema, level, action)
        cop.store = s
        cop.validate()
        indexes = []
        for ix in spec.get("indexes") or []:
            ix = dict(ix)
            iop = m.CreateIndex(name, ix.pop("keys"), ix.pop("name", None), ix.pop("unique", False), **ix)
            iop.validate()
            indexes.append(iop)
        have = have_all.get(name)
        if have is None:
            args = [repr(name)] + ([f"schema={_py(schema, 8)}"] if schema is not None else [])
            if schema is not None and level != "strict":
                args.append(f"validation_level={level!r}")
            if schema is not None and action != "error":
                args.append(f"validation_action={action!r}")
            diff.op(f"add collection {name}", f"op.{s}.create_collection({', '.join(args)})")
            for iop in indexes:
                diff.op(f"create index {name}.{iop.index_name}", _mongo_index(s, iop))
            continue
        if have.get("unknown"):
            diff.todo(f"collection {name} came back from the trash; its validator and indexes are not known "
                      "to the history", "compare them by hand")
            continue
        want_v = None if schema is None else {"$jsonSchema": cop.mongo_schema}
        if _canon(want_v) != _canon(have["validator"]) or (schema is not None and (
                level != (have["validation_level"] or "strict") or action != (have["validation_action"] or "error"))):
            if schema is None:
                diff.op(f"remove the validator of {name}", f"op.{s}.set_validator({name!r}, None)")
            else:
                diff.op(f"set the schema of {name}", f"op.{s}.set_schema({name!r}, {_py(schema, 8)}"
                        + (f", validation_level={level!r}" if level != "strict" else "")
                        + (f", validation_action={action!r}" if action != "error" else "") + ")")
        want_ix = {i.index_name: i for i in indexes}
        for iname, iop in want_ix.items():
            h = have["indexes"].get(iname)
            same = h is not None and h["key"] == [list(k) for k in iop.keys] and h["unique"] == bool(iop.unique) \
                and _canon(h["options"]) == _canon(iop.options or {})
            if same:
                continue
            if h is not None:
                diff.op(f"drop index {name}.{iname}", f"op.{s}.drop_index({name!r}, {iname!r})")
            diff.op(f"create index {name}.{iname}", _mongo_index(s, iop))
        for iname in have["indexes"]:
            if iname not in want_ix:
                diff.op(f"drop index {name}.{iname}", f"op.{s}.drop_index({name!r}, {iname!r})")
    for name in have_all:
        if name not in want_all:
            diff.op(f"remove collection {name}", f"op.{s}.drop_collection({name!r})")


def _mongo_index(s: str, iop) -> str:
    keys = [tuple(k) for k in iop.keys]
    return (f"op.{s}.create_index({iop.collection!r}, {keys!r}, name={iop.index_name!r}"
            + (", unique=True" if iop.unique else "")
            + "".join(f", {k}={v!r}" for k, v in (iop.options or {}).items()) + ")")


def _canon(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


# SQL -------------------------------------------------------------------------------------------------

def compare_sql(diff: Diff, decl, implied) -> None:
    import sqlalchemy as sa
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    s = diff.store
    if not isinstance(decl, sa.MetaData):
        raise _fail(s, "a SQL store is declared by a sqlalchemy.MetaData")
    skip = implied.data.get("_skip", set())

    def include(obj, name, type_, reflected, compare_to):
        return not (name or "").startswith("ragrev_") and not (type_ == "table" and name in skip)

    def diff_on(conn):
        ctx = MigrationContext.configure(connection=conn, opts={"compare_type": True, "include_object": include})
        ops = produce_migrations(ctx, decl).upgrade_ops
        code = None if ops.is_empty() else render_python_code(
            ops, alembic_module_prefix=f"op.{s}.", sqlalchemy_module_prefix="sa.", migration_context=ctx)
        return ops, code

    live = implied.data.get("_connection")
    if live is not None:
        try:
            ops, code = diff_on(live)
        finally:
            live.commit()
    else:
        engine = sa.create_engine("sqlite://")
        try:
            with engine.connect() as conn:
                implied.data["_metadata"].create_all(conn)
                ops, code = diff_on(conn)
        finally:
            engine.dispose()
    if code is None:
        return
    for d in ops.as_diffs():
        diff.changes.append(_sql_phrase(d))
    diff.lines += [ln.strip() if not ln.startswith("    ") else ln[4:] for ln in code.splitlines()
                   if ln.strip() and not ln.strip().startswith("# ###")]


def _sql_phrase(d) -> str:
    if isinstance(d, list):
        return "; ".join(_sql_phrase(x) for x in d)
    kind = d[0]
    target = getattr(d[1], "name", None) or (d[2] if len(d) > 2 else "")
    if kind in ("add_column", "remove_column"):
        return f"{kind} {d[2]}.{d[3].name}"
    if kind.startswith("modify_"):
        return f"{kind} {d[2]}.{d[3]}"
    return f"{kind} {target}"


COMPARERS = {"milvus": compare_milvus, "mongo": compare_mongo, "sql": compare_sql}


def _py(value, indent: int) -> str:
    text = pprint.pformat(value, width=100, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


# --- writing the revision ---------------------------------------------------------------------------------

def write_revision(config: Config, message: str, head=None, branch_label=None, depends_on=(), rev_id=None,
                   against_live: bool = False) -> tuple:
    """Write the autogenerated revision; (path, diffs). Nothing is written when
    the declared state and head (or the live stores) agree (:class:`BadInput`)."""
    from ragrev import commands
    from ragrev.script import ScriptDirectory

    diffs = compare(config, ScriptDirectory(config.script_location), against_live)
    if not any(d.changes for d in diffs):
        raise NoChanges(f"the declared state and {'the live stores' if against_live else 'head'} agree: "
                        "no revision written")
    path = commands.revision(config, message, "generic", head, branch_label, depends_on, rev_id)
    text = path.read_text(encoding="utf-8")
    body = []
    preamble = []
    for d in diffs:
        if not d.changes:
            continue
        body.append(f"# --- {d.store} ---")
        body += d.lines
        preamble += d.preamble
    start = text.index("def upgrade(op):")
    end = text.index("    pass\n", start) + len("    pass\n")
    new = ("\n".join(preamble) + "\n\n\n" if preamble else "") + "def upgrade(op):\n" + \
        "\n".join("    " + ln if ln else "" for ln in body) + "\n"
    text = text[:start] + new + text[end:]
    text = text.replace('"""\nimport sqlalchemy', '\nGenerated by ragrev revision --autogenerate: review every operation and TODO.\n"""\nimport sqlalchemy', 1)
    path.write_text(text, encoding="utf-8")
    commands._after_write(config)
    return path, diffs


class NoChanges(BadInput):
    pass


def check_text(diffs) -> str:
    lines = []
    for d in diffs:
        for c in d.changes:
            lines.append(f"{d.store}: {c}")
    return "\n".join(lines)


__all__ = ["compare", "write_revision", "load_declared", "declared_findings", "Diff", "NoChanges"]


def declared_findings(config: Config) -> list[dict]:
    """``ragrev check``: one finding per difference between the declared state
    and head (none when the project declares no state)."""
    if models_path(config) is None:
        return []
    out = []
    for d in compare(config):
        for c in d.changes:
            out.append({"rule": "declared-state", "severity": "error", "message": f"declared state differs from head: {c}",
                        "revision": None, "path": str(models_path(config)), "line": None, "store": d.store,
                        "fix": "run 'ragrev revision --autogenerate -m ...', review it, then upgrade"})
    return out
