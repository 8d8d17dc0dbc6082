"""SQL operations: Alembic's own ``Operations``, recorded declaratively.

``op.<sql store>`` in a revision is a :class:`SqlRecorder`, an Alembic
``Operations`` whose ``invoke`` keeps each operation object (Alembic's
``MigrateOperation``) instead of running it. Every Alembic call works:
``create_table``, ``add_column``, ``alter_column``, ``batch_alter_table``,
``create_index``, ``execute``, ``bulk_insert`` ... Each recorded call becomes
a :class:`SqlOp`, whose normalized form is the Python code Alembic renders for
it (so formatting does not count), and which the SQL store runs through a real
``Operations`` bound to its connection.

Inverses: Alembic's own ``reverse()`` where it has one; ``drop_table`` is soft
(the table is renamed into the trash and its inverse renames it back);
``drop_column`` keeps the column's definition and values for its inverse;
``alter_column`` captures the column as it was. ``execute`` and
``bulk_insert`` have no inverse: give ``downgrade(op)``.
"""
from __future__ import annotations

import re
import textwrap
from contextlib import contextmanager
from types import SimpleNamespace

from alembic.operations import BatchOperations, Operations
from alembic.operations import ops as aops
from alembic.runtime.migration import MigrationContext

from ragrev.errors import Irreversible
from ragrev.ops import Operation, register
from ragrev.stores import TRASH_PREFIX

#: Alembic op class -> the name a revision calls it by
_NAMES = {
    aops.CreateTableOp: "create_table", aops.DropTableOp: "drop_table", aops.RenameTableOp: "rename_table",
    aops.AddColumnOp: "add_column", aops.DropColumnOp: "drop_column", aops.AlterColumnOp: "alter_column",
    aops.CreateIndexOp: "create_index", aops.DropIndexOp: "drop_index", aops.ExecuteSQLOp: "execute",
    aops.BulkInsertOp: "bulk_insert", aops.CreateForeignKeyOp: "create_foreign_key",
    aops.DropConstraintOp: "drop_constraint", aops.CreateUniqueConstraintOp: "create_unique_constraint",
    aops.CreatePrimaryKeyOp: "create_primary_key", aops.CreateCheckConstraintOp: "create_check_constraint",
}
#: where the SQL store's implementations of these operations are registered (imported on first use, so
#: that opening a SQL store does not import Alembic: see :mod:`ragrev.drivers.sql.store`)
_IMPL = {"sql": "ragrev.drivers.sql.steps"}



_RENDER_CONTEXTS: dict = {}


def _autogen_context(batch: bool):
    """Alembic's render state, made once per process and per style (plain or
    batch) on a dialect-neutral ``MigrationContext``: ``render_python_code``
    builds both anew on every call, which was a fifth of the cost of
    planning a large revision. Alembic's rendering reads these contexts'
    options and does not keep anything of one render for the next (the
    batch flag is set and reset around a batch block)."""
    ctx = _RENDER_CONTEXTS.get(batch)
    if ctx is None:
        from alembic.autogenerate.api import AutogenContext
        from sqlalchemy.engine.default import DefaultDialect

        opts = {"sqlalchemy_module_prefix": "sa.", "alembic_module_prefix": "op.", "render_item": None,
                "render_as_batch": batch, "user_module_prefix": None}
        ctx = _RENDER_CONTEXTS[batch] = AutogenContext(MigrationContext.configure(dialect=DefaultDialect()),
                                                       opts=opts)
    ctx.imports = set()
    return ctx


def render(mops, batch_table: str | None = None) -> str:
    """Alembic's rendering of operations as Python code, without its banner
    (what ``alembic.autogenerate.render_python_code`` returns, on a reused
    context)."""
    from alembic.autogenerate import render as arender

    if batch_table is not None:
        container = aops.UpgradeOps(ops=[aops.ModifyTableOps(batch_table, list(mops))])
    else:
        container = aops.UpgradeOps(ops=list(mops))
    code = arender._indent(arender._render_cmd_body(container, _autogen_context(batch_table is not None)))
    lines = [ln for ln in code.splitlines() if not ln.strip().startswith("# ###")]
    return textwrap.dedent("\n".join(lines)).strip()


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _plain_index(mop) -> str | None:
    """``create_index`` on plain column names, as Alembic renders it, without
    building the SQLAlchemy ``Table`` and ``Index`` Alembic's renderer makes
    for it (half the cost of rendering a large revision's indexes); None for
    any other form (a schema, expressions, dialect options, quoted names),
    which Alembic renders. ``tests/sql/test_render.py`` checks both agree."""
    if (type(mop) is not aops.CreateIndexOp or mop.schema is not None or mop.kw or mop.if_not_exists is not None
            or mop.unique not in (None, False, True)):
        return None
    names = [mop.index_name, mop.table_name, *mop.columns]
    if not all(type(n) is str and _IDENT.match(n) for n in names):
        return None
    cols = ", ".join(repr(c) for c in mop.columns)
    return f"op.create_index({mop.index_name!r}, {mop.table_name!r}, [{cols}], unique={bool(mop.unique)!r})"


def _render_one(mop) -> str:
    if isinstance(mop, aops.BulkInsertOp):  # not renderable by Alembic
        return f"op.bulk_insert({mop.table.name!r}, {mop.rows!r})"
    fast = _plain_index(mop)
    if fast is not None:
        return fast
    try:
        return render([mop])
    except Exception:  # an op Alembic cannot render: fall back to its attributes
        return f"{type(mop).__name__}({sorted((k, repr(v)) for k, v in vars(mop).items())})"


@register("sql")
class SqlOp(Operation):
    """One Alembic operation on a SQL store."""

    name = "sql"
    impl_modules = _IMPL
    #: the store's SQLAlchemy dialect name (set by :class:`SqlRecorder`)
    dialect: str | None = None

    def __init__(self, mop):
        self.mop = mop

    @property
    def op_name(self) -> str:
        return _NAMES.get(type(self.mop), type(self.mop).__name__)

    @property
    def destructive(self) -> bool:  # type: ignore[override]
        return isinstance(self.mop, (aops.DropTableOp, aops.DropColumnOp, aops.ExecuteSQLOp))

    def validate(self) -> None:
        """Arguments Alembic accepts while recording but fails on when run
        (a column given as a string...): an :class:`OperationError` naming the
        revision's file and line, before any store changes."""
        _check_mop(self, self.mop)

    def params(self) -> dict:
        return {"code": self.code}

    @property
    def code(self) -> str:
        """The operation as Alembic renders it (rendered once: the recorded operation is not changed after)."""
        code = self.__dict__.get("_code")
        if code is None:
            code = self.__dict__["_code"] = _render_one(self.mop)
        return code

    def normalized(self) -> dict:
        return {"store": self.store, "op": self.op_name, "params": self.params()}

    def describe(self) -> str:
        return " ".join(self.code.split())

    @property
    def reversible(self) -> bool:
        return not isinstance(self.mop, (aops.ExecuteSQLOp, aops.BulkInsertOp))

    def reverse(self, captured):
        m = self.mop
        if isinstance(m, aops.DropTableOp):
            if not captured or "trash" not in captured:
                raise Irreversible(f"drop_table {m.table_name!r}: no trash table recorded (was the revision stamped?)")
            return self.inverse(SqlOp(aops.RenameTableOp(captured["trash"], m.table_name, schema=m.schema)))
        if isinstance(m, aops.RenameTableOp):
            return self.inverse(SqlOp(aops.RenameTableOp(m.new_table_name, m.table_name, schema=m.schema)))
        if isinstance(m, aops.DropColumnOp):
            if not captured or "column_code" not in captured:
                raise Irreversible(f"drop_column {m.table_name}.{m.column_name}: no captured column (was the revision stamped?)")
            return self.inverse(RestoreColumn(m.table_name, m.column_name, captured["column_code"],
                                              captured.get("values_table"), captured.get("key"), m.schema))
        if captured and "reverse_code" in captured:  # the object as it was, captured at apply time
            return self.inverse(*replay(captured["reverse_code"]))
        if isinstance(m, aops.DropIndexOp):
            raise Irreversible(f"drop_index {m.index_name!r}: no captured index definition (was the revision stamped?)")
        if isinstance(m, (aops.ExecuteSQLOp, aops.BulkInsertOp)):
            raise Irreversible(f"{self.op_name} on store {self.store!r} has no inverse; write downgrade(op) in the revision")
        try:
            return self.inverse(SqlOp(m.reverse()))
        except (NotImplementedError, ValueError) as e:
            raise Irreversible(f"{self.op_name} on store {self.store!r} has no inverse ({e or 'Alembic defines none'}); "
                               "write downgrade(op) in the revision") from None


@register("sql")
class SqlBatch(Operation):
    """``with op.<store>.batch_alter_table(table) as b: ...`` as one step."""

    name = "batch_alter_table"
    impl_modules = _IMPL

    def __init__(self, table_name: str, schema, kwargs: dict, ops: list):
        self.table_name, self.schema, self.kwargs, self.ops = table_name, schema, kwargs, ops

    def validate(self) -> None:
        for m in self.ops:
            _check_mop(self, m)

    def params(self) -> dict:
        code = self.__dict__.get("_code")
        if code is None:  # rendered once: the recorded operations are not changed after
            code = self.__dict__["_code"] = render(self.ops, batch_table=self.table_name) if self.ops else ""
        return {"table": self.table_name, "schema": self.schema, "options": {k: repr(v) for k, v in self.kwargs.items()},
                "code": code}

    def describe(self) -> str:
        return f"batch_alter_table({self.table_name!r}): " + "; ".join(_render_one(m).split("(")[0] for m in self.ops)

    @property
    def destructive(self) -> bool:  # type: ignore[override]
        return any(isinstance(m, aops.DropColumnOp) for m in self.ops)

    @property
    def reversible(self) -> bool:
        return all(not isinstance(m, aops.DropColumnOp) and _has_reverse(m) for m in self.ops)

    def reverse(self, captured):
        if captured and "reverse_code" in captured:  # columns as they were, captured at apply time
            return self.inverse(*replay(captured["reverse_code"]))
        try:
            rev = [m.reverse() for m in reversed(self.ops)]
        except (NotImplementedError, ValueError):
            raise Irreversible(f"batch_alter_table {self.table_name!r} on store {self.store!r} holds an operation "
                               "with no inverse; write downgrade(op)") from None
        return self.inverse(SqlBatch(self.table_name, self.schema, self.kwargs, rev))


def _check_mop(op, m) -> None:
    import sqlalchemy as sa

    from ragrev.errors import OperationError

    name = _NAMES.get(type(m), type(m).__name__)
    if isinstance(m, aops.AddColumnOp) and not isinstance(m.column, sa.Column):
        raise OperationError(f"{op.where()}{name}: the column must be sa.Column('name', type, ...), not {m.column!r}")
    if isinstance(m, aops.CreateTableOp):
        for c in m.columns:
            if not isinstance(c, sa.schema.SchemaItem):
                raise OperationError(f"{op.where()}{name} {m.table_name!r}: {c!r} is not an sa.Column or a constraint")
    for attr in ("table_name", "column_name", "new_table_name", "index_name"):
        value = getattr(m, attr, None)
        if value is not None and not isinstance(value, str) and not hasattr(value, "key"):
            raise OperationError(f"{op.where()}{name}: {attr} must be a string, not {value!r}")


def tables_used(m) -> list[str]:
    """The tables (of the default schema) an Alembic operation needs to exist before it runs."""
    if getattr(m, "schema", None):
        return []
    if isinstance(m, (aops.AddColumnOp, aops.DropColumnOp, aops.AlterColumnOp, aops.CreateIndexOp, aops.DropTableOp,
                      aops.RenameTableOp)):
        return [m.table_name] if isinstance(m.table_name, str) else []
    if isinstance(m, aops.BulkInsertOp):
        return [getattr(m.table, "name", m.table)] if isinstance(getattr(m.table, "name", m.table), str) else []
    return []


def _has_reverse(m) -> bool:
    try:
        m.reverse()
        return True
    except (NotImplementedError, ValueError, AttributeError):
        return False


@register("sql")
class RestoreColumn(Operation):
    """Inverse of a soft ``drop_column``: re-add the column from its captured
    definition and copy its values back from the trash table."""

    name = "restore_column"
    impl_modules = _IMPL
    inverse_only = True

    def __init__(self, table_name, column_name, column_code, values_table=None, key=None, schema=None):
        self.table_name, self.column_name, self.column_code = table_name, column_name, column_code
        self.values_table, self.key, self.schema = values_table, key, schema

    def params(self) -> dict:
        return {"table": self.table_name, "column": self.column_name, "code": self.column_code,
                "values_table": self.values_table, "key": self.key}

    def describe(self) -> str:
        return f"restore_column({self.table_name!r}, {self.column_name!r})"


# --- recording ------------------------------------------------------------------------

class SqlRecorder(Operations):
    """What ``op.<sql store>`` is inside a revision: Alembic's ``Operations``
    whose calls are recorded as :class:`SqlOp` steps."""

    def __init__(self, emit, dialect: str = "sqlite"):
        super().__init__(MigrationContext.configure(dialect_name=dialect))
        self._emit = emit

    def invoke(self, operation):
        op = SqlOp(operation)
        op.dialect = self.migration_context.dialect.name  # for lint's parse of execute()'s SQL
        self._emit(op)

    @contextmanager
    def batch_alter_table(self, table_name, schema=None, **kwargs):
        batch = _BatchRecorder(self.migration_context, table_name, schema)
        yield batch
        self._emit(SqlBatch(table_name, schema, kwargs, batch.recorded))

    def chats(self, collection, **options):
        """Chat-archive operations on a table of this store (docs/chat-archives.md)."""
        from ragrev.ops.chats import ChatNamespace

        return ChatNamespace(self._emit, collection, options)


class _BatchRecorder(BatchOperations):
    def __init__(self, migration_context, table_name, schema):
        self.migration_context = migration_context
        self.impl = SimpleNamespace(table_name=table_name, schema=schema)
        self.recorded = []

    def invoke(self, operation):
        self.recorded.append(operation)


def replay(code: str, dialect: str = "sqlite") -> list:
    """ragrev operations (:class:`SqlOp`, :class:`SqlBatch`) from code rendered
    by :func:`render` (the journal keeps captured definitions this way)."""
    import sqlalchemy as sa

    out = []
    rec = SqlRecorder(out.append, dialect)
    from sqlalchemy.dialects import mysql, oracle, postgresql, sqlite  # dialect types Alembic renders as <dialect>.X

    namespace = {"op": rec, "sa": sa, "mysql": mysql, "postgresql": postgresql, "sqlite": sqlite, "oracle": oracle}
    exec(compile(code, "<ragrev journal>", "exec"), namespace)
    return out
