"""The vector family's one vocabulary on pgvector, through the CLI: expect_count
bounds and same_as, drop_index by index_name, rename_collection in both
spellings (the former one warned about), and the downgrade back."""
from __future__ import annotations

from tests.helpers.pgvector import run, sql
from tests.pgvector.test_pgvector import CREATE

VOCAB = """
def upgrade(op):
    op.vec.expect_count("chunks", at_least=400, at_most=400)
    op.vec.copy("chunks", "twin", batch_size=200)
    op.vec.expect_count("twin", same_as="chunks")
    op.vec.drop_index("twin", index_name="embedding")
    op.vec.rename_collection(old="twin", new="twin_a")
    op.vec.rename_collection("twin_a", new_name="twin_b")
    op.vec.expect_count("twin_b", count=100, filter="id < 100")
"""

FAILS = """
def upgrade(op):
    op.vec.expect_count("chunks", at_most=399)
"""


def test_vocabulary_up_and_down(project):
    p = project({"r1": CREATE, "r2": VOCAB})
    up = run(p, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert "r2.py:12: rename_collection(old=...) is deprecated: write rename_collection(collection=...)" in up.stderr
    assert sql(p, "SELECT count(*) FROM twin_b") == [(400,)]
    assert sql(p, "SELECT count(*) FROM pg_indexes WHERE tablename = 'twin_b' AND indexdef LIKE '%embedding%'") \
        == [(0,)]
    down = run(p, "downgrade", "r1")
    assert down.returncode == 0, down.stderr
    assert sql(p, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'twin%'") == [(0,)]


def test_a_bound_not_met_fails_the_check(project):
    p = project({"r1": CREATE, "r2": FAILS})
    up = run(p, "upgrade", "head")
    assert up.returncode == 1, up.stderr
    assert "expect_count: 'chunks' has 400 rows, expected at most 399" in up.stderr
