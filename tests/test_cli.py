"""The commands that need no store: ``init``, ``revision``, ``merge``, ``heads``,
``branches``, ``history``, ``show`` (and ``--json`` on the read commands).

Most tests use one fixed graph (:data:`GRAPH`) and check the exact text,
which imitates Alembic's (``tests/test_cli_vs_alembic.py`` compares the two
on random graphs)::

    a1 <-- a2 <------- m1      m1 merges a2 and b1
       \\             /
        `-- b1 <----'          b1 carries the branch label "feature"
             :
    c1 ......'                 c1 is a second base; depends_on = "feature"
"""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from ragrev.cli import cli
from ragrev.config import load_config
from ragrev.script import ScriptDirectory, read_header

A1, A2, B1, M1, C1 = (x * 6 for x in ("a1", "a2", "b1", "m1", "c1"))
GRAPH = [  # (file, revision, down_revision, message, header extras)
    ("a1", A1, None, "create tables", {}),
    ("a2", A2, A1, "add index", {}),
    ("b1", B1, A1, "feature work", {"branch_labels": "feature"}),
    ("m1", M1, (A2, B1), "merge feature", {}),
    ("c1", C1, None, "other base", {"depends_on": "feature"}),
]
HEX12 = re.compile(r"^[0-9a-f]{12}$")


def run(*args, expect=0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


@pytest.fixture
def proj(make_project):
    """An empty project with one SQLite store (never opened by these commands)."""
    return make_project({"meta": "sqlite:///./var/meta.db"})


@pytest.fixture
def graph(proj):
    for name, rid, down, message, extra in GRAPH:
        proj.add(rid, down, "def upgrade(op):\n    pass", message=f"{message}\n\nMore words.\n", name=name, **extra)
    return proj


def out(proj, *args) -> str:
    return proj.cli(*args).stdout.replace(str(proj.revisions), "DIR")


# --- init ---------------------------------------------------------------------------------

def test_init_writes_a_generic_project(tmp_path):
    result = run("init", str(tmp_path / "p"))
    assert "created" in result.stdout and "ragrev revision" in result.stdout
    assert (tmp_path / "p" / "revisions").is_dir()
    config = load_config(tmp_path / "p" / "ragrev.toml", environ={})
    assert config.script_location == tmp_path / "p" / "revisions"
    assert {n: s.kind for n, s in config.stores.items()} == {"meta": "sql"}
    assert config.stores["meta"].url == f"sqlite:///{tmp_path}/p/var/meta.db"  # relative to ragrev.toml


def test_init_multistore_names_a_store_of_each_kind(tmp_path):
    run("init", str(tmp_path / "p"), "--template", "multistore")
    config = load_config(tmp_path / "p" / "ragrev.toml", environ={"DOCS_URL": "mongodb://h:27017"})
    assert {n: s.kind for n, s in config.stores.items()} == {"vectors": "milvus", "docs": "mongo", "meta": "sql"}
    assert config.stores["docs"].url == "mongodb://h:27017" and config.stores["docs"].options == {"database": "rag"}
    assert config.stores["vectors"].url.startswith(f"milvus-lite:///{tmp_path}/p/var/")


def test_init_refuses_to_overwrite_and_unknown_templates(tmp_path):
    run("init", str(tmp_path / "p"))
    before = (tmp_path / "p" / "ragrev.toml").read_text()
    r = run("init", str(tmp_path / "p"), "--template", "multistore", expect=2)
    assert r.stderr.count("\n") == 1 and "already exists" in r.stderr
    assert (tmp_path / "p" / "ragrev.toml").read_text() == before
    r = run("init", str(tmp_path / "q"), "-t", "nope", expect=2)
    assert r.stderr == "ragrev: error: no template 'nope'; available: chat-archive, generic, merge, multistore\n"
    assert not (tmp_path / "q").exists()


# --- revision / merge ---------------------------------------------------------------------

def test_revision_chain_from_the_template(tmp_path):
    root = tmp_path / "p"
    run("init", str(root))
    cfg = str(root / "ragrev.toml")
    first = run("-c", cfg, "revision", "-m", "Create the Tables!").stdout
    (path1,) = (root / "revisions").glob("*.py")
    assert first == f"  Generating {path1} ... done\n"
    rid1, slug = path1.stem.split("_", 1)
    assert HEX12.match(rid1) and slug == "create_the_tables"
    run("-c", cfg, "revision", "-m", "second")
    (path2,) = set((root / "revisions").glob("*.py")) - {path1}
    s1, s2 = read_header(path1), read_header(path2)
    assert s1.revision == rid1 and s1.message == "Create the Tables!" and s1.down_revision == ()
    assert HEX12.match(s2.revision) and s2.down_revision == (rid1,) and path2.name == f"{s2.revision}_second.py"
    text = s2.path.read_text()
    assert f"Revises: {rid1}\n" in text and f'down_revision = {rid1!r}' in text
    assert "op.meta.add_column(" in text  # a hint for the project's SQL store
    scripts = ScriptDirectory(root / "revisions")
    scripts.load_all()  # the generated files are valid Python
    assert all(callable(s.upgrade) and s.downgrade is None for s in scripts.scripts)  # derived downgrade
    assert run("-c", cfg, "heads").stdout == f"{s2.revision} (head)\n"


def test_revision_options(graph):
    p = graph
    p.cli("revision", "-m", "new base", "--head", "base", "--rev-id", "0123456789ab", "--branch-label", "side")
    s = read_header(p.revisions / "0123456789ab_new_base.py")
    assert s.down_revision == () and s.branch_labels == ("side",)
    # a prefix and a label as parents; depends_on keeps labels and expands prefixes
    p.cli("revision", "-m", "on side", "--head", "side@head", "--rev-id", "0123456789ac",
          "--depends-on", "feature", "--depends-on", "a2a2")
    s = read_header(p.revisions / "0123456789ac_on_side.py")
    assert s.down_revision == ("0123456789ab",) and s.depends_on == ("feature", A2)
    # from a revision that is not a head: a new branch
    p.cli("revision", "-m", "fork", "--head", "a2a2", "--rev-id", "0123456789ad")
    assert read_header(p.revisions / "0123456789ad_fork.py").down_revision == (A2,)
    assert p.cli("heads").stdout.split() == [
        "0123456789ac", "(side)", "(head)", "0123456789ad", "(head)", C1, "(head)", M1, "(feature)", "(head)"]


def test_revision_templates_shipped_and_the_projects_own(proj):
    proj.cli("revision", "-m", "archive", "--template", "chat-archive", "--rev-id", "aaaaaaaaaaaa")
    text = (proj.revisions / "aaaaaaaaaaaa_archive.py").read_text()
    assert 'op.meta.chats("conversations"' in text and "down_revision = None" in text
    own = proj.root / "templates" / "mine"
    own.mkdir(parents=True)
    (own / "revision.py.tmpl").write_text('"""${message}"""\nrevision = "${rev_id}"\n'
                                          "down_revision = ${down_revision}\n# house style\n")
    proj.cli("revision", "-m", "mine", "-t", "mine", "--rev-id", "bbbbbbbbbbbb")
    assert (proj.revisions / "bbbbbbbbbbbb_mine.py").read_text() == \
        '"""mine"""\nrevision = "bbbbbbbbbbbb"\ndown_revision = \'aaaaaaaaaaaa\'\n# house style\n'


def test_file_template_names_files(make_project):
    p = make_project({"meta": "sqlite:///./m.db"}, options='file_template = "{year}{month}{day}-{slug}-{rev}"')
    p.cli("revision", "-m", "Add users", "--rev-id", "cafecafecafe")
    (path,) = p.revisions.glob("*.py")
    assert re.fullmatch(r"20\d{6}-add_users-cafecafecafe\.py", path.name)


def test_merge_heads_and_named_revisions(graph):
    p = graph
    assert "Generating" in p.cli("merge", "-m", "join all", "heads", "--rev-id", "dddddddddddd").stdout
    s = read_header(p.revisions / "dddddddddddd_join_all.py")
    assert s.down_revision == (C1, M1) and "Revises: c1c1c1c1c1c1, m1m1m1m1m1m1\n" in s.path.read_text()
    assert p.cli("heads").stdout == "dddddddddddd (feature) (head)\n"
    assert out(p, "history", "-r", "m1m1:").splitlines()[0] == \
        "c1c1c1c1c1c1, m1m1m1m1m1m1 -> dddddddddddd (feature) (head) (mergepoint), join all"
    # explicit revisions, by prefix and label, make a second merge of the same pair
    p.cli("merge", "-m", "again", "a2a2", "feature", "--rev-id", "eeeeeeeeeeee")
    assert read_header(p.revisions / "eeeeeeeeeeee_again.py").down_revision == (A2, B1)


# --- read commands: exact text --------------------------------------------------------------

def test_heads(graph):
    assert out(graph, "heads") == "c1c1c1c1c1c1 (head)\nm1m1m1m1m1m1 (feature) (head)\n"
    assert out(graph, "heads", "-v") == (
        "Rev: c1c1c1c1c1c1 (head)\nParent: <base>\nAlso depends on: feature\nPath: DIR/c1.py\n\n"
        "    other base\n    \n    More words.\n\n"
        "Rev: m1m1m1m1m1m1 (head) (mergepoint)\nMerges: a2a2a2a2a2a2, b1b1b1b1b1b1\nBranch names: feature\n"
        "Path: DIR/m1.py\n\n    merge feature\n    \n    More words.\n\n")


def test_branches(graph):
    assert out(graph, "branches") == (
        "a1a1a1a1a1a1 (branchpoint)\n"
        "             -> a2a2a2a2a2a2\n"
        "             -> b1b1b1b1b1b1 (feature)\n\n")
    assert out(graph, "branches", "-v") == (
        "Rev: a1a1a1a1a1a1 (branchpoint)\nParent: <base>\nBranches into: a2a2a2a2a2a2, b1b1b1b1b1b1\n"
        "Path: DIR/a1.py\n\n    create tables\n    \n    More words.\n\n"
        "             -> a2a2a2a2a2a2, add index\n"
        "             -> b1b1b1b1b1b1 (feature), feature work\n\n")


def test_history(graph):
    assert out(graph, "history") == (
        "<base> (feature) -> c1c1c1c1c1c1 (head), other base\n"
        "a2a2a2a2a2a2, b1b1b1b1b1b1 -> m1m1m1m1m1m1 (feature) (head) (mergepoint), merge feature\n"
        "a1a1a1a1a1a1 -> a2a2a2a2a2a2, add index\n"
        "a1a1a1a1a1a1 -> b1b1b1b1b1b1 (feature), feature work\n"
        "<base> -> a1a1a1a1a1a1 (branchpoint), create tables\n")
    assert out(graph, "history", "-r", "base:a2a2") == (
        "a1a1a1a1a1a1 -> a2a2a2a2a2a2, add index\n"
        "<base> -> a1a1a1a1a1a1 (branchpoint), create tables\n")
    assert out(graph, "history", "-r", "a2:") == (
        "a2a2a2a2a2a2, b1b1b1b1b1b1 -> m1m1m1m1m1m1 (feature) (head) (mergepoint), merge feature\n"
        "a1a1a1a1a1a1 -> a2a2a2a2a2a2, add index\n")
    assert out(graph, "history", "-r", ":feature") == (
        "a1a1a1a1a1a1 -> b1b1b1b1b1b1 (feature), feature work\n"
        "<base> -> a1a1a1a1a1a1 (branchpoint), create tables\n")
    assert out(graph, "history", "-v", "-r", "c1:") == (
        "Rev: c1c1c1c1c1c1 (head)\nParent: <base>\nAlso depends on: feature\nPath: DIR/c1.py\n\n"
        "    other base\n    \n    More words.\n\n")


def test_show(graph):
    feature = ("Rev: b1b1b1b1b1b1\nParent: a1a1a1a1a1a1\nBranch names: feature\nPath: DIR/b1.py\n\n"
               "    feature work\n    \n    More words.\n\n")
    assert out(graph, "show", "feature") == feature
    assert out(graph, "show", "b1") == feature
    assert out(graph, "show", "feature@head").startswith("Rev: m1m1m1m1m1m1 (head) (mergepoint)\n")
    assert out(graph, "show", "a2a2-1") == out(graph, "show", "a1")
    assert [ln for ln in out(graph, "show", "heads").splitlines() if ln.startswith("Rev:")] == \
        ["Rev: c1c1c1c1c1c1 (head)", "Rev: m1m1m1m1m1m1 (head) (mergepoint)"]
    assert [ln for ln in out(graph, "show", "base").splitlines() if ln.startswith("Rev:")] == \
        ["Rev: a1a1a1a1a1a1 (branchpoint)", "Rev: c1c1c1c1c1c1 (head)"]


def test_an_empty_project(proj):
    for cmd in ("heads", "branches", "history"):
        assert proj.cli(cmd).stdout == ""
        assert _revs(proj.cli(cmd, "--json").stdout) == []


# --- --json -------------------------------------------------------------------------------------

def _revs(stdout: str) -> list:
    doc = json.loads(stdout)
    assert doc["schema_version"] == 1, doc
    return doc["revisions"]


def test_json_output(graph):
    heads = _revs(graph.cli("heads", "--json").stdout)
    assert [h["revision"] for h in heads] == [C1, M1]
    m1 = heads[1]
    assert m1 == {
        "revision": M1, "down_revision": [A2, B1], "branch_labels": [], "depends_on": [],
        "message": "merge feature", "path": str(graph.revisions / "m1.py"), "is_head": True,
        "is_branch_point": False, "is_merge_point": True, "children": [],
    }
    (a1,) = _revs(graph.cli("branches", "--json").stdout)
    assert a1["revision"] == A1 and a1["is_branch_point"] and a1["children"] == [A2, B1]
    hist = _revs(graph.cli("history", "--json", "-r", "base:a2").stdout)
    assert [(h["revision"], h["current_in"]) for h in hist] == [(A2, []), (A1, [])]
    (b1,) = _revs(graph.cli("show", "feature", "--json").stdout)
    assert b1["branch_labels"] == ["feature"] and b1["children"] == [M1] and not b1["is_head"]
    (c1,) = _revs(graph.cli("show", "c1", "--json").stdout)
    assert c1["depends_on"] == ["feature"] and c1["down_revision"] == []


def test_format_json_is_json_and_both_spellings_agree(graph):
    assert graph.cli("heads", "--format", "json").stdout == graph.cli("heads", "--json").stdout
    doc = json.loads(graph.cli("heads", "--format", "json").stdout)
    assert doc["kind"] == "heads" and doc["schema_version"] == 1
    assert graph.cli("heads", "--format", "text").stdout == graph.cli("heads").stdout
