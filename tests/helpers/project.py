"""Test helpers (project), imported by the test modules and conftest files."""
from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from ragrev.cli import cli

PG_ADMIN_URL = os.environ.get("RAGREV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


#: a real MongoDB for the document-store tests; else an embedded SecantusDB
REAL_MONGO = os.environ.get("RAGREV_TEST_MONGO_URI")


class Project:
    """A ragrev project in a temporary directory."""

    def __init__(self, root: Path, stores: dict[str, str], options: str = ""):
        self.root = root
        self.revisions = root / "revisions"
        self.revisions.mkdir(parents=True, exist_ok=True)
        self.stores = stores
        lines = ["[ragrev]", 'script_location = "revisions"', 'lock_timeout = "1s"', 'lock_lease = "2s"', options, ""]
        for name, spec in stores.items():
            lines.append(f"[stores.{name}]")
            if isinstance(spec, dict):
                lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in spec.items()]
            else:
                lines.append(f'url = "{spec}"')
            lines.append("")
        self.config = root / "ragrev.toml"
        self.config.write_text("\n".join(lines))

    def add(self, rev: str, down, body: str, message: str | None = None, name: str | None = None, **header) -> Path:
        """Write a revision file; ``body`` holds upgrade()/downgrade() (dedented)."""
        extra = "".join(f"{k} = {v!r}\n" for k, v in header.items())
        text = (f'"""{message or "revision " + rev}"""\nimport sqlalchemy as sa\n\n'
                f"revision = {rev!r}\ndown_revision = {down!r}\n{extra}\n\n" + textwrap.dedent(body).strip() + "\n")
        path = self.revisions / f"{name or rev}.py"
        path.write_text(text)
        return path

    def set_options(self, **options) -> None:
        """Set keys of the ``[ragrev]`` table of ``ragrev.toml`` (strings are
        quoted): ``p.set_options(lock_timeout="20s", lock_lease="1s")``. The one
        way tests change a generated configuration."""
        text = self.config.read_text()
        head, sep, rest = text.partition("[ragrev]\n")
        table, nxt, tail = rest.partition("\n[")
        for key, value in options.items():
            line = f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value!r}".lower()
            table, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", line, table)
            if not n:
                table = line + "\n" + table
        self.config.write_text(head + sep + table + nxt + tail)

    def add_store_text(self, name: str, body: str) -> None:
        """Append a ``[stores.<name>]`` table with ``body`` (TOML lines) to ``ragrev.toml``."""
        self.config.write_text(self.config.read_text() + f"\n[stores.{name}]\n{body}\n")

    def cli(self, *args, expect: int | None = 0):
        result = CliRunner().invoke(cli, ["-c", str(self.config), *args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code} != {expect}:\n{result.output}"
        return result

    def run(self, *args, env=None, **kw):
        """ragrev in a subprocess (for kill and concurrency tests)."""
        import subprocess

        return subprocess.Popen([sys.executable, "-m", "ragrev", "-c", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})}, **kw)
