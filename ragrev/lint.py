"""Lint of revisions: what a reviewer should look at before ``upgrade head``.

Rules work on the recorded plan of each revision (:class:`ragrev.plan.RevisionPlan`),
so nothing touches a store. Each rule has an id, a severity and a one-line fix:

- ``destructive-no-way-back`` (error): a step destroys or overwrites data and
  has no inverse: raw ``DELETE``/``UPDATE``/``DROP`` SQL, a data step such as
  ``update_many``/``transform`` without ``inverse=``.
- ``no-inverse`` (error): a step has no inverse and the revision has no (or
  an empty) ``downgrade()``.
- ``empty-downgrade`` (warning): ``downgrade()`` records nothing although
  ``upgrade()`` has steps.
- ``unbatched-full-scan`` (warning): a data step over a whole collection in
  one piece (``batch_size`` unset; or no ``batch_size`` parameter and an
  empty filter; SQL ``UPDATE``/``DELETE`` with no ``WHERE``).

Raw SQL (``execute``) is classified by parsing it with sqlglot in the
store's dialect (:func:`classify_sql`), so comments, string literals, CTEs
and several statements in one string are read as the database reads them.
- ``drop-required-field`` (error): ``drop_field`` of a field that the
  collection's JSON Schema, as earlier steps and revisions left it, still
  lists in ``required``.
- ``index-without-recall`` (warning): a vector index or metric change on a
  collection not created in the revision, with no ``check_recall`` after it.
- ``alias-switch-unchecked`` (error): ``alter_alias`` (or ``drop_alias`` then
  ``create_alias``) with no ``check_recall``/``expect_count`` of the new
  collection before it.
- ``former-spelling`` (warning): an operation or a keyword spelled the former
  way (``insert_many``, ``rename_collection(old=, new=)``, ``expect_count(expected=)``...):
  it works for one release; the finding says the current spelling.
- ``multiple-heads`` (error): several heads that no branch label makes
  intended (:func:`unintended_heads`).
- ``edited-after-base`` (error): a revision already on the base branch was
  edited or deleted (found by ``ragrev review``).

``ragrev check`` adds findings of its own, not suppressible: ``graph`` (cycles,
unknown or duplicate ids), ``load-error`` (a revision that does not load or
plan), ``sum-file`` (``ragrev.sum`` out of date) and ``edited-applied`` (an
applied revision whose operations changed, with ``--stores``).

A revision suppresses rules for itself with a comment anywhere in its file::

    # ragrev: allow destructive-no-way-back, no-inverse

``multiple-heads`` is suppressed when one of the head revisions allows it.
Suppressed findings are still reported (as *allowed*) but do not fail.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ragrev.errors import RagrevError


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # "error" | "warning"
    title: str
    fix: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("destructive-no-way-back", "error", "destructive step with no way back",
         "keep the data first (copy it aside, or use an operation with an inverse), or allow the rule if the loss is intended"),
    Rule("no-inverse", "error", "step with no inverse and no downgrade",
         "write downgrade(op) in the revision"),
    Rule("empty-downgrade", "warning", "downgrade() records nothing",
         "delete downgrade() to derive it from the inverses of the upgrade steps, or write its steps"),
    Rule("unbatched-full-scan", "warning", "data step over a whole collection without batching",
         "give it a batch_size (or use transform(..., batch_size=N)) so it runs in resumable batches, or narrow its filter"),
    Rule("drop-required-field", "error", "dropping a field the JSON Schema still requires",
         "set_schema without the field in 'required' before drop_field"),
    Rule("index-without-recall", "warning", "vector index or metric change with no check_recall",
         "add op.<store>.check_recall(collection, ...) after the index change"),
    Rule("alias-switch-unchecked", "error", "alias switch with no check of the new collection before it",
         "call expect_count or check_recall on the new collection before switching the alias"),
    Rule("former-spelling", "warning", "operation or keyword spelled the former way",
         "write the current spelling the message names (the former one is accepted for one release)"),
    Rule("multiple-heads", "error", "multiple heads",
         "ragrev merge -m \"merge heads\" heads"),
    Rule("edited-after-base", "error", "revision edited after it reached the base branch",
         "revert the edit and put the change in a new revision"),
    # check's own findings (not suppressible)
    Rule("graph", "error", "broken revision graph", "fix down_revision / revision ids so the graph loads"),
    Rule("load-error", "error", "revision does not load", "fix the revision file"),
    Rule("sum-file", "error", "ragrev.sum out of date",
         "run 'ragrev hash' if the change is intended, and commit revisions/ragrev.sum"),
    Rule("edited-applied", "error", "applied revision edited",
         "revert the edit and put the change in a new revision"),
]}
UNSUPPRESSIBLE = {"graph", "load-error", "sum-file", "edited-applied"}

_ALLOW = re.compile(r"#\s*ragrev:\s*allow\s+([\w\-]+(?:\s*,\s*[\w\-]+)*)", re.I)


@dataclass
class Finding:
    """One problem: which rule, where, and how to fix it."""

    rule: str
    message: str
    revision: str | None = None
    path: str | None = None
    line: int | None = None
    store: str | None = None
    fix: str | None = None

    @property
    def severity(self) -> str:
        return RULES[self.rule].severity

    @property
    def hint(self) -> str:
        return self.fix or RULES[self.rule].fix

    def where(self) -> str:
        if self.path:
            return f"{self.path}:{self.line}" if self.line else self.path
        return self.revision or ""

    def to_json(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "revision": self.revision,
                "path": self.path, "line": self.line, "store": self.store, "fix": self.hint}


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    #: findings a revision suppressed with ``# ragrev: allow <rule>``
    allowed: list[Finding] = field(default_factory=list)


def allowed_rules(text: str) -> set[str]:
    """Rule ids a revision file allows with ``# ragrev: allow a, b``."""
    out = set()
    for m in _ALLOW.finditer(text):
        out |= {r.strip().lower() for r in m.group(1).split(",")}
    return out


def split_allowed(findings, allows: dict[str, set[str]]) -> LintResult:
    """Sort findings into failing and allowed, given each revision's allow set."""
    res = LintResult()
    for f in findings:
        ok = f.rule not in UNSUPPRESSIBLE and f.revision is not None and f.rule in allows.get(f.revision, ())
        (res.allowed if ok else res.findings).append(f)
    return res


# --- operations, seen generically ----------------------------------------------------

_FILTER_KEYS = ("filter", "expr", "query", "where", "ids")

#: SQLAlchemy dialect name -> sqlglot dialect name (others: sqlglot's generic SQL)
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "sqlite": "sqlite", "mysql": "mysql",
                     "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle", "duckdb": "duckdb",
                     "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift"}
#: statements (or the first word of one sqlglot keeps as a bare command) that remove or overwrite data
_DESTROYING_WORDS = {"DELETE", "UPDATE", "DROP", "TRUNCATE", "MERGE", "REPLACE"}
_DROPPED_KINDS = {"TABLE", "SCHEMA", "DATABASE", "COLUMN", "MATERIALIZED VIEW"}


@dataclass(frozen=True)
class SqlClass:
    """What a string of SQL does, statement by statement."""

    #: one per statement: "delete", "update", "drop table", "truncate", "merge", "select", ...
    statements: tuple[str, ...]
    #: a statement (anywhere: inside a CTE too) deletes, updates, truncates or drops data
    destroys: bool
    #: an UPDATE or DELETE without a WHERE clause (it touches every row)
    full_scan: bool


_SQL_CACHE: dict[tuple[str, str | None], SqlClass] = {}


def classify_sql(sql: str, dialect: str | None = None) -> SqlClass:
    """Classify ``sql`` by parsing it with sqlglot (``dialect``: a SQLAlchemy
    dialect name such as ``postgresql``). A statement sqlglot cannot parse is
    judged by its first keyword (comments and literals skipped by sqlglot's
    tokenizer); one it cannot even tokenize counts as destroying data."""
    key = (sql, dialect)
    if key not in _SQL_CACHE:
        _SQL_CACHE[key] = _classify(sql, _SQLGLOT_DIALECTS.get((dialect or "").split("+")[0]))
    return _SQL_CACHE[key]


def _classify(sql: str, dialect: str | None) -> SqlClass:
    import logging

    import sqlglot
    from sqlglot import exp

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "falling back to parsing as a Command" is not news here
    try:
        try:
            trees = [t for t in sqlglot.parse(sql, read=dialect)
                     if t is not None and not isinstance(t, exp.Semicolon)]  # a trailing comment
        except sqlglot.errors.ParseError:
            trees = None
        if trees is None:
            return _classify_tokens(sql, dialect)
    finally:
        quiet.setLevel(level)
    kinds, destroys, full = [], False, False
    for tree in trees:
        kinds.append(_statement_kind(tree, exp))
        for node in tree.walk():
            if isinstance(node, (exp.Delete, exp.Update)):
                destroys = True
                full = full or node.args.get("where") is None
            elif isinstance(node, (exp.TruncateTable, exp.Merge)):
                destroys = True
            elif isinstance(node, exp.Drop):
                destroys = destroys or str(node.args.get("kind") or "").upper() in _DROPPED_KINDS
            elif isinstance(node, exp.Command):
                destroys = destroys or str(node.this or "").strip().upper() in _DESTROYING_WORDS
    return SqlClass(tuple(kinds), destroys, full)


def _statement_kind(tree, exp) -> str:
    if isinstance(tree, exp.Drop):
        return f"drop {str(tree.args.get('kind') or '').lower()}".strip()
    if isinstance(tree, exp.Command):
        return str(tree.this or "").strip().lower()
    if isinstance(tree, exp.TruncateTable):
        return "truncate"
    return type(tree).__name__.lower()


def _classify_tokens(sql: str, dialect: str | None) -> SqlClass:
    import sqlglot
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except Exception:  # not even tokens: assume the worst
        return SqlClass(("unknown",), True, False)
    statements, first = [], True
    destroys = False
    for t in tokens:
        if t.token_type == TokenType.SEMICOLON:
            first = True
            continue
        if first:
            statements.append(t.text.lower())
            first = False
        if t.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) and t.text.upper() in _DESTROYING_WORDS:
            destroys = True
    return SqlClass(tuple(statements), destroys, False)


def op_name(op) -> str:
    return getattr(op, "op_name", None) or op.name


def params(op) -> dict:
    try:
        return op.params()
    except Exception:  # pragma: no cover - a broken op class: lint what we can
        return {}


def _param(op, *names):
    p = params(op)
    for n in names:
        if p.get(n) not in (None, "", (), [], {}):
            return p[n]
    return None


def _collection(op):
    return _param(op, "collection", "collection_name", "table", "table_name", "old", "target")


def _sql_text(op) -> str | None:
    mop = getattr(op, "mop", None)
    text = getattr(mop, "sqltext", None)
    if text is None:
        return None
    return text if isinstance(text, str) else str(getattr(text, "text", text))


def _sql_class(op) -> SqlClass | None:
    sql = _sql_text(op)
    return None if sql is None else classify_sql(sql, getattr(op, "dialect", None))


def destroys(op) -> bool:
    """Removes data or structure, or overwrites values (a data step). Raw
    SQL counts only when a statement of it deletes, drops, truncates or
    updates (:func:`classify_sql`)."""
    sql = _sql_class(op)
    if sql is not None:
        return sql.destroys
    if op.is_check:
        return False
    return bool(getattr(op, "destructive", False) or getattr(op, "data_step", False))


def reversible(op) -> bool:
    return bool(op.is_check or getattr(op, "reversible", False))


def full_scan(op) -> bool:
    """A data step over a whole collection in one piece: its ``batch_size``
    is unset, or it has none and its ``filter`` is empty (``update_many(c, {}, ...)``).
    Steps with neither parameter (``drop_field``) batch on their own."""
    sql = _sql_class(op)
    if sql is not None:
        return sql.full_scan
    if op.is_check or not getattr(op, "data_step", False):
        return False
    p = params(op)
    if "batch_size" in p:
        return not p["batch_size"]
    present = [k for k in _FILTER_KEYS if k in p]
    return bool(present) and all(p[k] in (None, "", {}, [], ()) for k in present)


def _unwrap(schema):
    if isinstance(schema, dict) and isinstance(schema.get("$jsonSchema"), dict):
        return schema["$jsonSchema"]
    return schema if isinstance(schema, dict) else None


def required_in(schema, field_path: str) -> bool:
    """Whether ``field_path`` (dotted for nested objects) is in a ``required``
    list of the JSON Schema ``schema`` (``{"$jsonSchema": ...}`` accepted)."""
    node = _unwrap(schema)
    parts = str(field_path).split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return False
        node = (node.get("properties") or {}).get(part)
    return isinstance(node, dict) and parts[-1] in (node.get("required") or [])


class SchemaState:
    """JSON Schemas of document collections, followed through the revisions in
    graph order: ``(store, collection) -> schema``."""

    def __init__(self):
        self.schemas: dict[tuple[str, str], dict] = {}

    def apply(self, op) -> None:
        if op.kind != "document":
            return
        coll, name = _collection(op), op_name(op)
        key = (op.store, coll)
        schema = _param(op, "schema", "validator", "json_schema")
        if name in ("create_collection", "set_schema", "set_validator") and schema is not None:
            self.schemas[key] = schema
        elif name == "set_validator":
            self.schemas.pop(key, None)
        elif name == "drop_collection":
            self.schemas.pop(key, None)
        elif name == "rename_collection":
            new = _param(op, "new_name", "new", "new_collection", "to")
            if key in self.schemas and new:
                self.schemas[(op.store, new)] = self.schemas.pop(key)

    def requires(self, store: str, coll, field_path) -> bool:
        schema = self.schemas.get((store, coll))
        return schema is not None and field_path is not None and required_in(schema, field_path)


# --- rules over one revision -------------------------------------------------------------

def _finding(rule, plan, op, message, **kw) -> Finding:
    loc = getattr(op, "location", None) if op is not None else None
    path = loc[0] if loc else str(plan.script.path)
    return Finding(rule, message, plan.revision, path, loc[1] if loc else None,
                   getattr(op, "store", None) if op is not None else None, **kw)


def _mentions(check, coll) -> bool:
    if coll is None:
        return True
    return any(v == coll for v in params(check).values() if isinstance(v, str))


def _current_fix(note: str) -> str:
    """The fix of a former-spelling finding: the part of its note after ``write``."""
    return note.split(": write ", 1)[1] if ": write " in note else RULES["former-spelling"].fix


def lint_plan(plan, state: SchemaState | None = None) -> list[Finding]:
    """Findings of one revision's recorded plan. ``state`` carries the JSON
    Schemas of earlier revisions (graph order); it is updated in place."""
    state = state or SchemaState()
    out: list[Finding] = []
    up, down = plan.up, plan.down
    steps = [o for o in up if not o.is_check]
    has_down = bool(down)
    if down is not None and not down and steps:
        f = _finding("empty-downgrade", plan, None, f"downgrade() records no step although upgrade() has {len(steps)}")
        f.line = getattr(getattr(plan.script.downgrade, "__code__", None), "co_firstlineno", None)
        out.append(f)
    for op in up + (down or []):
        for note in getattr(op, "former_spellings", ()):
            out.append(_finding("former-spelling", plan, op, note, fix=_current_fix(note)))
    created: set[tuple[str, object]] = set()
    dropped_aliases: set[tuple[str, object]] = set()
    for i, op in enumerate(up):
        name, coll = op_name(op), _collection(op)
        label = _label(op, name, coll)
        if destroys(op) and not reversible(op):
            out.append(_finding("destructive-no-way-back", plan, op,
                                f"{label} destroys data and has no inverse: nothing can bring it back"))
        if not reversible(op) and not has_down:
            why = "an empty downgrade()" if down is not None else "no downgrade()"
            out.append(_finding("no-inverse", plan, op, f"{label} has no inverse and the revision has {why}"))
        if full_scan(op):
            out.append(_finding("unbatched-full-scan", plan, op,
                                f"{label} rewrites every row of the {'table' if op.kind == 'sql' else 'collection'} "
                                "in one piece (no batch_size, no filter)"))
        if op.kind == "document" and name == "drop_field":
            fld = _param(op, "field", "field_name")
            if state.requires(op.store, coll, fld):
                out.append(_finding("drop-required-field", plan, op,
                                    f"{label} drops {fld!r}, which the collection's JSON Schema still lists in 'required'"))
        if op.kind == "vector":
            if name == "create_collection":
                created.add((op.store, coll))
            elif _index_change(op) and (op.store, coll) not in created:
                later = [c for c in up[i + 1:] if c.store == op.store and _mentions(c, coll)]
                # judged once per collection: at its last index change, on the checks after it
                if not any(op_name(c) == "check_recall" or _index_change(c) for c in later):
                    out.append(_finding("index-without-recall", plan, op,
                                        f"{label} changes a vector index or metric with no check_recall after it"))
            if name == "drop_alias":
                dropped_aliases.add((op.store, _param(op, "alias")))
            if name == "alter_alias" or (name == "create_alias" and (op.store, _param(op, "alias")) in dropped_aliases):
                target = _param(op, "collection", "collection_name", "target")
                earlier = [c for c in up[:i] if c.is_check and op_name(c) in ("check_recall", "expect_count")
                           and c.store == op.store]
                if not any(_mentions(c, target) for c in earlier):
                    out.append(_finding("alias-switch-unchecked", plan, op,
                                        f"{op.store}.{name} points alias {_param(op, 'alias')!r} at {target!r} "
                                        f"with no check_recall/expect_count of {target!r} before it"))
        state.apply(op)
    return out


def _label(op, name, coll) -> str:
    sql = _sql_text(op)
    if sql is not None:
        text = " ".join(sql.split())
        return f"{op.store}.{name}({(text[:47] + '...') if len(text) > 50 else text!r})"
    return f"{op.store}.{name}" + (f" on {coll!r}" if coll else "")


def _index_change(op) -> bool:
    name = op_name(op)
    if op.is_check or name == "create_collection" or "alias" in name:
        return False
    return "index" in name or any(_param(op, k) is not None for k in ("metric_type", "index_type", "index_params"))


# --- rules over the graph --------------------------------------------------------------------

def unintended_heads(graph) -> list[str]:
    """Heads that no branch label of their own sets apart. Several heads are
    intended when at most one of them (the main line) carries no label that
    the other heads lack: ``ragrev revision --head base --branch-label L``."""
    heads = list(graph.heads)
    if len(heads) < 2:
        return []
    labels = {h: set(graph.branch_labels_of(h)) for h in heads}
    loose = []
    for h in heads:
        others = set().union(*(labels[o] for o in heads if o != h))
        if not labels[h] - others:
            loose.append(h)
    return loose if len(loose) > 1 else []


def lint_graph(graph) -> list[Finding]:
    loose = unintended_heads(graph)
    if not loose:
        return []
    fix = f"ragrev merge -m \"merge heads\" {' '.join(loose)}"
    return [Finding("multiple-heads", f"the revision graph has {len(loose)} heads: {', '.join(loose)}",
                    revision=h, path=graph.revisions[h].path, fix=fix) for h in loose[:1]]


# --- a whole project ---------------------------------------------------------------------------

def load_plans(graph, stores, only=None):
    """``(plans, findings)``: the :class:`RevisionPlan` of every revision of
    ``graph`` (its payloads are :class:`~ragrev.script.Script`) in graph order,
    or of ``only``'s ids and their ancestors; and a ``load-error`` finding for
    each revision that fails to import or plan."""
    from ragrev.plan import RevisionPlan

    order = graph.topological()
    if only is not None:
        keep = graph.ancestors(tuple(only)) if only else set()
        order = [r for r in order if r in keep]
    plans, problems = [], []
    for rid in order:
        script = graph.revisions[rid].payload
        try:
            plans.append(RevisionPlan(script, stores))
        except RagrevError as e:
            problems.append(Finding("load-error", str(e), rid, str(script.path)))
    return plans, problems


def lint(plans, graph=None, only=None) -> LintResult:
    """Lint ``plans`` (in graph order; earlier ones give later ones their
    JSON Schemas) and report on those in ``only`` (all when None). ``graph``
    adds the ``multiple-heads`` rule."""
    state, findings = SchemaState(), []
    for plan in plans:
        found = lint_plan(plan, state)
        if only is None or plan.revision in only:
            findings += found
    paths = {p.revision: p.script.path for p in plans}
    if graph is not None:
        findings += lint_graph(graph)
        paths.update((h, graph.revisions[h].path) for h in graph.heads if h not in paths)
    allows = {rid: _read_allows(paths.get(rid)) for rid in {f.revision for f in findings if f.revision}}
    for f in findings:
        if f.rule == "multiple-heads" and any("multiple-heads" in _read_allows(paths.get(h)) for h in graph.heads):
            allows[f.revision] = allows[f.revision] | {"multiple-heads"}
    return split_allowed(findings, allows)


def _read_allows(path) -> set[str]:
    try:
        return allowed_rules(Path(path).read_text(encoding="utf-8")) if path else set()
    except (OSError, UnicodeDecodeError):
        return set()
