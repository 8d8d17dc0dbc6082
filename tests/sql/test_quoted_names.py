"""Names that need quoting — mixed case, spaces, a reserved word — on every
SQL dialect the suite has (SQLite, PostgreSQL, MariaDB): the SQL ragrev
writes itself (a dropped column's kept values, putting them back, the soft
drop, purge, SQLite's native DROP COLUMN) quotes identifiers through the
dialect, so these names round-trip and the trash empties."""
from __future__ import annotations

import re

import sqlalchemy as sa

from tests.helpers.sql import snapshot

TABLE = "Order Items"   # a space and capitals
KEY = "Id"              # capitals
RESERVED = "select"     # a reserved word
SPACED = "Price Tag"


def _project(make_project, url):
    p = make_project({"meta": url})
    p.add("q1", None, f'''
        def upgrade(op):
            op.meta.create_table({TABLE!r}, sa.Column({KEY!r}, sa.Integer, primary_key=True),
                                     sa.Column({RESERVED!r}, sa.String(20), nullable=False),
                                     sa.Column({SPACED!r}, sa.Integer))
            op.meta.create_index("Ix Price", {TABLE!r}, [{SPACED!r}])
            t = sa.table({TABLE!r}, sa.column({KEY!r}), sa.column({RESERVED!r}), sa.column({SPACED!r}))
            op.meta.bulk_insert(t, [{{{KEY!r}: i, {RESERVED!r}: f"v{{i}}", {SPACED!r}: i * 10}} for i in range(1, 6)])
            op.meta.create_table("Group", sa.Column("Order", sa.Integer, primary_key=True))

        def downgrade(op):
            op.meta.drop_table("Group")
            op.meta.drop_index("Ix Price", table_name={TABLE!r})
            op.meta.drop_table({TABLE!r})
    ''')
    p.add("q2", "q1", f'''
        def upgrade(op):
            op.meta.drop_column({TABLE!r}, {RESERVED!r})
            op.meta.drop_index("Ix Price", table_name={TABLE!r})
            op.meta.drop_column({TABLE!r}, {SPACED!r})
            op.meta.drop_table("Group")
    ''')
    return p


def _tables(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        names = sa.inspect(c).get_table_names()
    engine.dispose()
    return names


def test_quoted_names_round_trip_and_purge(make_project, sql_url):
    p = _project(make_project, sql_url)
    p.cli("upgrade", "q1", "-q")
    before = snapshot(sql_url)
    assert before[TABLE]["count"] == 5
    p.cli("upgrade", "head", "-q")
    after = snapshot(sql_url)
    assert [c[0] for c in after[TABLE]["columns"]] == [KEY]
    trash = sorted(t for t in _tables(sql_url) if t.startswith("ragrev_trash_"))
    # the dropped table, and the values of each dropped column of a table with a key
    assert len(trash) == 3, trash
    assert all(re.fullmatch(r"ragrev_trash_\d+_(Group|Order Items_select|Order Items_Price Tag)", t) for t in trash), trash
    p.cli("downgrade", "q1", "-q")
    assert snapshot(sql_url) == before  # the values came back from the kept tables, which are gone
    assert not [t for t in _tables(sql_url) if t.startswith("ragrev_trash_") and "Order Items" in t]

    p.cli("upgrade", "head", "-q")
    out = p.cli("purge").output
    assert out.count("meta: purged ragrev_trash_") == 3, out
    assert not [t for t in _tables(sql_url) if t.startswith("ragrev_trash_")]
    assert snapshot(sql_url) == after
