"""The pytest plugin for users' revisions (issue 16), run through pytester on
a small project: a SQL store (SQLite) and a document store (SecantusDB,
embedded), both fresh per test as the plugin makes them. In the development
environment ragrev is not installed, so the plugin is loaded with
``-p ragrev.pytest_plugin``; an installed ragrev registers it through the
``pytest11`` entry point (checked when ``RAGREV_TEST_INSTALLED`` is set)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ("pytester",)

CONFIG = """\
[ragrev]
script_location = "revisions"

[stores.meta]
url = "sqlite:///./var/meta.db"

[stores.docs]
url = "secantus:///./var/docs"
database = "rag"
"""

R1 = '''
"""sources and documents"""
import sqlalchemy as sa

revision = "r1"
down_revision = None


def upgrade(op):
    op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))
    op.docs.create_collection("documents")
'''

R2 = '''
"""a language on every document"""
import sqlalchemy as sa

revision = "r2"
down_revision = "r1"


def with_lang(doc):
    return {**doc, "lang": doc.get("lang", "en")}


def without_lang(doc):
    return {k: v for k, v in doc.items() if k != "lang"}


def upgrade(op):
    op.meta.add_column("sources", sa.Column("license", sa.String(20)))
    op.docs.transform("documents", with_lang, inverse=without_lang, batch_size=100)
    op.docs.create_index("documents", [("lang", 1)], name="by_lang")
'''

#: a downgrade that forgets the table its upgrade made
LEAKY = '''
"""a table the downgrade forgets"""
import sqlalchemy as sa

revision = "r3"
down_revision = "r2"


def upgrade(op):
    op.meta.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade(op):
    op.meta.execute("SELECT 1")
'''

USER_TEST = '''
def test_r2_gives_every_document_a_language(ragrev_project):
    ragrev_project.upgrade("r1")
    ragrev_project.client("docs").documents.insert_many([{"_id": 1, "text": "a"}, {"_id": 2, "text": "b", "lang": "de"}])
    meta = ragrev_project.client("meta")
    meta.exec_driver_sql("INSERT INTO sources (id, name) VALUES (1, 'help')")
    meta.commit()
    ragrev_project.upgrade("r2")
    docs = ragrev_project.client("docs").documents
    assert [d["lang"] for d in docs.find({}, sort=[("_id", 1)])] == ["en", "de"]
    assert ragrev_project.heads() == {"meta": ("r2",), "docs": ("r2",)}
    ragrev_project.downgrade("base")
    assert ragrev_project.heads() == {"meta": (), "docs": ()}
'''

BUILTIN = "from ragrev.testing import *  # noqa: F401,F403\n"


def project(pytester, *revisions, config=CONFIG, tests=BUILTIN, sum_file=True):
    pytester.makefile(".toml", ragrev=config)
    rev_dir = pytester.mkdir("revisions")
    for i, text in enumerate(revisions, 1):
        (rev_dir / f"r{i}.py").write_text(textwrap.dedent(text).lstrip())
    if sum_file:
        from ragrev.integrity import write_sum

        write_sum(rev_dir)
    pytester.makepyfile(test_revisions=tests)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "ragrev.pytest_plugin", "-p", "no:cacheprovider", *args)


@pytest.mark.slow
def test_builtin_tests_pass_on_good_revisions(pytester):
    result = run(project(pytester, R1, R2), "-v")
    result.assert_outcomes(passed=6)
    for name in ("single_head", "sum_up_to_date", "lint_clean", "upgrade_base_to_head", "stairway",
                 "downgrade_leaves_no_trace"):
        result.stdout.fnmatch_lines([f"*test_ragrev_{name} PASSED*"])


@pytest.mark.slow
def test_a_downgrade_that_leaves_a_table_fails_the_trace_and_stairway_tests(pytester):
    result = run(project(pytester, R1, R2, LEAKY), "-k", "stairway or trace or upgrade")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "store 'meta' after upgrade heads + downgrade base: left behind ['notes'], gone [], changed []" in out
    result.stdout.fnmatch_lines(["*ragrev upgrade r3: */revisions/r3.py:9: store 'meta': revision r3 failed at step 1/1: "
                                 "OperationalError: (sqlite3.OperationalError) table notes already exists"])


def test_two_heads_and_an_old_sum_file_fail_their_tests(pytester):
    other = R2.replace('revision = "r2"', 'revision = "r9"').replace("by_lang", "by_lang2")
    p = project(pytester, R1, R2, sum_file=True)
    (p.path / "revisions" / "r9.py").write_text(textwrap.dedent(other).lstrip())
    result = run(p, "-k", "single_head or sum or lint")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*the revision graph has 2 heads: r2, r9; run: ragrev merge*",
                                 "*revision r9 (r9.py) is not in ragrev.sum*",
                                 "*error ?multiple-heads? the revision graph has 2 heads: r2, r9"])


def test_the_fixture_gives_a_project_at_any_revision(pytester):
    result = run(project(pytester, R1, R2, tests=USER_TEST))
    result.assert_outcomes(passed=1)


def test_test_urls_in_ragrev_toml_choose_a_store(pytester, tmp_path):
    target = tmp_path / "chosen.db"
    config = CONFIG + f'\n[test.urls]\nmeta = "sqlite:///{target}"\n'
    result = run(project(pytester, R1, config=config), "-k", "upgrade_base_to_head")
    result.assert_outcomes(passed=1)
    import sqlite3

    with sqlite3.connect(target) as c:
        assert {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {"sources"}


@pytest.mark.skipif(not os.environ.get("RAGREV_TEST_INSTALLED"), reason="ragrev not installed (CI installs the wheel)")
def test_the_installed_package_registers_the_plugin():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.value == "ragrev.pytest_plugin"]
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True)
    assert "--ragrev-config" in out.stdout, ep
