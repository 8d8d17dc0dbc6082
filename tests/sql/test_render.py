"""A SQL operation's code (its checksum input, description and plan line) is
what Alembic's ``render_python_code`` gives, byte for byte, whether ragrev
renders it on its reused context or, for a plain ``create_index``, itself."""
import textwrap

import pytest
import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops as aops

from ragrev.ops import sql


def alembic_code(mops, batch_table=None):
    if batch_table is not None:
        container = aops.UpgradeOps(ops=[aops.ModifyTableOps(batch_table, list(mops))])
        code = render_python_code(container, render_as_batch=True)
    else:
        code = render_python_code(aops.UpgradeOps(ops=list(mops)))
    lines = [ln for ln in code.splitlines() if not ln.strip().startswith("# ###")]
    return textwrap.dedent("\n".join(lines)).strip()


INDEXES = [
    aops.CreateIndexOp("ix_t_name", "t", ["name"]),
    aops.CreateIndexOp("ix_t_ab", "t", ["a", "b"], unique=True),
    aops.CreateIndexOp("ix_t_a", "t", ["a"], unique=False),
    aops.CreateIndexOp("ix_t_a", "t", ["a"], schema="s"),
    aops.CreateIndexOp("ix_t_a", "t", ["a"], if_not_exists=True),
    aops.CreateIndexOp("ix_t_a", "t", ["a"], postgresql_using="gin"),
    aops.CreateIndexOp("ix weird", "t t", ["a b"]),
    aops.CreateIndexOp("ix_t_lower", "t", [sa.text("lower(name)")]),
    aops.CreateIndexOp("ix_é", "tablé", ["nämé"]),
    aops.CreateIndexOp(None, "t", ["a"]),
]


@pytest.mark.parametrize("mop", INDEXES, ids=lambda m: repr(m.index_name))
def test_create_index_code_is_alembics(mop):
    assert sql._render_one(mop) == alembic_code([mop])


def test_plain_index_takes_the_fast_path_only_for_plain_names():
    assert sql._plain_index(INDEXES[0]) == "op.create_index('ix_t_name', 't', ['name'], unique=False)"
    assert [sql._plain_index(m) is not None for m in INDEXES] == [True, True, True] + [False] * 7


OTHERS = [
    aops.CreateTableOp("t", [sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50))]),
    aops.AddColumnOp("t", sa.Column("n", sa.Integer, server_default="0", nullable=False)),
    aops.AlterColumnOp("t", "name", modify_name="title"),
    aops.DropColumnOp("t", "n"),
    aops.DropTableOp("t"),
    aops.ExecuteSQLOp("UPDATE t SET n = 1"),
]


@pytest.mark.parametrize("mop", OTHERS, ids=lambda m: type(m).__name__)
def test_other_codes_are_alembics_on_the_reused_context(mop):
    assert sql._render_one(mop) == alembic_code([mop])
    assert sql._render_one(mop) == alembic_code([mop])  # the context keeps nothing between renders


def test_batch_code_is_alembics_and_leaves_the_plain_context_plain():
    mops = [aops.AddColumnOp("t", sa.Column("n", sa.Integer)), aops.CreateIndexOp("ix_t_n", "t", ["n"])]
    assert sql.render(mops, batch_table="t") == alembic_code(mops, batch_table="t")
    assert sql.render([INDEXES[6]]) == alembic_code([INDEXES[6]])
