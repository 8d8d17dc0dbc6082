"""Bad input across every kind of store (docs/reliability.md): one line, exit 2, and
nothing changed in any store.

The project is the reliability chain (SQLite + Milvus Lite + embedded
SecantusDB + a chat archive), migrated to ``r2`` so that every store has
user data, a version and a journal. Each case of ``CASES`` changes the
project's files (a revision ``r6`` on top of ``r5``, an edited revision, a
transformed ``ragrev.toml``) or the command line, then runs ``ragrev`` in a
subprocess and checks:

- exit code 2, nothing on stdout, exactly one line on stderr starting with
  ``ragrev: error:`` and matching the case's patterns, no traceback, no
  secret from a URL;
- the snapshot of every store — user data *and* ragrev's own tables and
  collections (version, journal, lock, trash) — and the cold storage are
  exactly as before.

Where a revision is applied by the failing command, the whole run from r2 is
at stake (r3..r6): a mistake in r6 must be caught before r3 starts — e.g. a
vector of the wrong dimension for the collection that r4 re-embeds.

The cases run through click's ``CliRunner`` in this process, which checks
the same exit code, output and stores: a ``ragrev`` subprocess spends most
of its time importing the drivers (pymilvus and pandas: about 10 s of a
14-18 s case on the loaded test machine, against about 1 s in process).
The cases of ``SUBPROCESS`` (a plan that fails on the Milvus Lite store, one
that fails on the SecantusDB store, both after ragrev opened all three
embedded engines, and an unreachable Milvus server) also start ragrev in a
subprocess as a user would: they check the real process's exit code and its
whole standard error, where an engine or a C library could write past
Python's ``sys.stderr``.

The stores are compared through their content hashes (``hashes.snapshot``),
except a store whose files are byte for byte as they were when its content
hashes last matched the reference, which cannot have changed (its part of
the reference is reused). SQLite and Milvus Lite files are untouched by a run
that fails in preflight; the embedded SecantusDB's WiredTiger files change
whenever it is opened, so it is read after every case that opened it.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragrev.cli import cli
from tests.reliability import chain, hashes

UNREACHABLE_MONGO = '\n[stores.remote]\nurl = "mongodb://ragrev:s3cr3t-pw@127.0.0.1:1/x"\ntimeout = "1s"\n'
UNREACHABLE_MILVUS = '\n[stores.remote]\nurl = "milvus://ragrev:s3cr3t-pw@127.0.0.1:1"\nconnect_timeout = "1s"\n'
UNREACHABLE_PG = '\n[stores.remote]\nurl = "postgresql+psycopg://ragrev:s3cr3t-pw@127.0.0.1:1/x"\n'
SECRET = "s3cr3t-pw"
FIELDS = '[{"name": "id", "type": "INT64", "primary": True}, {"name": "v", "type": "FLOAT_VECTOR", "dim": 4}]'
CHATS = chain.CHATS


def top(body: str, down="r5", rev="r6", header: str | None = None) -> dict:
    """A revision file ``rev`` (on ``down``) whose upgrade(op) is ``body``."""
    head = header if header is not None else f'revision = "{rev}"\ndown_revision = {down!r}\n'
    return {f"{rev}.py": f'"""a bad revision"""\nimport sqlalchemy as sa\n\n{head}\n\n'
                         f"def upgrade(op):\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n"}


def with_config(extra: str = "", replace: tuple[str, str] | None = None):
    def edit(text: str) -> str:
        if replace:
            assert replace[0] in text, replace
            text = text.replace(*replace)
        return text + extra
    return edit


@dataclass
class Case:
    id: str
    expect: list[str]
    files: dict = field(default_factory=dict)
    args: list = field(default_factory=lambda: ["upgrade", "head"])
    edit: dict = field(default_factory=dict)      # revision file -> (old, new)
    config: object = None                         # ragrev.toml text -> text
    config_path: str | None = None
    config_bytes: bytes = b""                     # appended to ragrev.toml as bytes (not UTF-8 text)


CASES = [
    # --- revision files ------------------------------------------------------------------------
    Case("syntax-error", [r"revisions/r6\.py:\d+: syntax error"],
         {"r6.py": 'revision = "r6"\ndown_revision = "r5"\n\ndef upgrade(op)\n    pass\n'}),
    Case("missing-revision", [r"revisions/r6\.py: no 'revision = \"<id>\"'"],
         top("op.docs.expect_count('documents', 1)", header='down_revision = "r5"\n')),
    Case("duplicate-id", [r"duplicate revision id 'r5'", r"r5\.py", r"r6\.py"],
         {"r6.py": top("pass", rev="r5", down="r4")["r5.py"]}),
    Case("cycle", [r"cycle in the revision graph"], edit={"r1.py": ("down_revision = None", "down_revision = 'r5'")}),
    Case("unknown-parent", [r"unknown down_revision 'r9'"], top("pass", down="r9")),
    Case("down-revision-not-a-string", [r"r6\.py: 'down_revision' must be None"], top("pass", down=5)),
    Case("multiple-heads", [r"multiple heads \(r5, r6\)"], top("pass", down="r4")),
    Case("upgrade-raises", [r"r6\.py:\d+: upgrade\(\) failed while planning: ValueError: no"],
         top("raise ValueError('no')")),
    Case("import-error", [r"r6\.py:\d+: fails to import: ModuleNotFoundError"],
         {"r6.py": 'revision = "r6"\ndown_revision = "r5"\nimport no_such_module_zz\n\ndef upgrade(op):\n    pass\n'}),
    Case("missing-upgrade", [r"r6\.py: defines no upgrade\(op\)"],
         {"r6.py": 'revision = "r6"\ndown_revision = "r5"\n\ndef downgrade(op):\n    pass\n'}),
    Case("unknown-store-in-revision", [r"r6\.py:\d+: unknown store 'archive'"],
         top("op.archive.expect_count('x', 1)")),
    Case("unknown-operation", [r"r6\.py:\d+: store 'docs' \(mongo\) has no operation 'frobnicate'"],
         top("op.docs.frobnicate('documents')")),
    Case("wrong-arguments", [r"r6\.py:\d+: create_collection: .*fields"], top("op.vectors.create_collection('x')")),
    Case("sql-op-without-arguments", [r"r6\.py:\d+: .*create_table"], top("op.meta.create_table()")),
    Case("sql-add-column-given-a-string", [r"r6\.py:\d+: add_column: the column must be sa\.Column"],
         top("op.meta.add_column('sources', 'note')")),
    Case("sql-unknown-table", [r"r6\.py:\d+: add_column: store 'meta' has no table 'nope'"],
         top("op.meta.add_column('nope', sa.Column('note', sa.String))")),
    Case("sql-unknown-table-in-batch", [r"r6\.py:\d+: batch_alter_table: store 'meta' has no table 'nope'"],
         top("with op.meta.batch_alter_table('nope') as b:\n    b.add_column(sa.Column('note', sa.String))")),

    # --- targets -------------------------------------------------------------------------------
    Case("ambiguous-prefix", [r"ambiguous revision prefix 'r': matches r1, r2"], args=["upgrade", "r"]),
    Case("unknown-target", [r"no such revision 'deadbeef'"], args=["upgrade", "deadbeef"]),
    Case("downgrade-past-base", [r"walks past base"], args=["downgrade", "r1-3"]),
    Case("upgrade-past-head", [r"walks past head"], args=["upgrade", "r5+2"]),
    Case("unparsable-target", [r"cannot parse target"], args=["upgrade", "a@b@c"]),

    # --- configuration -------------------------------------------------------------------------
    Case("unknown-scheme", [r"unknown URL scheme 'cassandra'"],
         config=with_config('\n[stores.remote]\nurl = "cassandra://u:s3cr3t-pw@h/x"\n')),
    Case("missing-variable", [r"environment variable RAGREV_NO_SUCH_VAR_ZZ is not set"],
         config=with_config('\n[stores.remote]\nurl = "${RAGREV_NO_SUCH_VAR_ZZ}"\n')),
    Case("bad-toml", [r"ragrev\.toml: .*line"], config=with_config("\n[stores.remote\nurl = 1\n")),
    Case("unknown-store-option", [r"unknown store 'nope'"], args=["upgrade", "head", "--store", "nope"]),
    Case("store-without-url", [r"\[stores\.remote\]: needs url"], config=with_config('\n[stores.remote]\nx = 1\n')),
    Case("bad-lock-timeout", [r"bad lock_timeout 'soon'"],
         config=with_config(replace=('lock_timeout = "30s"', 'lock_timeout = "soon"'))),
    Case("bad-transaction-mode", [r"transaction must be 'revision' or 'step'"],
         config=with_config(replace=('transaction = "step"', 'transaction = "sometimes"'))),
    Case("no-revision-directory", [r"no revision directory at .*nowhere"],
         config=with_config(replace=('script_location = "revisions"', 'script_location = "nowhere"'))),
    Case("no-config-file", [r"no configuration at .*ragrev\.toml"], config_path="{root}/nowhere/ragrev.toml"),
    # issue 12 part 5: typos, zero lease, nested defaults, wrong types, bad ports, empty URLs, bad bytes
    Case("misspelt-ragrev-key", [r"\[ragrev\]: unknown key 'lock_timout' \(did you mean 'lock_timeout'\?\)"],
         config=with_config(replace=('lock_timeout = "30s"', 'lock_timout = "30s"'))),
    Case("misspelt-store-key", [r"\[stores\.docs\]: unknown key 'databse' \(did you mean 'database'\?\)"],
         config=with_config(replace=('database = "rag"', 'databse = "rag"'))),
    Case("option-of-another-kind", [r"\[stores\.meta\]: unknown key 'database' .*not an option of this kind"],
         config=with_config(replace=('transaction = "step"', 'database = "x"'))),
    Case("zero-lease", [r"lock_lease must be more than 0s"],
         config=with_config(replace=('lock_lease = "1s"', 'lock_lease = "0s"'))),
    Case("negative-lock-timeout", [r"lock_timeout must not be negative|bad lock_timeout"],
         config=with_config(replace=('lock_timeout = "30s"', 'lock_timeout = -5'))),
    Case("nested-default-unset", [r"environment variable RAGREV_NO_B_ZZ is not set"],
         config=with_config('\n[stores.remote]\nurl = "${RAGREV_NO_A_ZZ:-${RAGREV_NO_B_ZZ}}"\n')),
    Case("unclosed-variable", [r"unclosed '\$\{'"], config=with_config('\n[stores.remote]\nurl = "${RAGREV_NO_A_ZZ"\n')),
    Case("invalid-utf8", [r"ragrev\.toml:\d+: not UTF-8 text \(byte 0xff\)"], config_bytes=b"\n# caf\xff\xfe\n"),
    Case("database-not-a-string", [r"\[stores\.docs\]: database must be a non-empty string, not 5"],
         config=with_config(replace=('database = "rag"', 'database = 5'))),
    Case("milvus-port-not-a-number", [r"\[stores\.remote\]: bad URL 'milvus://host:notaport'"],
         config=with_config('\n[stores.remote]\nurl = "milvus://host:notaport"\n')),
    Case("mongo-port-not-a-number", [r"\[stores\.remote\]: bad URL 'mongodb://u:\*\*\*@host:99999999/x'"],
         config=with_config('\n[stores.remote]\nurl = "mongodb://u:s3cr3t-pw@host:99999999/x"\n')),
    Case("empty-url", [r"\[stores\.remote\]: url is empty"], config=with_config('\n[stores.remote]\nurl = ""\n')),
    Case("url-variable-empty", [r"\[stores\.remote\]: url is empty \(\$\{RAGREV_NO_A_ZZ:-\} expands to nothing\)"],
         config=with_config('\n[stores.remote]\nurl = "${RAGREV_NO_A_ZZ:-}"\n')),
    Case("revision-id-outside-the-folder", [r"revision id '\.\./\.\./x'"],
         args=["revision", "-m", "x", "--rev-id", "../../x"]),

    # --- schemas (MongoDB) ------------------------------------------------------------------------
    Case("set-schema-invalid", [r"r6\.py:\d+: set_schema: invalid JSON Schema"],
         top("op.docs.set_schema('documents', {'type': 'nonsense'})")),
    Case("create-collection-invalid-schema", [r"r6\.py:\d+: create_collection: invalid JSON Schema"],
         top("op.docs.create_collection('notes', schema={'properties': 5})")),
    Case("validate-all-invalid-schema", [r"r6\.py:\d+: validate_all: invalid JSON Schema"],
         top("op.docs.validate_all('documents', {'required': 'title'})")),
    Case("set-schema-unknown-collection", [r"r6\.py:\d+: set_schema: store 'docs' has no collection 'nope'"],
         top("op.docs.set_schema('nope', {'type': 'object'})")),
    Case("rename-field-unknown-collection", [r"r6\.py:\d+: rename_field: .*'nope'"],
         top("op.docs.rename_field('nope', 'a', 'b')")),
    Case("bad-validation-level", [r"r6\.py:\d+: create_collection: validation_level must be one of"],
         top("op.docs.create_collection('notes', validation_level='sometimes')")),

    # --- vectors (Milvus) --------------------------------------------------------------------------
    Case("insert-wrong-dim", [r"r6\.py:\d+: .*chunks.*vec.*(dim|dimension)"],  # r4 re-embedded chunks in 16 dims
         top("op.vectors.insert('chunks', rows=[{'id': 99999, 'doc_id': 1, 'text': 'x', 'vec': [0.5] * 8}])")),
    Case("create-index-unknown-field", [r"r6\.py:\d+: .*chunks.*nope"],
         top("op.vectors.create_index('chunks', 'nope', index_type='FLAT', metric_type='L2')")),
    Case("reembed-wrong-dim", [r"r6\.py:\d+: .*16-dimensional vectors, dim=12"],
         top("""
             def embed(texts):
                 return [[0.0] * 16 for _ in texts]
             embed.dim = 16
             op.vectors.reembed('chunks', text_field='text', embed=embed, dim=12)
         """)),
    Case("reembed-probe-dim", [r"r6\.py:\d+: .*5-dimensional vectors, dim=16"],
         top("op.vectors.reembed('chunks', text_field='text', embed=lambda ts: [[1.0] * 5 for _ in ts], dim=16)")),
    Case("no-vector-field", [r"r6\.py:\d+: .*needs at least one vector field"],
         top("op.vectors.create_collection('x', fields=[{'name': 'id', 'type': 'INT64', 'primary': True}])")),
    Case("two-primary-keys", [r"r6\.py:\d+: .*exactly one field primary"],
         top("op.vectors.create_collection('x', fields=[{'name': 'id', 'type': 'INT64', 'primary': True}, "
             "{'name': 'id2', 'type': 'INT64', 'primary': True}, {'name': 'v', 'type': 'FLOAT_VECTOR', 'dim': 4}])")),
    Case("dim-zero", [r"r6\.py:\d+: .*dim"],
         top("op.vectors.create_collection('x', fields=[{'name': 'id', 'type': 'INT64', 'primary': True}, "
             "{'name': 'v', 'type': 'FLOAT_VECTOR', 'dim': 0}])")),
    Case("unsupported-index-type", [r"r6\.py:\d+: .*NOT_AN_INDEX"],
         top("op.vectors.create_index('chunks', 'vec', index_type='NOT_AN_INDEX', metric_type='L2')")),
    Case("unknown-metric", [r"r6\.py:\d+: .*MANHATTAN"],
         top("op.vectors.create_index('chunks', 'vec', index_type='FLAT', metric_type='MANHATTAN')")),
    Case("copy-from-unknown", [r"r6\.py:\d+: .*no collection 'nope'"], top("op.vectors.copy('nope', 'x')")),
    Case("drop-unknown-collection", [r"r6\.py:\d+: .*no collection 'nope'"], top("op.vectors.drop_collection('nope')")),
    Case("bad-filter", [r"r6\.py:\d+: .*filter 'id >>> 3'"], top("op.vectors.delete('chunks', filter='id >>> 3')")),
    Case("reserved-collection-name", [r"r6\.py:\d+: .*ragrev_"],
         top(f"op.vectors.create_collection('ragrev_x', fields={FIELDS})")),

    # --- chat archives --------------------------------------------------------------------------------
    Case("archive-bad-older-than", [r"r6\.py:\d+: .*older_than='someday'|older_than='someday'"],
         top(f"{CHATS}.archive(older_than='someday')")),
    Case("archive-bad-format", [r"r6\.py:\d+: archive: format='csv'"],
         top(f"{CHATS}.archive(older_than='30d', format='csv')")),
    Case("chats-unknown-option", [r"chats\('conversations'\): unknown option\(s\) nonsense"],
         top("op.docs.chats('conversations', nonsense=1).check_sequence()")),
    Case("remap-two-to-one", [r"r6\.py:\d+: remap_sessions: two sessions map to the same new id"],
         top(f"{CHATS}.remap_sessions({{'s0001': 'x', 's0002': 'x'}})")),
    Case("merge-bad-on-conflict", [r"r6\.py:\d+: merge_from: on_conflict='explode'"],
         top(f"{CHATS}.merge_from('docs.other', on_conflict='explode')")),
    Case("chats-unknown-collection", [r"r6\.py:\d+: archive: store 'docs' has no collection 'nope'"],
         top("op.docs.chats('nope').archive(older_than='30d')")),
    Case("chats-unknown-table", [r"r6\.py:\d+: archive: .*'nope'"], top("op.meta.chats('nope').archive(older_than='30d')")),
    Case("chats-on-a-vector-store", [r"r6\.py:\d+: .*milvus"], top("op.vectors.chats('chunks').check_sequence()")),

    # --- unreachable servers ----------------------------------------------------------------------------
    Case("mongo-unreachable", [r"store 'remote': cannot reach mongodb://ragrev:\*\*\*@127\.0\.0\.1:1"],
         config=with_config(UNREACHABLE_MONGO)),
    Case("milvus-unreachable", [r"store 'remote': cannot connect to milvus://ragrev:\*\*\*@127\.0\.0\.1:1"],
         config=with_config(UNREACHABLE_MILVUS)),
    Case("postgres-unreachable", [r"store 'remote': cannot connect to postgresql\+psycopg://ragrev:\*\*\*@127\.0\.0\.1:1"],
         config=with_config(UNREACHABLE_PG)),
    Case("secantus-unwritable", [r"store 'remote': cannot create /proc/ragrev-nope"],
         config=with_config('\n[stores.remote]\nurl = "secantus:////proc/ragrev-nope"\n')),

    # --- usage --------------------------------------------------------------------------------------------
    Case("downgrade-without-target", [r"Missing argument 'TARGET'"], args=["downgrade"]),
    Case("unknown-option", [r"(No such option|unexpected extra argument).*--frob"], args=["upgrade", "head", "--frob"]),
]


#: cases that also run in a subprocess (see the module docstring)
SUBPROCESS = {"insert-wrong-dim", "set-schema-invalid", "milvus-unreachable"}
#: the files of each store of the chain project, relative to the project (see ``snapshot_after``)
STORE_FILES = {"meta": "var/meta.db", "vectors": "var/vectors.db", "docs": "var/docs"}


def run_case(path: str, args: list, in_process: bool) -> tuple[int, str, str]:
    """ragrev -c PATH ARGS: exit code, standard output, standard error."""
    if in_process:
        result = CliRunner().invoke(cli, ["-c", path, *args], prog_name="ragrev")
        crash = result.exc_info is not None and not isinstance(result.exc_info[1], SystemExit)
        stderr = result.stderr + ("Traceback (in process): " + repr(result.exc_info[1]) if crash else "")
        return result.exit_code, result.stdout, stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGREV_FAULTS", "RAGREV_CONFIG"))}
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", path, *args], capture_output=True,
                          text=True, env=env, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_corpus_is_large_and_its_ids_unique():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert SUBPROCESS <= {c.id for c in CASES}


def store_files(root: Path) -> dict[str, dict[str, str]]:
    """Per store of the chain project, every file under its path: relative path -> SHA-256."""
    out = {}
    for store, rel in STORE_FILES.items():
        base = root / rel
        paths = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        out[store] = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    return out


def snapshot_after(project) -> hashes.Snapshot:
    """The project's snapshot (``internal``: ragrev's own records too), reading only the stores whose
    files changed since their content last matched ``project.before``; the others keep their part of
    it. A store read again that still matches records its new files. (No Milvus Lite server may still
    hold the data in this process: it would keep changes out of the files.)"""
    from milvus_lite.server_manager import server_manager_instance

    assert not server_manager_instance._servers, "a Milvus Lite server is still running in the test process"
    files = store_files(project.config.parent)
    same = {s for s in STORE_FILES if files[s] == project.files[s]}
    after = hashes.snapshot(project.config, internal=True, stores=set(STORE_FILES) - same)
    after.update({s: project.before[s] for s in same})
    for s in set(STORE_FILES) - same:
        if not hashes.diff({s: project.before[s]}, {s: after[s]}):
            project.files[s] = files[s]
    return after


class BadInputProject:
    """The chain project at r2 and its snapshot with ragrev's own records;
    rebuilt from the seeded stores when a case changed something, so that
    one failure does not cascade into the cases after it."""

    def __init__(self, harness):
        self.harness = harness
        self.build()

    def build(self) -> None:
        self.config = self.harness.project(self.harness.workdir / "bad-input")
        assert self.harness.ragrev(self.config, "upgrade", "r2", name="setup") == 0, \
            self.harness.last_error(self.config)
        self.before = hashes.snapshot(self.config, internal=True)
        self.files = store_files(self.config.parent)


@pytest.fixture(scope="module")
def project(harness):
    return BadInputProject(harness)


def reset(config, case: Case) -> None:
    root = config.parent
    for p in (root / "revisions").glob("*.py"):
        p.unlink()
    chain.write_project(root)
    for name, (old, new) in case.edit.items():
        path = root / "revisions" / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))
    for name, text in case.files.items():
        (root / "revisions" / name).write_text(text)
    if case.config is not None:
        config.write_text(case.config(config.read_text()))
    if case.config_bytes:
        config.write_bytes(config.read_bytes() + case.config_bytes)


RUNS = [(c, False) for c in CASES] + [(c, True) for c in CASES if c.id in SUBPROCESS]


@pytest.mark.parametrize("case,subprocess_", RUNS, ids=[c.id + ("-subprocess" if sub else "") for c, sub in RUNS])
def test_bad_input_is_one_line_exit_2_and_changes_no_store(project, case, subprocess_):
    config, before = project.config, project.before
    reset(config, case)
    path = (case.config_path or str(config)).format(root=config.parent)
    try:
        returncode, stdout, stderr = run_case(path, case.args, in_process=not subprocess_)
    finally:
        reset(config, Case("clean", []))
    problems = hashes.diff(before, snapshot_after(project))
    if problems:
        project.build()
    lines = stderr.splitlines()
    assert returncode == 2, f"exit {returncode}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr + stdout
    assert stdout == "", stdout
    assert len(lines) == 1 and lines[0].startswith("ragrev: error: "), stderr[-3000:]
    for pattern in case.expect:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert SECRET not in stderr
    assert not problems, "\n".join(problems)
