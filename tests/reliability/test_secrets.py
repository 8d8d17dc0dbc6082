"""Passwords in store URLs never appear in any output, log record or
``ragrev_log`` entry (docs/configuration.md).

A project whose SQL store is PostgreSQL reached as a role with a password
(the role is created here; the server's trust authentication accepts any
password, so the password is only ever a string ragrev must not leak), next
to an embedded SecantusDB and Milvus Lite. Two passwords: a plain one and one
with characters that URLs encode (``@ : / %``); both forms of each are looked
for. The project goes through a failing step (a driver error in the message
and in the journal), a fixed rerun, the read-only commands (text and JSON),
``--plan``, a downgrade, ``stamp`` and ``purge``; then stores that cannot be
reached, with passwords in ``mongodb://``, ``milvus://``, ``milvus+https://
?token=`` and ``postgresql://`` URLs. What is scanned:

- stdout and stderr of every command (run as a subprocess, so progress comes
  as JSON lines; with an unreachable store, ``upgrade`` runs as a subprocess
  and the read-only commands in this process, through click's ``CliRunner``:
  a subprocess spends most of its time importing the drivers), and of an
  in-process run with every Python ``logging`` record at DEBUG level
  captured (ragrev's and the drivers');
- every record of ragrev's own tables and collections (``ragrev_log``,
  ``ragrev_version``, ``ragrev_lock``) in every store, read with the drivers.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from ragrev.cli import cli
from tests.helpers.project import PG_ADMIN_URL
from tests.reliability import hashes

PLAIN = "Pw7c1e9fQ2x"
SPECIAL = "p@ss:w/rd%K9"
FORMS = [PLAIN, SPECIAL, quote(SPECIAL, safe="")]
ROLE = "ragrev_secret"

GOOD = '''
def upgrade(op):
    op.pg.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
    op.docs.create_collection("notes")
    op.docs.add_field("notes", "lang", default="en")
    op.vectors.create_collection("vecs", fields=[{"name": "id", "type": "INT64", "primary": True},
                                                 {"name": "v", "type": "FLOAT_VECTOR", "dim": 2}])
    op.vectors.insert("vecs", rows=[{"id": i, "v": [float(i), 1.0]} for i in range(30)], batch_size=10)
'''
FAILING = '''
def upgrade(op):
    op.pg.add_column("notes", sa.Column("n", sa.Integer))
    op.pg.execute("SELECT no_such_function_zz()")
'''
FIXED = '''
def upgrade(op):
    op.pg.add_column("notes", sa.Column("n", sa.Integer))
    op.pg.drop_column("notes", "n")
'''


def leaks(text: str) -> list[str]:
    return [f for f in FORMS if f in text]


@pytest.fixture
def secret_pg():
    """A database owned by a role with a password (two URL forms of it)."""
    sa = pytest.importorskip("sqlalchemy")
    name = "ragrev_s_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        admin.connect().close()
    except Exception as e:  # pragma: no cover - CI starts PostgreSQL
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}")
    with admin.connect() as c:
        exists = c.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'").first()
        verb = "ALTER" if exists else "CREATE"
        c.exec_driver_sql(f"{verb} ROLE {ROLE} LOGIN PASSWORD '{SPECIAL.replace('%', '%%')}'")
        c.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER {ROLE}')
    host = PG_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    yield {"special": f"postgresql+psycopg://{ROLE}:{quote(SPECIAL, safe='')}@{host}/{name}",
           "plain": f"postgresql+psycopg://{ROLE}:{PLAIN}@{host}/{name}"}
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def run(p, *args, code=0) -> str:
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", str(p.config), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == code, f"{args}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_no_password_in_output_logs_or_journals(make_project, secret_pg, caplog):
    p = make_project({
        "pg": secret_pg["special"],
        "docs": {"url": "secantus:///./var/docs", "database": "rag"},
        "vectors": "milvus-lite:///./var/vectors.db",
    })
    p.add("s1", None, GOOD)
    p.add("s2", "s1", FAILING)
    seen = []
    out = run(p, "upgrade", "head", code=1)
    assert "no_such_function_zz" in out  # the driver's error is reported...
    seen.append(out)                     # ...without the password
    for args in (["current", "-v"], ["current", "--json"], ["history", "-v"], ["heads", "-v"],
                 ["upgrade", "head", "--plan"], ["upgrade", "head", "--plan", "--json"]):
        seen.append(run(p, *args))
    assert f"{ROLE}:***@" in seen[1]  # current -v shows the URL, masked
    seen.append(_check(p))
    p.add("s2", "s1", FIXED)
    seen.append(run(p, "upgrade", "head"))
    seen.append(run(p, "downgrade", "base"))
    seen.append(run(p, "stamp", "s2"))
    seen.append(run(p, "stamp", "base"))
    seen.append(run(p, "upgrade", "head"))
    seen.append(run(p, "purge"))

    # in-process, every logging record of ragrev and the drivers
    caplog.set_level(logging.DEBUG)
    for args in (["downgrade", "s1"], ["upgrade", "head"], ["current", "-v"]):
        result = CliRunner().invoke(cli, ["-c", str(p.config), *args])
        assert result.exit_code == 0, result.output
        seen.append(result.output)
    records = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    assert records, "no log record was captured"

    journals = hashes.journals(p.config)
    assert all(journals.values()) and any(r.get("error") for r in journals["pg"])
    internal = hashes.snapshot(p.config, internal=True)  # what ragrev keeps: version, log, lock, trash
    assert {"ragrev_log", "ragrev_version"} <= set(internal["pg"])

    for i, text in enumerate(seen):
        assert not leaks(text), f"output {i} shows the password: {text[:2000]}"
    for rec in records:
        assert not leaks(rec), f"a log record shows the password: {rec[:500]}"
    for store, recs in journals.items():
        for rec in recs:
            assert not leaks(repr(rec)), f"a ragrev_log record of {store} shows the password: {rec}"


def _check(p) -> str:
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", str(p.config), "check"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode in (0, 4), proc.stderr
    return proc.stdout + proc.stderr


UNREACHABLE = {
    "mongodb": f'url = "mongodb://{ROLE}:{quote(SPECIAL, safe="")}@127.0.0.1:1/x"\ntimeout = "1s"',
    "mongodb-plain": f'url = "mongodb://{ROLE}:{PLAIN}@127.0.0.1:1/x"\ntimeout = "1s"',
    "milvus": f'url = "milvus://{ROLE}:{PLAIN}@127.0.0.1:1"\nconnect_timeout = "1s"',
    "milvus-token": f'url = "milvus+https://127.0.0.1:1?token={ROLE}:{PLAIN}"\nconnect_timeout = "1s"',
    "postgresql": f'url = "postgresql+psycopg://{ROLE}:{quote(SPECIAL, safe="")}@127.0.0.1:1/x"',
    "postgresql-env": 'url = "${RAGREV_TEST_SECRET_URL}"',
    # issue 12: a password with '/', '@' and ':' written unencoded, and secrets in query parameters
    "postgresql-raw-special": f'url = "postgresql+psycopg://{ROLE}:{SPECIAL}@127.0.0.1:1/x"',
    "mongodb-raw-special": f'url = "mongodb://{ROLE}:{SPECIAL}@127.0.0.1:1/x"\ntimeout = "1s"',
    "milvus-raw-special": f'url = "milvus://{ROLE}:{SPECIAL}@127.0.0.1:1"\nconnect_timeout = "1s"',
    "postgresql-sslpassword": f'url = "postgresql+psycopg://{ROLE}@127.0.0.1:1/x?sslpassword={PLAIN}"',
    "postgresql-password-param": f'url = "postgresql+psycopg://{ROLE}@127.0.0.1:1/x?password={PLAIN}"',
    "mongodb-tls-key-password": f'url = "mongodb://127.0.0.1:1/x?tlsCertificateKeyFilePassword={PLAIN}"\ntimeout = "1s"',
    "mongodb-token": f'url = "mongodb://127.0.0.1:1/x?authMechanismProperties=AWS_SESSION_TOKEN:{PLAIN}"\ntimeout = "1s"',
}


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_no_password_when_a_store_cannot_be_reached(make_project, kind, monkeypatch):
    monkeypatch.setenv("RAGREV_TEST_SECRET_URL", f"postgresql+psycopg://{ROLE}:{PLAIN}@127.0.0.1:1/x")
    p = make_project({"meta": "sqlite:///./var/meta.db"})
    p.add_store_text("remote", UNREACHABLE[kind])
    p.add("u1", None, "def upgrade(op):\n    op.meta.create_table('t', sa.Column('id', sa.Integer, primary_key=True))\n")
    # upgrade in a subprocess, as a user runs it; the read-only commands in this process
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", str(p.config), "upgrade", "head"],
                          capture_output=True, text=True, timeout=120)
    outputs = [(proc.returncode, proc.stdout, proc.stderr)]
    for args in (["current", "-v"], ["upgrade", "head", "--plan", "--json"]):
        result = CliRunner().invoke(cli, ["-c", str(p.config), *args], prog_name="ragrev")
        outputs.append((result.exit_code, result.stdout, result.stderr))
    for code, stdout, stderr in outputs:
        assert code == 2, stderr
        assert "remote" in stderr and "***" in stderr, stderr
        assert not leaks(stdout + stderr), stderr
    if "raw-special" not in kind:  # else the configuration itself is refused (the password must be encoded)
        assert hashes.journals(p.config, stores={"meta"}) == {"meta": []}


MASKED = [
    (f"postgresql+psycopg://u:{SPECIAL}@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
    (f"mongodb://u:{quote(SPECIAL, safe='')}@h1,h2/db?replicaSet=rs", "mongodb://u:***@h1,h2/db?replicaSet=rs"),
    (f"postgresql://u@h/db?sslmode=require&sslpassword={PLAIN}", "postgresql://u@h/db?sslmode=require&sslpassword=***"),
    (f"mongodb://h/?tls=true&tlsCertificateKeyFilePassword={PLAIN}&w=1",
     "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***&w=1"),
    (f"milvus+https://h?token={PLAIN}", "milvus+https://h?token=***"),
    (f"x://h/?access_token={PLAIN}&api_key={PLAIN}", "x://h/?access_token=***&api_key=***"),
    ("sqlite:///var/a@b.db", "sqlite:///var/a@b.db"),
    ("mongodb://user@h/db", "mongodb://user@h/db"),
]


@pytest.mark.parametrize("url,masked", MASKED)
def test_mask_url_masks_passwords_with_special_characters_and_secret_parameters(url, masked):
    from ragrev.config import mask_url, secrets_of

    assert mask_url(url) == masked
    assert not leaks(masked)
    for secret in secrets_of(url):  # what the CLI scrubs from drivers' messages
        assert secret not in masked


def test_nested_variable_defaults_expand():
    from ragrev.config import expand_vars

    assert expand_vars("${A:-${B:-x}}/${C:-y}", "w", {"B": "b"}) == "b/y"
    assert expand_vars("${A:-${B:-x}}", "w", {}) == "x"
    assert expand_vars("${A:-${B}}", "w", {"A": "a"}) == "a"  # the default is not expanded when unused


SPY = '''
import json, os, sys
from pathlib import Path

import ragrev.config

Path(os.environ.get("RAGREV_SPY_OUT", "/nonexistent")).write_text(json.dumps({
    "environ": dict(os.environ), "known": sorted(ragrev.config.KNOWN_SECRETS),
    "modules": [repr(getattr(m, "url", "")) for m in list(sys.modules.values())],
}))

revision = "spy1"
down_revision = None


def upgrade(op):
    op.meta.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
'''


@pytest.mark.parametrize("args", [["check"], ["check", "--stores", "--store", "meta"]], ids=" ".join)
def test_check_loads_revisions_without_the_stores_secrets(make_project, args, tmp_path):
    """Issue 12 part 5: a revision's module-level code, run by ``check``, sees
    neither the password of a store URL (from the environment or not) nor
    the variable that holds it."""
    out = tmp_path / "spy.json"
    p = make_project({"meta": "sqlite:///./var/meta.db"})
    p.config.write_text(p.config.read_text() + '\n[stores.remote]\nurl = "${RAGREV_TEST_SECRET_URL}"\n'
                        f'\n[stores.other]\nurl = "mongodb://{ROLE}:{PLAIN}x@127.0.0.1:1/x"\ntimeout = "1s"\n')
    (p.revisions / "spy1.py").write_text('"""spy"""\nimport sqlalchemy as sa\n' + SPY)
    env = {**__import__("os").environ, "RAGREV_SPY_OUT": str(out), "UNRELATED_VAR": "kept",
           "RAGREV_TEST_SECRET_URL": f"postgresql+psycopg://{ROLE}:{PLAIN}@127.0.0.1:1/x",
           "SOME_COPY_OF_IT": f"pw={PLAIN}"}
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", str(p.config), *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode in (0, 4), proc.stderr  # (--stores reaches only the SQLite store)
    seen = out.read_text()
    assert PLAIN not in seen, "a revision loaded by check saw a store password"
    data = json.loads(seen)
    assert "RAGREV_TEST_SECRET_URL" not in data["environ"] and "SOME_COPY_OF_IT" not in data["environ"]
    assert data["environ"].get("UNRELATED_VAR") == "kept"
    assert not leaks(proc.stdout + proc.stderr)


def test_check_loads_the_declared_state_without_the_stores_secrets(make_project, tmp_path):
    """The declared-state file (``[ragrev] models``) is user code that ``check``
    imports too: like the revisions, it runs in the child without the secrets."""
    out = tmp_path / "spy.json"
    p = make_project({"meta": "sqlite:///./var/meta.db"}, options='models = "ragrev_models.py"')
    p.config.write_text(p.config.read_text() + '\n[stores.remote]\nurl = "${RAGREV_TEST_SECRET_URL}"\n')
    (p.root / "ragrev_models.py").write_text(SPY.split("revision =")[0] + "\nstores = {}\n")
    p.add("m1", None, "def upgrade(op):\n    op.meta.create_table('t', sa.Column('id', sa.Integer, primary_key=True))\n")
    env = {**__import__("os").environ, "RAGREV_SPY_OUT": str(out),
           "RAGREV_TEST_SECRET_URL": f"postgresql+psycopg://{ROLE}:{PLAIN}@127.0.0.1:1/x"}
    proc = subprocess.run([sys.executable, "-m", "ragrev", "-c", str(p.config), "check"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode in (0, 4), proc.stderr
    seen = out.read_text()
    assert PLAIN not in seen, "the declared-state file loaded by check saw a store password"
    assert "RAGREV_TEST_SECRET_URL" not in json.loads(seen)["environ"]
