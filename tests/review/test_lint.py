"""Each lint rule: a revision that triggers it and one that passes, checked
through ``ragrev check --json`` on a project with a SQL, a document and a
vector store (nothing connects: lint reads the recorded plans)."""
from __future__ import annotations

import json
import textwrap

import pytest

from ragrev.lint import RULES, allowed_rules, required_in

CONFIG = """\
[ragrev]
script_location = "revisions"

[stores.meta]
url = "sqlite:///./var/meta.db"

[stores.docs]
url = "secantus:///./var/docs"

[stores.vectors]
url = "milvus-lite:///./var/vectors.db"
"""

SCHEMA = '{"type": "object", "required": ["title", "lang"], "properties": {"title": {"type": "string"}, "lang": {"type": "string"}}}'
FIELDS = '[{"name": "id", "type": "INT64", "primary": True}, {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 4}]'
BASE = f"""
def upgrade(op):
    op.docs.create_collection("documents", schema={SCHEMA})
    op.vectors.create_collection("chunks", fields={FIELDS})
    op.vectors.create_alias("chunks", "live")
    op.meta.create_table("t", sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.Integer))
"""


@pytest.fixture
def lint_project(make_git_project):
    p = make_git_project(CONFIG)
    p.add("base0", None, BASE)
    return p


def findings(p, rev="rev1"):
    """``(rules found for rev, rules allowed for rev, exit code)`` of ``ragrev check``."""
    p.cli("hash")
    result = p.cli("check", "--json", expect=None)
    data = json.loads(result.stdout)
    assert result.exit_code == (4 if data["findings"] else 0)
    got = [f["rule"] for f in data["findings"] if f["revision"] == rev]
    allowed = [f["rule"] for f in data["allowed"] if f["revision"] == rev]
    return got, allowed, data


CASES = {
    # rule: (revision that triggers it, revision that passes)
    "destructive-no-way-back": (
        """
        def upgrade(op):
            op.docs.transform("documents", lambda d: {**d, "title": d["title"].strip()})

        def downgrade(op):
            pass
        """,
        """
        def upgrade(op):
            op.docs.transform("documents", lambda d: {**d, "title": d["title"].strip()},
                              inverse=lambda d: d)
        """,
    ),
    "destructive-no-way-back/sql": (
        """
        def upgrade(op):
            op.meta.execute("DELETE FROM t WHERE x > 3")

        def downgrade(op):
            op.meta.execute("SELECT 1")
        """,
        """
        def upgrade(op):
            op.meta.execute("INSERT INTO t (id, x) VALUES (1, 2)")

        def downgrade(op):
            op.meta.execute("DELETE FROM t WHERE id = 1")
        """,
    ),
    "no-inverse": (
        """
        def upgrade(op):
            op.meta.execute("INSERT INTO t (id, x) VALUES (1, 2)")
        """,
        """
        def upgrade(op):
            op.meta.execute("INSERT INTO t (id, x) VALUES (1, 2)")

        def downgrade(op):
            op.meta.execute("DELETE FROM t WHERE id = 1")
        """,
    ),
    "empty-downgrade": (
        """
        def upgrade(op):
            op.docs.add_field("documents", "views", default=0)

        def downgrade(op):
            pass
        """,
        """
        def upgrade(op):
            op.docs.add_field("documents", "views", default=0)
        """,
    ),
    "unbatched-full-scan": (
        """
        def upgrade(op):
            op.docs.update_many("documents", {}, {"$set": {"views": 0}}, inverse=({}, {"$unset": {"views": ""}}))
        """,
        """
        def upgrade(op):
            op.docs.update_many("documents", {"views": {"$exists": False}}, {"$set": {"views": 0}},
                                inverse=({}, {"$unset": {"views": ""}}))
        """,
    ),
    "unbatched-full-scan/sql": (
        """
        def upgrade(op):
            op.meta.execute("UPDATE t SET x = 0")

        def downgrade(op):
            op.meta.execute("UPDATE t SET x = NULL WHERE x = 0")
        """,
        """
        def upgrade(op):
            op.meta.execute("UPDATE t SET x = 0 WHERE id < 1000")

        def downgrade(op):
            op.meta.execute("UPDATE t SET x = NULL WHERE x = 0")
        """,
    ),
    "drop-required-field": (
        """
        def upgrade(op):
            op.docs.drop_field("documents", "lang")
        """,
        """
        def upgrade(op):
            op.docs.set_schema("documents", {"type": "object", "required": ["title"]})
            op.docs.drop_field("documents", "lang")
        """,
    ),
    "index-without-recall": (
        """
        def upgrade(op):
            op.vectors.drop_index("chunks", "embedding")
            op.vectors.create_index("chunks", "embedding", index_type="HNSW", metric_type="COSINE")
        """,
        """
        def upgrade(op):
            op.vectors.drop_index("chunks", "embedding")
            op.vectors.create_index("chunks", "embedding", index_type="HNSW", metric_type="COSINE")
            op.vectors.check_recall("chunks", k=10, min_recall=0.95)
        """,
    ),
    "alias-switch-unchecked": (
        """
        def upgrade(op):
            op.vectors.copy("chunks", "chunks_v2")
            op.vectors.alter_alias("chunks_v2", "live")
        """,
        """
        def upgrade(op):
            op.vectors.copy("chunks", "chunks_v2")
            op.vectors.expect_count("chunks_v2", expected="chunks")
            op.vectors.alter_alias("chunks_v2", "live")
        """,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_triggers_and_passes(lint_project, case):
    rule = case.split("/")[0]
    bad, good = CASES[case]
    p = lint_project
    p.add("rev1", "base0", textwrap.dedent(bad))
    got, _, data = findings(p)
    assert rule in got, data["findings"]
    hit = next(f for f in data["findings"] if f["rule"] == rule)
    assert hit["severity"] == RULES[rule].severity and hit["fix"] == RULES[rule].fix
    assert hit["path"] == "revisions/rev1.py" and hit["line"] and hit["line"] > 10

    p.add("rev1", "base0", textwrap.dedent(good))
    got, _, data = findings(p)
    assert rule not in got, data["findings"]


@pytest.mark.parametrize("case", ["no-inverse", "destructive-no-way-back", "drop-required-field"])
def test_a_revision_suppresses_a_rule_with_a_comment(lint_project, case):
    p = lint_project
    bad = textwrap.dedent(CASES[case][0])
    p.add("rev1", "base0", f"# the loss is intended  # ragrev: allow {case}, some-other-rule\n" + bad)
    got, allowed, data = findings(p)
    assert case not in got and case in allowed


def test_drop_required_field_follows_schemas_through_earlier_revisions(lint_project):
    p = lint_project
    p.add("rev1", "base0", 'def upgrade(op):\n    op.docs.rename_collection("documents", "docs_v2")')
    p.add("rev2", "rev1", 'def upgrade(op):\n    op.docs.drop_field("docs_v2", "title")')
    assert findings(p, "rev2")[0] == ["drop-required-field"]
    p.add("rev1", "base0", 'def upgrade(op):\n    op.docs.set_validator("documents", None)\n'
          '    op.docs.rename_collection("documents", "docs_v2")')
    assert findings(p, "rev2")[0] == []


def test_one_index_finding_per_collection_and_new_collections_need_none(lint_project):
    p = lint_project
    p.add("rev1", "base0", f"""
def upgrade(op):
    op.vectors.drop_index("chunks", "embedding")
    op.vectors.create_index("chunks", "embedding", index_type="HNSW", metric_type="COSINE")
    op.vectors.create_collection("fresh", fields={FIELDS})
    op.vectors.drop_index("fresh", "embedding")
    op.vectors.create_index("fresh", "embedding", index_type="HNSW", metric_type="IP")
""")
    got, _, data = findings(p)
    assert got == ["index-without-recall"] and data["findings"][0]["line"] == 16  # the last change to chunks


def test_an_alias_dropped_and_created_again_is_a_switch(lint_project):
    p = lint_project
    p.add("rev1", "base0", """
def upgrade(op):
    op.vectors.copy("chunks", "chunks_v2")
    op.vectors.drop_alias("live")
    op.vectors.create_alias("chunks_v2", "live")
    op.vectors.create_alias("chunks_v2", "other")
""")
    assert findings(p)[0] == ["alias-switch-unchecked"]


def test_required_in_nested_and_wrapped_schemas():
    schema = {"$jsonSchema": {"properties": {"meta": {"type": "object", "required": ["src"]}}, "required": ["meta"]}}
    assert required_in(schema, "meta") and required_in(schema, "meta.src")
    assert not required_in(schema, "meta.other") and not required_in(schema, "src")


def test_allow_comments_parse():
    text = "x = 1  # ragrev: allow no-inverse,  Empty-Downgrade\n# ragrev:allow multiple-heads\n"
    assert allowed_rules(text) == {"no-inverse", "empty-downgrade", "multiple-heads"}


def test_multiple_heads(lint_project):
    p = lint_project
    p.add("rev1", "base0")
    p.add("rev2", "base0")
    _, _, data = findings(p, None)
    heads = [f for f in data["findings"] if f["rule"] == "multiple-heads"]
    assert len(heads) == 1 and heads[0]["message"] == "the revision graph has 2 heads: rev1, rev2"
    assert heads[0]["fix"] == 'ragrev merge -m "merge heads" rev1 rev2'

    # intended: a second line with a branch label of its own
    p.add("rev2", None, "branch_labels = 'side'\n\ndef upgrade(op):\n    pass")
    _, _, data = findings(p, None)
    assert not [f for f in data["findings"] if f["rule"] == "multiple-heads"]
    assert data["heads"] == ["rev1", "rev2"]

    # or allowed in a head's file
    p.add("rev2", "base0", "# ragrev: allow multiple-heads\ndef upgrade(op):\n    pass")
    _, _, data = findings(p, None)
    assert data["ok"] and [f["rule"] for f in data["allowed"]] == ["multiple-heads"]


def test_check_reports_graph_problems_and_broken_files(lint_project):
    p = lint_project
    p.add("rev1", "nope")
    data = json.loads(p.cli("check", "--json", expect=4).stdout)
    assert [(f["rule"], f["message"]) for f in data["findings"]] == [
        ("graph", "revision 'rev1' names unknown down_revision 'nope'")]

    p.add("rev1", "rev2")
    p.add("rev2", "rev1")
    out = p.cli("check", expect=4).stdout
    assert "[graph] cycle in the revision graph" in out

    p.add("rev1", "base0", "def upgrade(op):\n    op.docs.no_such_op('x')")
    p.add("rev2", "base0", "revision = 'base0'", name="rev2")
    data = json.loads(p.cli("check", "--json", expect=4).stdout)
    rules = sorted(f["rule"] for f in data["findings"])
    assert rules == ["graph"]  # duplicate id first; nothing is linted on a broken graph
    (p.revisions / "rev2.py").unlink()
    data = json.loads(p.cli("check", "--json", expect=4).stdout)
    assert [f["rule"] for f in data["findings"] if f["revision"] == "rev1"] == ["load-error"]
    assert "has no operation 'no_such_op'" in data["findings"][-1]["message"]
