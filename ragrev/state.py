"""The state a revision history implies, per store, without touching a store.

Every operation already knows its effect: the vector store operations
simulate themselves on a :class:`~ragrev.ops.vector_schema.SchemaState` (what
``preflight`` runs), the document store operations are walked here over a
small model of collections, validators and indexes, and the SQL operations
are replayed, through Alembic, on an in-memory SQLite database that is then
reflected. Starting from an empty store and applying, in graph order, every
revision up to a target gives the state that target implies.

:func:`implied_state` returns, per store, a :class:`StoreState` whose
``data`` is plain JSON:

- Milvus: ``{"collections": {name: {"fields", "dynamic", "indexes",
  "description", "embedding", "rebuilt_from"}}, "aliases": {alias: target}}``.
  A collection a rebuild (``add_field``, ``reembed``...) creates has no name
  until it runs (the store picks ``<name>_v<n>``): it is keyed
  ``<name>~<n>`` and the alias ``<name>`` points at it.
- MongoDB: ``{"collections": {name: {"validator", "validation_level",
  "validation_action", "indexes": {name: {"key", "unique", "options"}}}}}``.
- SQL: ``{"tables": {name: {"columns": {name: {"type", "nullable"}},
  "primary_key", "indexes"}}}``.
- every kind: ``"chats": {collection: {"archive_roots": [...], "pointers": name}}``.

``notes`` lists what could not be derived (an ``execute`` SQLite could not
run, a collection restored from a trash whose content the history does not
tell): the state is exact about everything else.

Per-family hooks are plain functions in :data:`SIMULATORS` (family or kind -> function of
the operations and the store config), so an adapter package can add its own.
"""
from __future__ import annotations

import copy
import importlib
import dataclasses
from typing import Callable

from ragrev.config import Config, StoreConfig
from ragrev.errors import ConfigError, OperationError
from ragrev.graph import RevisionMap

#: operation names that change no structure: not simulated (their rows may be
#: callables reading files or services, which computing a state must not call)
_DATA_ONLY = {"insert", "upsert", "delete", "restore_rows", "expect_count", "check_recall", "insert_many",
              "update_many", "transform", "delete_inserted", "validate_all", "check_references"}


@dataclasses.dataclass
class StoreState:
    """What the revisions applied to a store imply about it."""

    store: str
    kind: str
    revisions: list            # the revisions applied, in order
    data: dict
    notes: list = dataclasses.field(default_factory=list)

    def as_json(self) -> dict:
        return {"store": self.store, "kind": self.kind, "revisions": list(self.revisions),
                "state": {k: v for k, v in self.data.items() if not k.startswith("_")}, "notes": list(self.notes)}


# --- which revisions -------------------------------------------------------------------------

def revisions_up_to(graph: RevisionMap, targets) -> list[str]:
    """The revisions ``targets`` (ids) imply, oldest first (graph order)."""
    wanted = graph.ancestors(list(targets)) | set(targets)
    return [r for r in graph.topological() if r in wanted]


def resolve_target(graph: RevisionMap, target: str | None) -> tuple[str, ...]:
    """``None``/``"heads"``/``"head"``: every head; else one revision (id, prefix, label)."""
    if target in (None, "heads", "head"):
        return tuple(graph.heads)
    if target == "base":
        return ()
    return graph.resolve(target)


# --- the state -----------------------------------------------------------------------------------

def implied_state(config: Config, target: str | None = None, store_names=None, scripts=None,
                  heads_by_store: dict | None = None) -> dict[str, StoreState]:
    """Per store, the state the revisions up to ``target`` (default: head)
    imply; with ``heads_by_store`` ({store: heads}), each store's own heads
    instead (what ``drift`` compares the live store with)."""
    from ragrev.plan import RevisionPlan
    from ragrev.script import ScriptDirectory

    scripts = scripts or ScriptDirectory(config.script_location)
    graph = scripts.revision_map
    names = list(store_names) if store_names else list(config.stores)
    for n in names:
        config.store(n)  # unknown -> ConfigError
    default_revs = None
    plans: dict = {}

    def plan(rev):
        if rev not in plans:
            plans[rev] = RevisionPlan(scripts.script(rev), config.stores)
        return plans[rev]

    out = {}
    for name in names:
        sc = config.store(name)
        if heads_by_store is not None:
            revs = revisions_up_to(graph, heads_by_store.get(name, ()))
        else:
            if default_revs is None:
                default_revs = revisions_up_to(graph, resolve_target(graph, target))
            revs = default_revs
        ops = [o for r in revs for o in plan(r).up_for(name)]
        sim = SIMULATORS.get(sc.kind) or SIMULATORS.get(_vocabulary(sc.kind))
        if sim is None:
            raise ConfigError(f"store {name!r}: no state model for kind {sc.kind!r}")
        data, notes = sim(ops, sc)
        data["chats"] = chat_state(ops)
        data["references"] = [o.params() for o in ops if getattr(o, "name", "") == "check_references"]
        out[name] = StoreState(name, sc.kind, revs, data, notes)
    return out


def _note(op, e: Exception) -> str:
    return f"{op.where()}{op.describe()}: {str(e).split(': ', 1)[-1] if isinstance(e, OperationError) else e}"


# --- chat archives (any kind) ---------------------------------------------------------------------

def chat_state(ops) -> dict:
    """Chat collections the history archives from: their archive roots and pointer collections."""
    chats: dict = {}
    for op in ops:
        if getattr(op, "kind", "") != "chat":
            continue
        entry = chats.setdefault(op.collection, {"archive_roots": [], "pointers": None})
        entry["pointers"] = op.keys.get("pointers") or f"{op.collection}_archive"
        root = getattr(op, "to", None)
        if op.name == "archive" and root and root not in entry["archive_roots"]:
            entry["archive_roots"].append(root)
    return chats


# --- Milvus -----------------------------------------------------------------------------------------

def _vocabulary(kind: str) -> str:
    """The family of a store kind (``vector``, ``document``, ``sql``)."""
    from ragrev.ops import family_of

    return family_of(kind)


def milvus_caps(sc: StoreConfig):
    from ragrev.ops.vector_schema import MILVUS, MILVUS_LITE

    from ragrev.drivers import for_kind

    ref = (for_kind(sc.kind).capabilities if for_kind(sc.kind) else {}).get("schema_caps")
    if ref:  # a driver of the vector family names its Capabilities as "module:NAME"
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)
    return MILVUS_LITE if sc.url.startswith("milvus-lite") else MILVUS


def milvus_collection_json(cs) -> dict:
    return {"fields": copy.deepcopy(cs.fields), "dynamic": cs.dynamic, "indexes": copy.deepcopy(cs.indexes),
            "description": cs.description, "embedding": copy.deepcopy(getattr(cs, "embedding", None))}


def simulate_milvus(ops, sc: StoreConfig):
    from ragrev.ops.vector_schema import MilvusOp, SchemaState

    state = SchemaState(lambda name: None, milvus_caps(sc), probe=False)
    notes = []
    for op in ops:
        if not isinstance(op, MilvusOp) or op.name in _DATA_ONLY:
            continue
        try:
            op.simulate(state)
        except OperationError as e:
            notes.append(_note(op, e))
    collections, aliases = {}, {}
    for name, entry in sorted(state._entries.items()):
        if entry is None:
            continue
        if entry[0] == "alias":
            aliases[name] = entry[1]
        else:
            collections[name] = milvus_collection_json(entry[1])
    return {"collections": collections, "aliases": aliases}, notes


# --- MongoDB ------------------------------------------------------------------------------------------

def simulate_mongo(ops, sc: StoreConfig):
    from ragrev.ops import document as m

    cols: dict = {}
    notes = []

    def need(op, c):
        if c not in cols:
            notes.append(f"{op.where()}{op.describe()}: no collection {c!r} at this point of the history")
            cols[c] = _mongo_unknown()
        return cols[c]

    for op in ops:
        if op.kind != "document" or op.name in _DATA_ONLY:
            continue
        c = getattr(op, "collection", None)
        if isinstance(op, m.CreateCollection):
            schema = getattr(op, "mongo_schema", None)
            cols[c] = {"validator": None if schema is None else {"$jsonSchema": copy.deepcopy(schema)},
                       "validation_level": op.validation_level if schema is not None else None,
                       "validation_action": op.validation_action if schema is not None else None,
                       "indexes": {}}
        elif isinstance(op, m.DropCollection):
            cols.pop(c, None)
        elif isinstance(op, m.RestoreCollection):
            cols[c] = _mongo_unknown()
            notes.append(f"{op.where()}{op.describe()}: a collection back from the trash; its validator and "
                         "indexes are not checked")
        elif isinstance(op, m.RenameCollection):
            cols[op.new_name] = cols.pop(c, None) or _mongo_unknown()
        elif isinstance(op, m.SetSchema):
            e = need(op, c)
            e["validator"] = {"$jsonSchema": copy.deepcopy(op.mongo_schema)}
            e["validation_level"] = op.validation_level or e["validation_level"] or "strict"
            e["validation_action"] = op.validation_action or e["validation_action"] or "error"
        elif isinstance(op, m.SetValidator):
            e = need(op, c)
            v = op.validator
            if op.ejson and v is not None:
                from bson import json_util
                import json

                v = json_util.loads(json.dumps(v))
            e["validator"] = copy.deepcopy(v) or None
            e["validation_level"] = op.validation_level or e["validation_level"] or "strict"
            e["validation_action"] = op.validation_action or e["validation_action"] or "error"
        elif isinstance(op, m.CreateIndex):
            need(op, c)["indexes"][op.index_name] = {"key": [list(k) for k in op.keys], "unique": bool(op.unique),
                                                     "options": copy.deepcopy(op.options or {})}
        elif isinstance(op, m.DropIndex):
            have = need(op, c)["indexes"]
            have.pop(op.index_name if op.index_name is not None else next(
                (n for n, ix in have.items() if [k[0] for k in ix["key"]] == [op.field]), None), None)
        elif c is not None:
            need(op, c)
    return {"collections": dict(sorted(cols.items()))}, notes


def _mongo_unknown() -> dict:
    return {"validator": None, "validation_level": None, "validation_action": None, "indexes": {}, "unknown": True}


# --- SQL ------------------------------------------------------------------------------------------------

def sql_metadata(ops):
    """Replay the SQL operations on an in-memory SQLite database; its reflected
    ``MetaData`` and the notes on operations that could not be replayed."""
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.operations import ops as aops
    from alembic.runtime.migration import MigrationContext

    from ragrev.ops.sql import RestoreColumn, SqlBatch, SqlOp

    engine = sa.create_engine("sqlite://")
    notes = []
    with engine.begin() as conn:
        ops_ = Operations(MigrationContext.configure(connection=conn))
        for op in ops:
            try:
                with conn.begin_nested():
                    if isinstance(op, SqlOp):
                        mop = op.mop
                        if isinstance(mop, aops.BulkInsertOp):
                            continue
                        if isinstance(mop, aops.DropColumnOp):
                            with ops_.batch_alter_table(mop.table_name, schema=mop.schema) as b:
                                b.drop_column(mop.column_name)
                        elif isinstance(mop, (aops.AlterColumnOp, aops.CreateForeignKeyOp, aops.DropConstraintOp,
                                              aops.CreateUniqueConstraintOp, aops.CreateCheckConstraintOp,
                                              aops.CreatePrimaryKeyOp)):
                            with ops_.batch_alter_table(mop.table_name, schema=getattr(mop, "schema", None)) as b:
                                b.invoke(mop)
                        else:
                            ops_.invoke(mop)
                    elif isinstance(op, SqlBatch):
                        with ops_.batch_alter_table(op.table_name, schema=op.schema, **op.kwargs) as b:
                            for mop in op.ops:
                                b.invoke(mop)
                    elif isinstance(op, RestoreColumn):
                        from ragrev.ops.sql import replay

                        for r in replay(op.column_code):
                            ops_.invoke(r.mop)
            except Exception as e:  # noqa: BLE001 - any failure becomes a note, never a crash
                notes.append(f"{op.where()}{op.describe()}: not replayed on SQLite "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        md = sa.MetaData()
        md.reflect(conn)
    engine.dispose()
    return md, notes


def simulate_sql(ops, sc: StoreConfig):
    md, notes = sql_metadata(ops)
    tables = {}
    for t in sorted(md.tables.values(), key=lambda t: t.name):
        tables[t.name] = {
            "columns": {c.name: {"type": str(c.type), "nullable": bool(c.nullable)} for c in t.columns},
            "primary_key": [c.name for c in t.primary_key.columns],
            "indexes": {ix.name: {"columns": [c.name for c in ix.columns], "unique": bool(ix.unique)}
                        for ix in sorted(t.indexes, key=lambda i: i.name or "")},
        }
    return {"tables": tables, "_metadata": md}, notes


#: store kind or family -> ``fn(ops, store_config) -> (data, notes)``
SIMULATORS: dict[str, Callable] = {"vector": simulate_milvus, "document": simulate_mongo, "sql": simulate_sql}


# --- text ------------------------------------------------------------------------------------------------

def to_text(states: dict[str, StoreState]) -> str:
    lines = []
    for st in states.values():
        at = st.revisions[-1] if st.revisions else "base"
        lines.append(f"{st.store} ({st.kind}) after {len(st.revisions)} revision(s), last {at}:")
        d = st.data
        if _vocabulary(st.kind) == "vector":
            for name, c in d["collections"].items():
                fields = ", ".join(f"{f['name']} {f['type']}" + (f"({f['dim'] or f['max_length']})"
                                   if f['dim'] or f['max_length'] else "") + (" pk" if f["primary"] else "")
                                   for f in c["fields"].values())
                label = name if "~" not in name else \
                    f"{name} (made by a rebuild; the store names it {name.rsplit('~', 1)[0]}_v<n>)"
                lines.append(f"  collection {label}: {fields}" + (" +dynamic" if c["dynamic"] else ""))
                for fname, ix in c["indexes"].items():
                    lines.append(f"    index {fname}: {ix['index_type']}/{ix['metric_type']} {ix['params'] or ''}".rstrip())
                if c.get("embedding"):
                    lines.append(f"    embedding: {_contract_text(c['embedding'])}")
            for alias, target in d["aliases"].items():
                lines.append(f"  alias {alias} -> {target}")
        elif _vocabulary(st.kind) == "document":
            for name, c in d["collections"].items():
                v = "no validator" if not c["validator"] else \
                    f"validator ({c['validation_level']}/{c['validation_action']})"
                lines.append(f"  collection {name}: {v}" + (" [unknown]" if c.get("unknown") else ""))
                for iname, ix in c["indexes"].items():
                    lines.append(f"    index {iname}: {ix['key']}" + (" unique" if ix["unique"] else ""))
        elif st.kind == "sql":
            for name, t in d["tables"].items():
                cols = ", ".join(f"{n} {c['type']}" + ("" if c["nullable"] else " not null")
                                 for n, c in t["columns"].items())
                lines.append(f"  table {name}: {cols}")
                for iname, ix in t["indexes"].items():
                    lines.append(f"    index {iname}: {', '.join(ix['columns'])}" + (" unique" if ix["unique"] else ""))
        for cname, ch in d.get("chats", {}).items():
            lines.append(f"  chats {cname}: pointers {ch['pointers']}, archive roots: "
                         f"{', '.join(ch['archive_roots']) or 'none'}")
        for n in st.notes:
            lines.append(f"  note: {n}")
    return "\n".join(lines) + ("\n" if lines else "")


def _contract_text(e: dict) -> str:
    parts = [f"{k}={e[k]}" for k in ("field", "model", "version", "chunker") if e.get(k)]
    return ", ".join(parts)
