"""Bad input through the CLI (docs/reliability.md): one line on stderr, exit code 2.

Every case is a row of ``CASES``: the revision files and ``ragrev.toml`` of a
project, the command line, and regular expressions the one error line must
match. The test writes the project into a temporary directory, runs the
command with click's ``CliRunner``, and checks that

- the exit code is 2 and nothing was printed on stdout;
- stderr is exactly one line, ``ragrev: error: ...``, matching every pattern
  (file and line where there is one);
- no exception escaped (no traceback), and nothing was written to the store
  (the default store's SQLite file, if a command opened it, holds no table).

To add a case, append a :class:`Case`. ``files`` maps a file name under
``revisions/`` to its text (:func:`rev` writes the usual header); ``toml``
replaces the configuration (``None``: write none); ``args`` may use
``{root}`` (the project directory) and ``{cfg}`` (its ``ragrev.toml``); with
``config=True`` (default) ``-c {cfg}`` is put in front.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from ragrev.cli import cli

TOML = '[ragrev]\nscript_location = "revisions"\n\n[stores.meta]\nurl = "sqlite:///./var/meta.db"\n'


def rev(revision, down=None, *, depends_on=None, labels=None, doc=None, body="def upgrade(op):\n    pass\n"):
    """The text of a revision file with a literal header."""
    return (f'"""{doc or "revision " + str(revision)}"""\n'
            f"revision = {revision!r}\ndown_revision = {down!r}\n"
            f"branch_labels = {labels!r}\ndepends_on = {depends_on!r}\n\n\n{body}")


def chain(*ids):
    """Files for a linear chain of revisions ``ids[0] <- ids[1] <- ...``."""
    return {f"{r}.py": rev(r, ids[i - 1] if i else None) for i, r in enumerate(ids)}


#   aaa1 <-- aaa2 (head)
#       \
#        `-- bbb1 (label 'feat') <-- bbb2 (head)
BRANCHED = {**chain("aaa1", "aaa2"), "bbb1.py": rev("bbb1", "aaa1", labels="feat"), "bbb2.py": rev("bbb2", "bbb1")}


@dataclass
class Case:
    id: str
    args: list[str]
    expect: list[str]
    files: dict[str, str] = field(default_factory=dict)
    toml: str | None = TOML
    env: dict[str, str] = field(default_factory=dict)
    config: bool = True


CASES = [
    # --- revision files ---------------------------------------------------------------------
    Case("syntax-error-in-header", ["heads"], [r"revisions/bad\.py:3: syntax error"],
         {"bad.py": '"""x"""\nrevision = "aaa1"\ndown_revision = ("zzz"\n'}),
    Case("syntax-error-in-body-on-upgrade", ["upgrade", "head", "--plan"], [r"revisions/aaa1\.py:9: syntax error"],
         {"aaa1.py": rev("aaa1", body="def upgrade(op):\n    x = (\n")}),
    Case("import-error-names-line", ["upgrade", "head", "--plan"],
         [r"revisions/aaa1\.py:10: fails to import: NameError: name 'undefined_name'"],
         {"aaa1.py": rev("aaa1", body="def upgrade(op):\n    pass\nundefined_name\n")}),
    Case("missing-revision", ["heads"], [r"revisions/norev\.py: no 'revision = \"<id>\"'"],
         {"norev.py": '"""no id"""\ndown_revision = None\n\ndef upgrade(op):\n    pass\n'}),
    Case("empty-revision-id", ["heads"], [r"revisions/e\.py: 'revision' must be a non-empty string"],
         {"e.py": rev("")}),
    Case("down-revision-not-a-string", ["history"], [r"revisions/n\.py: 'down_revision' must be None"],
         {"n.py": rev("aaa1", 5)}),
    Case("missing-upgrade-function", ["upgrade", "head", "--plan"], [r"aaa1\.py: defines no upgrade\(op\)"],
         {"aaa1.py": rev("aaa1", body="def downgrade(op):\n    pass\n")}),
    Case("duplicate-ids", ["heads"], [r"duplicate revision id 'aaa1'", r"one\.py", r"two\.py"],
         {"one.py": rev("aaa1"), "two.py": rev("aaa1")}),
    Case("cycle", ["history"], [r"cycle in the revision graph: aaa1 -> aaa2 -> aaa1"],
         {"a.py": rev("aaa1", "aaa2"), "b.py": rev("aaa2", "aaa1")}),
    Case("cycle-through-depends-on", ["heads"], [r"cycle in the revision graph: aaa1 -> aaa2 -> ccc1 -> aaa1"],
         {"a.py": rev("aaa1", depends_on="ccc1"), "b.py": rev("aaa2", "aaa1"), "c.py": rev("ccc1", "aaa2")}),
    Case("unknown-down-revision", ["heads"], [r"revision 'aaa2' names unknown down_revision 'nope'"],
         {**chain("aaa1"), "x.py": rev("aaa2", "nope")}),
    Case("unknown-depends-on", ["branches"], [r"revision 'aaa2' names unknown depends_on 'zzz9'"],
         {**chain("aaa1"), "x.py": rev("aaa2", "aaa1", depends_on="zzz9")}),
    Case("ambiguous-depends-on-prefix", ["heads"], [r"ambiguous revision prefix 'aaa': matches aaa1, aaa2"],
         {**chain("aaa1", "aaa2"), "c.py": rev("ccc1", depends_on="aaa")}),
    Case("illegal-char-in-id", ["heads"], [r"bad\.py: revision id 'a-b' contains one of"], {"bad.py": rev("a-b")}),
    Case("reserved-id", ["heads"], [r"revision id 'head' is a reserved word"], {"h.py": rev("head")}),
    Case("duplicate-branch-label", ["heads"], [r"branch label 'feat' of revision 'bbb3' is already used by revision 'bbb1'"],
         {**BRANCHED, "x.py": rev("bbb3", "aaa2", labels="feat")}),
    Case("no-revision-directory", ["heads"], [r"no revision directory at .*nowhere \(script_location\)"],
         toml=TOML.replace('"revisions"', '"nowhere"')),

    # --- targets and ranges ------------------------------------------------------------------
    Case("ambiguous-prefix", ["show", "aaa"], [r"ambiguous revision prefix 'aaa': matches aaa1, aaa2"], BRANCHED),
    Case("unknown-revision", ["show", "zzz"], [r"no such revision 'zzz'"], BRANCHED),
    Case("multiple-heads-show-head", ["show", "head"], [r"multiple heads \(aaa2, bbb2\) where 'head' needs one"],
         BRANCHED),
    Case("multiple-heads-history-range", ["history", "-r", "base:head"], [r"multiple heads \(aaa2, bbb2\)"], BRANCHED),
    Case("multiple-heads-new-revision", ["revision", "-m", "x"], [r"multiple heads \(aaa2, bbb2\)"], BRANCHED),
    Case("multiple-heads-upgrade-head", ["upgrade", "head", "--plan"], [r"multiple heads \(aaa2, bbb2\)"], BRANCHED),
    Case("walk-past-head", ["show", "aaa2+1"], [r"target 'aaa2\+1' is not reachable: walks past head aaa2"],
         BRANCHED),
    Case("walk-at-branch-point", ["show", "aaa1+1"], [r"branch point aaa1 has several children"], BRANCHED),
    Case("walk-past-base", ["show", "aaa1-2"], [r"walks past base"], BRANCHED),
    Case("revision-off-the-branch", ["show", "feat@aaa2"], [r"aaa2 is not on the branch of 'feat'"], BRANCHED),
    Case("range-lower-not-ancestor", ["history", "-r", "bbb1:aaa2"], [r"bbb1 is not an ancestor of aaa2"],
         BRANCHED),
    Case("range-without-colon", ["history", "-r", "aaa1"], [r"a history range is LOWER:UPPER"], BRANCHED),
    Case("unparsable-target", ["show", "a@b@c"], [r"cannot parse target 'a@b@c'"], BRANCHED),

    # --- commands that write files -----------------------------------------------------------
    Case("revision-id-taken", ["revision", "-m", "x", "--rev-id", "aaa2", "--head", "aaa2"],
         [r"revision id 'aaa2' already exists"], BRANCHED),
    Case("revision-id-illegal", ["revision", "-m", "x", "--rev-id", "a:b", "--head", "aaa2"],
         [r"revision id 'a:b' contains one of"], BRANCHED),
    Case("branch-label-taken", ["revision", "-m", "x", "--head", "aaa2", "--branch-label", "feat"],
         [r"branch label 'feat'"], BRANCHED),
    Case("unknown-head", ["revision", "-m", "x", "--head", "nope"], [r"no such revision 'nope'"], BRANCHED),
    Case("unknown-depends-on-option", ["revision", "-m", "x", "--head", "aaa2", "--depends-on", "nope"],
         [r"no such revision 'nope'"], BRANCHED),
    Case("unknown-revision-template", ["revision", "-m", "x", "--head", "aaa2", "--template", "nope"],
         [r"no template 'nope'; available: .*generic"], BRANCHED),
    Case("merge-of-one", ["merge", "-m", "m", "aaa2"], [r"merge needs at least two revisions"], BRANCHED),
    Case("merge-unknown", ["merge", "-m", "m", "aaa2", "nope"], [r"no such revision 'nope'"], BRANCHED),
    Case("init-unknown-template", ["init", "{root}/new", "--template", "nope"],
         [r"no template 'nope'; available: .*multistore"], config=False),
    Case("init-revision-only-template", ["init", "{root}/new", "--template", "merge"],
         [r"template 'merge' is a revision template only; project templates: generic, multistore"], config=False),
    Case("init-over-a-project", ["init", "{root}"], [r"ragrev\.toml already exists"], config=False),

    # --- configuration -------------------------------------------------------------------------
    Case("no-config", ["heads"], [r"no configuration at .*ragrev\.toml"], toml=None),
    Case("bad-toml", ["heads"], [r"ragrev\.toml: .*line 1"], toml="[ragrev\nscript_location = 1\n"),
    Case("unknown-url-scheme", ["heads"], [r"unknown URL scheme 'foo' in 'foo://u:\*\*\*@h/x'"],
         toml=TOML.replace("sqlite:///./var/meta.db", "foo://u:secret@h/x")),
    Case("not-a-url", ["heads"], [r"not a URL: 'meta\.db'"], toml=TOML.replace("sqlite:///./var/meta.db", "meta.db")),
    Case("missing-env-var", ["heads"], [r"environment variable RAGREV_TEST_UNSET_VAR is not set"],
         toml=TOML.replace("sqlite:///./var/meta.db", "${RAGREV_TEST_UNSET_VAR}")),
    Case("store-without-url", ["heads"], [r"\[stores\.meta\]: needs url"],
         toml='[ragrev]\nscript_location = "revisions"\n[stores.meta]\ndatabase = "x"\n'),
    Case("store-name-not-identifier", ["heads"], [r"\[stores\.my-store\]: store names must be Python identifiers"],
         toml=TOML.replace("stores.meta", 'stores."my-store"')),
    Case("unknown-section", ["heads"], [r"unknown section\(s\) tool"], toml=TOML + "\n[tool]\nx = 1\n"),
    Case("bad-duration", ["heads"], [r"bad lock_timeout 'soon'"],
         toml=TOML.replace('"revisions"', '"revisions"\nlock_timeout = "soon"')),
    Case("unknown-store", ["current", "--store", "nope"], [r"unknown store 'nope'; ragrev\.toml defines: meta"],
         chain("aaa1")),
    Case("unknown-store-upgrade", ["upgrade", "head", "--store", "nope"], [r"unknown store 'nope'"], chain("aaa1")),

    # --- usage -------------------------------------------------------------------------------------
    Case("missing-message", ["revision"], [r"Missing option '-m' / '--message' \(see 'ragrev revision --help'\)"]),
    Case("unknown-command", ["frobnicate"], [r"No such command 'frobnicate' \(see 'ragrev --help'\)"]),
    Case("unknown-option", ["history", "--nope"], [r"No such option '--nope' \(see 'ragrev history --help'\)"]),
    Case("option-without-value", ["history", "-r"], [r"Option '-r' requires an argument"]),
    Case("show-without-revision", ["show"], [r"Missing argument 'REV'"]),
]


def test_case_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "revisions").mkdir(parents=True)
    for name, text in case.files.items():
        (root / "revisions" / name).write_text(text)
    cfg = root / "ragrev.toml"
    if case.toml is not None:
        cfg.write_text(case.toml)
    monkeypatch.chdir(root)
    monkeypatch.delenv("RAGREV_CONFIG", raising=False)
    monkeypatch.delenv("RAGREV_TEST_UNSET_VAR", raising=False)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    args = [a.format(root=root, cfg=cfg) for a in (["-c", "{cfg}"] if case.config else []) + case.args]

    result = CliRunner().invoke(cli, args, prog_name="ragrev")

    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}:\n{result.stderr}"
    assert result.exit_code == 2, f"exit {result.exit_code}:\n{result.output}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ragrev: error: ")
    for pattern in case.expect:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert "Traceback" not in result.output
    assert "secret" not in result.stderr
    db = root / "var" / "meta.db"
    if db.exists():  # the store was opened: it must still be empty
        with sqlite3.connect(db) as conn:
            assert conn.execute("select name from sqlite_master").fetchall() == []
