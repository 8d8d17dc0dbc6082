"""How the SQL store applies its operations (registered with
:func:`ragrev.stores.implementation`; imported by :mod:`ragrev.drivers.sql.store`).

Alembic's operations run through Alembic's ``Operations`` on the store's
connection; what ragrev adds (a soft drop into the trash, the values a dropped
column had, putting them back) is built with SQLAlchemy Core constructs, so
every identifier is quoted by the store's dialect, never by hand.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.operations import ops as aops

from ragrev.errors import ConfigError
from ragrev.ops.sql import RestoreColumn, SqlBatch, SqlOp, _has_reverse, render, replay
from ragrev.stores import implementation, trash_name

if TYPE_CHECKING:
    from ragrev.drivers.sql.store import SqlStore



class _Taken:
    """``name in _Taken(store, schema)``: whether a table of that name exists,
    asked per candidate name (a drop used to list every table of the schema)."""

    def __init__(self, store, schema=None):
        self.store, self.schema = store, schema

    def __contains__(self, name) -> bool:
        return _table_exists(self.store, name, self.schema)


def _taken(store, schema=None) -> _Taken:
    return _Taken(store, schema)


def _table(name: str, *columns: str, schema: str | None = None) -> sa.TableClause:
    """A lightweight table for a statement (its columns named only): the dialect quotes the names."""
    return sa.table(name, *[sa.column(c) for c in columns], schema=schema)


def _table_exists(store: SqlStore, name, schema=None) -> bool:
    return sa.inspect(store.conn).has_table(name, schema=schema)


@implementation(SqlOp, "sql")
def _apply_sql(store: SqlStore, op: SqlOp, ctx):
    m = op.mop
    ops = store.operations()
    if isinstance(m, aops.DropTableOp):
        return _soft_drop_table(store, ops, m, ctx)
    if isinstance(m, aops.DropColumnOp):
        return _drop_column(store, ops, m, ctx)
    if isinstance(m, aops.AlterColumnOp):
        ctx.captured["reverse_code"] = _alter_reverse_code(store, m)
    if isinstance(m, aops.DropIndexOp) and m.table_name:
        ctx.captured["reverse_code"] = _index_code(store, m)
    if ctx.resuming and not store.transactional_ddl and _already_done(store, m):
        return None
    ops.invoke(m)
    return None


def _already_done(store: SqlStore, m) -> bool:
    """Whether the DDL of a step that was killed before its journal record (its
    statement committed implicitly, as on MySQL) is already in the store:
    the table, column or index it creates exists."""
    insp = sa.inspect(store.conn)
    if isinstance(m, aops.CreateTableOp):
        return insp.has_table(m.table_name, schema=m.schema)
    if isinstance(m, aops.AddColumnOp):
        return insp.has_table(m.table_name, schema=m.schema) and any(
            c["name"] == m.column.name for c in insp.get_columns(m.table_name, schema=m.schema))
    if isinstance(m, aops.CreateIndexOp):
        return insp.has_table(m.table_name, schema=m.schema) and any(
            i["name"] == m.index_name for i in insp.get_indexes(m.table_name, schema=m.schema))
    return False


def _soft_drop_table(store, ops, m, ctx):
    trash = ctx.captured.get("trash") or trash_name(m.table_name, taken=_taken(store, m.schema))
    if ctx.resuming and not _table_exists(store, m.table_name, m.schema) and _table_exists(store, trash, m.schema):
        return None
    ops.rename_table(m.table_name, trash, schema=m.schema)
    ctx.captured["trash"] = trash
    return None


def _reflected_column(store, table, column, schema=None):
    for col in sa.inspect(store.conn).get_columns(table, schema=schema):
        if col["name"] == column:
            return col
    raise ConfigError(f"table {table!r} has no column {column!r}")


def _keep_values(store, table: str, columns: list[str], trash: str, schema=None) -> None:
    """Copy ``columns`` of ``table`` into a new table ``trash`` (same column
    types, as reflected): ``CREATE TABLE`` then ``INSERT ... SELECT``."""
    insp = sa.inspect(store.conn)
    types = {c["name"]: c["type"] for c in insp.get_columns(table, schema=schema)}
    kept = sa.Table(trash, sa.MetaData(), *[sa.Column(c, types[c]) for c in columns], schema=schema)
    kept.create(store.conn)
    source = _table(table, *columns, schema=schema)
    store.conn.execute(kept.insert().from_select(columns, sa.select(*[source.c[c] for c in columns])))


def _drop_column(store, ops, m, ctx):
    info = _reflected_column(store, m.table_name, m.column_name, m.schema)
    column = sa.Column(info["name"], info["type"], nullable=info.get("nullable", True),
                       server_default=sa.text(info["default"]) if info.get("default") is not None else None)
    ctx.captured["column_code"] = render([aops.AddColumnOp(m.table_name, column, schema=m.schema)])
    pk = sa.inspect(store.conn).get_pk_constraint(m.table_name, schema=m.schema).get("constrained_columns") or []
    if pk:
        trash = trash_name(m.table_name, m.column_name, taken=_taken(store, m.schema))
        _keep_values(store, m.table_name, pk + [m.column_name], trash, m.schema)
        ctx.captured["values_table"] = trash
        ctx.captured["key"] = pk
    if store.dialect != "sqlite" or not _native_sqlite_drop(store, ops, m):
        if store.dialect == "sqlite":  # an older SQLite, or a column its DROP COLUMN refuses: copy the table
            with ops.batch_alter_table(m.table_name, schema=m.schema) as b:
                b.drop_column(m.column_name)
        else:
            ops.invoke(m)
    return None


def _native_sqlite_drop(store, ops, m) -> bool:
    """``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35+; Alembic's ``drop_column``)
    in a savepoint; False when this SQLite has none or refuses it for this
    column (part of a key, an index, a constraint, a view...): then the table
    is rebuilt instead."""
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 35, 0):
        return False
    try:
        with store.conn.begin_nested():
            ops.drop_column(m.table_name, m.column_name, schema=m.schema)
    except sa.exc.OperationalError:
        return False
    return True


def _index_code(store, m) -> str:
    for ix in sa.inspect(store.conn).get_indexes(m.table_name, schema=m.schema):
        if ix["name"] == m.index_name:
            return render([aops.CreateIndexOp(m.index_name, m.table_name, ix["column_names"],
                                              schema=m.schema, unique=bool(ix.get("unique")))])
    raise ConfigError(f"table {m.table_name!r} has no index {m.index_name!r}")


def _alter_reverse_code(store, m) -> str:
    return render([_alter_reverse(store, m)])


def _alter_reverse(store, m):
    info = _reflected_column(store, m.table_name, m.column_name, m.schema)
    kw = {"existing_type": info["type"]}
    if m.modify_name:
        kw["new_column_name"] = m.column_name
    if m.modify_type is not None:
        kw["type_"] = info["type"]
    if m.modify_nullable is not None:
        kw["nullable"] = info.get("nullable", True)
    if m.modify_server_default is not False:
        kw["server_default"] = sa.text(info["default"]) if info.get("default") is not None else None
    rev = aops.AlterColumnOp(m.table_name, m.modify_name or m.column_name, schema=m.schema,
                             existing_type=info["type"], modify_name=kw.get("new_column_name"),
                             modify_type=kw.get("type_"), modify_nullable=kw.get("nullable"),
                             modify_server_default=kw.get("server_default", False))
    return rev


@implementation(SqlBatch, "sql")
def _apply_batch(store: SqlStore, op: SqlBatch, ctx):
    ops = store.operations()
    if all(isinstance(m, aops.AlterColumnOp) or _has_reverse(m) for m in op.ops):
        rev = [_alter_reverse(store, m) if isinstance(m, aops.AlterColumnOp) else m.reverse() for m in reversed(op.ops)]
        ctx.captured["reverse_code"] = render(rev, batch_table=op.table_name)
    with ops.batch_alter_table(op.table_name, schema=op.schema, **op.kwargs) as b:
        for m in op.ops:
            b.invoke(m)
    return None


@implementation(RestoreColumn, "sql")
def _apply_restore_column(store: SqlStore, op: RestoreColumn, ctx):
    ops = store.operations()
    (add,) = replay(op.column_code, store.dialect)
    column = add.mop.column
    not_null = column.nullable is False
    column.nullable = True
    if not any(c["name"] == op.column_name for c in sa.inspect(store.conn).get_columns(op.table_name, schema=op.schema)):
        ops.add_column(op.table_name, column, schema=op.schema)
    if op.values_table and _table_exists(store, op.values_table, op.schema):
        cols = [*op.key, op.column_name]
        values = _table(op.values_table, *cols, schema=op.schema)
        table = _table(op.table_name, *cols, schema=op.schema)
        match = sa.and_(*[values.c[k] == table.c[k] for k in op.key])
        kept = sa.select(values.c[op.column_name]).where(match).scalar_subquery()
        store.conn.execute(table.update().values({table.c[op.column_name]: kept}))
        ops.drop_table(op.values_table, schema=op.schema)
    if not_null:
        with ops.batch_alter_table(op.table_name, schema=op.schema) as b:
            b.alter_column(op.column_name, existing_type=column.type, nullable=False)
    return None
