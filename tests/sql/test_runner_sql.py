"""The runner on SQL stores (issue 3), on SQLite and on PostgreSQL: version
table and journal, up/down round trips that leave schema and data identical,
relative targets on a branched graph, half-applied revisions, resume without
repeating a step, checksums of applied revisions, --plan, derived downgrades."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.helpers.sql import heads, scalar, snapshot

CHAIN = [
    ("r1", None, '''
        def upgrade(op):
            op.meta.create_table("docs", sa.Column("id", sa.Integer, primary_key=True),
                                 sa.Column("title", sa.String(100), nullable=False))
            op.meta.bulk_insert(sa.table("docs", sa.column("id"), sa.column("title")),
                                [{"id": i, "title": f"doc {i}"} for i in range(1, 21)])  # MySQL: id 0 means "next"

        def downgrade(op):
            op.meta.drop_table("docs")
    '''),
    ("r2", "r1", '''
        def upgrade(op):
            op.meta.add_column("docs", sa.Column("lang", sa.String(8), server_default="en"))
            op.meta.create_index("ix_docs_lang", "docs", ["lang"])
    '''),
    ("r3", "r2", '''
        def upgrade(op):
            op.meta.create_table("chunks", sa.Column("id", sa.Integer, primary_key=True),
                                 sa.Column("doc_id", sa.Integer), sa.Column("text", sa.Text))
            op.meta.execute("INSERT INTO chunks (id, doc_id, text) SELECT id, id, title FROM docs")

        def downgrade(op):
            op.meta.drop_table("chunks")
    '''),
    ("r4", "r3", '''
        def upgrade(op):
            op.meta.drop_index("ix_docs_lang", table_name="docs")
            op.meta.drop_column("docs", "title")
    '''),
    ("r5", "r4", '''
        def upgrade(op):
            with op.meta.batch_alter_table("chunks") as b:
                b.alter_column("text", new_column_name="body", existing_type=sa.Text)
    '''),
]


def chain_project(make_project, url, options=""):
    p = make_project({"meta": url}, options)
    for rev, down, body in CHAIN:
        p.add(rev, down, body)
    return p


@pytest.mark.slow
def test_chain_up_and_down_leaves_schema_and_data_identical(make_project, sql_url):
    """r1 <- r2 <- r3 <- r4 <- r5, on SQLite and PostgreSQL: every level on the
    way down equals the same level on the way up (schema + row hashes)."""
    p = chain_project(make_project, sql_url)
    levels = {"base": snapshot(sql_url)}
    for rev, _, _ in CHAIN:
        p.cli("upgrade", rev, "-q")
        levels[rev] = snapshot(sql_url)
        assert heads(sql_url) == {rev}
    assert levels["r5"]["chunks"]["count"] == 20
    assert [c[0] for c in levels["r5"]["chunks"]["columns"]] == ["body", "doc_id", "id"]
    for rev in ["r4", "r3", "r2", "r1"]:
        p.cli("downgrade", rev, "-q")
        assert snapshot(sql_url) == levels[rev], f"state at {rev} differs on the way down"
    p.cli("downgrade", "base", "-q")
    assert snapshot(sql_url) == levels["base"]
    assert heads(sql_url) == set()
    # and up again
    p.cli("upgrade", "head", "-q")
    assert snapshot(sql_url) == levels["r5"]


def test_journal_records_runs_and_steps(make_project, sql_url):
    """Each applied revision has a run record with checksum, user, host; each step a record."""
    p = chain_project(make_project, sql_url)
    p.cli("upgrade", "r2", "-q")
    engine = sa.create_engine(sql_url)
    with engine.connect() as c:
        runs = c.execute(sa.text("SELECT revision, direction, outcome, checksum, username, hostname FROM ragrev_log "
                                 "WHERE type = 'run' ORDER BY seq")).fetchall()
        steps = c.execute(sa.text("SELECT revision, step_index, outcome FROM ragrev_log WHERE type = 'step' ORDER BY seq")).fetchall()
    engine.dispose()
    assert [(r[0], r[1], r[2]) for r in runs] == [("r1", "up", "done"), ("r2", "up", "done")]
    assert all(r[3] and r[4] and r[5] for r in runs)
    assert [tuple(s) for s in steps] == [("r1", 0, "done"), ("r1", 1, "done"), ("r2", 0, "done"), ("r2", 1, "done")]


BRANCHED = [
    # a <- b <- c (head)   and   a <- x <- y (head, label "side")
    ("a", None, "def upgrade(op):\n    op.meta.create_table('t_a', sa.Column('id', sa.Integer, primary_key=True))\n"),
    ("b", "a", "def upgrade(op):\n    op.meta.create_table('t_b', sa.Column('id', sa.Integer, primary_key=True))\n"),
    ("c", "b", "def upgrade(op):\n    op.meta.create_table('t_c', sa.Column('id', sa.Integer, primary_key=True))\n"),
    ("x", "a", "def upgrade(op):\n    op.meta.create_table('t_x', sa.Column('id', sa.Integer, primary_key=True))\n"),
    ("y", "x", "def upgrade(op):\n    op.meta.create_table('t_y', sa.Column('id', sa.Integer, primary_key=True))\n"),
]


def test_relative_targets_on_a_branched_graph(make_project, sql_url):
    """
        a <-- b <-- c
         \\
          <-- x <-- y
    ``upgrade +2`` from base reaches b? no: from base, +1 is a, +2 is ambiguous past the branch
    point, so we step: upgrade a, upgrade +1 on one branch by name, upgrade heads, downgrade -1 of
    a branch, as Alembic does.
    """
    p = make_project({"meta": sql_url})
    for rev, down, body in BRANCHED:
        p.add(rev, down, body)
    p.cli("upgrade", "+1", "-q")
    assert heads(sql_url) == {"a"}
    p.cli("upgrade", "b+1", "-q")          # a -> b -> c along b's line
    assert heads(sql_url) == {"c"}
    p.cli("upgrade", "heads", "-q")        # both branches
    assert heads(sql_url) == {"c", "y"}
    tables = set(snapshot(sql_url))
    assert tables == {"t_a", "t_b", "t_c", "t_x", "t_y"}
    p.cli("downgrade", "y-1", "-q")        # revert y only
    assert heads(sql_url) == {"c", "x"}
    assert "t_y" not in snapshot(sql_url) and "t_c" in snapshot(sql_url)
    p.cli("downgrade", "a", "-q")          # both branches above a
    assert heads(sql_url) == {"a"}
    assert set(snapshot(sql_url)) == {"t_a"}


def test_linear_relative_targets(make_project, sql_url):
    """r1 <- r2 <- r3 <- r4 <- r5: upgrade +2, +2, downgrade -1, upgrade +1."""
    p = chain_project(make_project, sql_url)
    p.cli("upgrade", "+2", "-q")
    assert heads(sql_url) == {"r2"}
    p.cli("upgrade", "+2", "-q")
    assert heads(sql_url) == {"r4"}
    p.cli("downgrade", "-1", "-q")
    assert heads(sql_url) == {"r3"}
    p.cli("upgrade", "+1", "-q")
    assert heads(sql_url) == {"r4"}


COUNTED = '''
    def upgrade(op):
        op.meta.execute("INSERT INTO counter (step) VALUES (1)")
        op.meta.execute("INSERT INTO counter (step) VALUES (2)")
        op.meta.execute("INSERT INTO counter (step) SELECT 3 FROM gate")
        op.meta.execute("INSERT INTO counter (step) VALUES (4)")

    def downgrade(op):
        op.meta.execute("DELETE FROM counter WHERE step IN (1, 2, 3, 4)")
'''

COUNTER_BASE = '''
    def upgrade(op):
        op.meta.create_table("counter", sa.Column("step", sa.Integer))

    def downgrade(op):
        op.meta.drop_table("counter")
'''


def test_failing_step_half_applied_then_resumed_without_repeats(make_project, sql_url):
    """With transaction = "step", a step that raises leaves the revision half-applied
    (current says so); rerunning finishes it without re-running done steps."""
    p = make_project({"meta": {"url": sql_url, "transaction": "step"}})
    p.add("c0", None, COUNTER_BASE)
    p.add("c1", "c0", COUNTED)
    r = p.cli("upgrade", "head", "-q", expect=1)
    assert "gate" in r.output and "Traceback" not in r.output
    assert heads(sql_url) == {"c0"}
    cur = p.cli("current").output
    assert "half-applied (2/4 steps)" in cur and "ragrev upgrade" in cur
    # the state that made step 3 fail is fixed; the rerun resumes at step 3
    eng = sa.create_engine(sql_url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE gate (x INTEGER)"))
        c.execute(sa.text("INSERT INTO gate VALUES (1)"))
    eng.dispose()
    p.cli("upgrade", "head", "-q")
    assert heads(sql_url) == {"c1"}
    assert scalar(sql_url, "SELECT COUNT(*) FROM counter") == 4
    assert scalar(sql_url, "SELECT COUNT(DISTINCT step) FROM counter") == 4


def test_downgrade_from_half_applied_restores_the_state_before(make_project, sql_url):
    """Half-applied c1 (2 of 4 steps): ``downgrade c0`` reverts exactly those steps."""
    p = make_project({"meta": {"url": sql_url, "transaction": "step"}})
    p.add("c0", None, COUNTER_BASE)
    p.add("c1", "c0", '''
        def upgrade(op):
            op.meta.add_column("counter", sa.Column("note", sa.String(10)))
            op.meta.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))
            op.meta.execute("INSERT INTO counter (step) SELECT 3 FROM gate")
    ''')
    p.cli("upgrade", "c0", "-q")
    before = snapshot(sql_url)
    p.cli("upgrade", "head", "-q", expect=1)
    assert "extra" in snapshot(sql_url)
    p.cli("downgrade", "c0", "-q")
    assert snapshot(sql_url) == before
    assert "half-applied" not in p.cli("current").output
    assert heads(sql_url) == {"c0"}


def test_revision_transaction_rolls_back_a_failed_revision(make_project, sql_url):
    """Default transaction = "revision": a failing step rolls back the whole revision
    (SQL steps and stamp commit together); nothing is half-applied."""
    p = make_project({"meta": sql_url})
    p.add("c0", None, COUNTER_BASE)
    p.add("c1", "c0", COUNTED)
    p.cli("upgrade", "c0", "-q")
    before = snapshot(sql_url)
    p.cli("upgrade", "head", "-q", expect=1)
    assert heads(sql_url) == {"c0"}
    if sql_url.startswith("mysql"):  # no transactional DDL: each step commits with its journal record
        assert "half-applied (2/4 steps)" in p.cli("current").output
        return
    assert snapshot(sql_url) == before
    assert "half-applied" not in p.cli("current").output


def test_without_transactional_ddl_the_journal_records_each_step_as_it_commits(make_project, sql_url):
    """MySQL/MariaDB commit DDL implicitly: with the default transaction = "revision"
    a failed third step used to leave the journal at 1 of 3 steps done while 2 were
    applied, and the rerun failed with "Duplicate column name 'lang'"."""
    p = make_project({"meta": sql_url})
    p.add("c0", None, COUNTER_BASE)
    p.add("c1", "c0", '''
        def upgrade(op):
            op.meta.add_column("counter", sa.Column("lang", sa.String(8)))
            op.meta.add_column("counter", sa.Column("note", sa.String(10)))
            op.meta.execute("INSERT INTO counter (step) SELECT 3 FROM gate")

        def downgrade(op):
            op.meta.execute("DELETE FROM counter")
            op.meta.drop_column("counter", "note")
            op.meta.drop_column("counter", "lang")
    ''')
    p.cli("upgrade", "c0", "-q")
    before = snapshot(sql_url)
    p.cli("upgrade", "head", "-q", expect=1)
    columns = {c for c, _, _ in snapshot(sql_url)["counter"]["columns"]}
    if sql_url.startswith("mysql"):
        assert {"lang", "note"} <= columns and "half-applied (2/3 steps)" in p.cli("current").output
    else:
        assert snapshot(sql_url) == before
    eng = sa.create_engine(sql_url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE gate (x INTEGER)"))
        c.execute(sa.text("INSERT INTO gate VALUES (1)"))
    eng.dispose()
    p.cli("upgrade", "head", "-q")                       # resumes at step 3: no duplicate column
    assert heads(sql_url) == {"c1"} and scalar(sql_url, "SELECT COUNT(*) FROM counter") == 1
    p.cli("downgrade", "c0", "-q")
    after = snapshot(sql_url)
    assert {c for c, _, _ in after["counter"]["columns"]} == {"step"} and after["counter"]["count"] == 0


def test_edited_operation_is_refused_but_comment_edit_is_not(make_project, sql_url):
    p = chain_project(make_project, sql_url)
    p.cli("upgrade", "head", "-q")
    path = p.revisions / "r2.py"
    original = path.read_text()
    path.write_text(original.replace("def upgrade(op):", "def upgrade(op):\n    # a comment only\n\n")
                    .replace('server_default="en"', 'server_default = "en"'))
    p.cli("upgrade", "head", "-q")  # formatting and comments do not count
    path.write_text(original.replace('server_default="en"', 'server_default="de"'))
    r = p.cli("upgrade", "head", "-q", expect=1)
    assert "r2" in r.output and "edited" in r.output
    p.cli("upgrade", "head", "-q", "--allow-edited")


def test_plan_prints_every_step_and_changes_nothing(make_project, sql_url):
    p = chain_project(make_project, sql_url)
    p.cli("upgrade", "r2", "-q")
    before = snapshot(sql_url), heads(sql_url)
    out = p.cli("upgrade", "head", "--plan").output
    for rev in ("r3", "r4", "r5"):
        assert rev in out
    assert "op.create_table('chunks'" in out and "op.drop_column('docs', 'title')" in out
    assert "batch_alter_table('chunks')" in out
    data = json.loads(p.cli("upgrade", "head", "--plan", "--json").output)
    assert [a["revision"] for a in data["revisions"]] == ["r3", "r4", "r5"]
    assert [len(a["steps"]) for a in data["revisions"]] == [2, 2, 1]
    down = json.loads(p.cli("downgrade", "base", "--plan", "--json").output)
    assert [a["revision"] for a in down["revisions"]] == ["r2", "r1"]
    assert (snapshot(sql_url), heads(sql_url)) == before


def test_irreversible_op_without_downgrade_is_refused_up_front(make_project, sql_url):
    """r1 <- r2(execute, no downgrade) <- r3: ``downgrade base`` names the op and
    reverts nothing, not even r3."""
    p = make_project({"meta": sql_url})
    p.add("r1", None, "def upgrade(op):\n    op.meta.create_table('t', sa.Column('id', sa.Integer, primary_key=True))\n")
    p.add("r2", "r1", "def upgrade(op):\n    op.meta.execute('INSERT INTO t (id) VALUES (1)')\n")
    p.add("r3", "r2", "def upgrade(op):\n    op.meta.add_column('t', sa.Column('x', sa.Integer))\n")
    p.cli("upgrade", "head", "-q")
    before = snapshot(sql_url)
    r = p.cli("downgrade", "base", "-q", expect=2)
    assert "execute" in r.output and "r2" in r.output and "downgrade(op)" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert snapshot(sql_url) == before and heads(sql_url) == {"r3"}


def test_store_added_later_catches_up_alone(make_project, tmp_path, sql_url):
    """Two SQL stores; the second is added to the configuration after r1..r3 ran:
    ``upgrade head`` runs the old revisions' steps on it only."""
    second = f"sqlite:///{tmp_path}/second.db"
    p = make_project({"meta": sql_url})
    body = "def upgrade(op):\n    op.{s}.create_table('t_{r}', sa.Column('id', sa.Integer, primary_key=True))\n"
    p.add("r1", None, body.format(s="meta", r="1"))
    p.cli("upgrade", "head", "-q")
    p2 = make_project({"meta": sql_url, "extra": second}, sub="proj2")
    p2.revisions.rmdir()
    p2.revisions.symlink_to(p.revisions)
    p.add("r2", "r1", "def upgrade(op):\n    op.extra.create_table('only_extra', sa.Column('id', sa.Integer, primary_key=True))\n")
    out = p2.cli("upgrade", "head").output
    assert heads(sql_url) == {"r2"} and heads(second) == {"r2"}
    assert set(snapshot(second)) == {"only_extra"}
    assert set(snapshot(sql_url)) == {"t_1"}
    assert "extra: upgrade r1" in out or '"store": "extra", "revision": "r1"' in out


def test_soft_drop_table_keeps_data_until_purge(make_project, sql_url):
    p = chain_project(make_project, sql_url)
    p.add("r6", "r5", "def upgrade(op):\n    op.meta.drop_table('chunks')\n")
    p.cli("upgrade", "head", "-q")
    trash = [t for t in sa.inspect(sa.create_engine(sql_url)).get_table_names() if t.startswith("ragrev_trash_")]
    assert trash and "chunks" not in snapshot(sql_url)
    p.cli("downgrade", "-1", "-q")
    assert snapshot(sql_url)["chunks"]["count"] == 20
    p.cli("upgrade", "head", "-q")
    out = p.cli("purge").output
    assert "purged ragrev_trash_" in out
    assert not [t for t in sa.inspect(sa.create_engine(sql_url)).get_table_names() if t.startswith("ragrev_trash_")]


def test_stamp_sets_versions_without_running(make_project, sql_url):
    p = chain_project(make_project, sql_url)
    p.cli("stamp", "r3")
    assert heads(sql_url) == {"r3"} and snapshot(sql_url) == {}
    p.cli("stamp", "--purge", "base")
    assert heads(sql_url) == set()


def test_a_half_applied_revision_edited_since_is_neither_finished_nor_reverted(make_project, sql_url):
    """Half-applied c1 whose operations were then edited: ``upgrade`` and
    ``downgrade`` both refuse (exit 1, the revision and the command named)
    and change nothing, since the journal's steps and captured values belong
    to the operations as they were; with the file restored, the downgrade
    reverts exactly the done steps."""
    p = make_project({"meta": {"url": sql_url, "transaction": "step"}})
    p.add("c0", None, COUNTER_BASE)
    p.add("c1", "c0", '''
        def upgrade(op):
            op.meta.add_column("counter", sa.Column("note", sa.String(10)))
            op.meta.execute("INSERT INTO counter (step) SELECT 3 FROM gate")
    ''')
    p.cli("upgrade", "c0", "-q")
    before = snapshot(sql_url)
    p.cli("upgrade", "head", "-q", expect=1)
    half = snapshot(sql_url)
    path = p.revisions / "c1.py"
    original = path.read_text()
    path.write_text(original.replace('"note", sa.String(10)', '"remark", sa.String(10)'))
    for command in (("upgrade", "head"), ("downgrade", "c0")):
        r = p.cli(*command, "-q", expect=1)
        assert "c1 is half-applied and its file changed since" in r.output, r.output
        assert f"ragrev {command[0]}" in r.output and "Traceback" not in r.output
        assert snapshot(sql_url) == half
    path.write_text(original)
    p.cli("downgrade", "c0", "-q")
    assert snapshot(sql_url) == before and heads(sql_url) == {"c0"}
