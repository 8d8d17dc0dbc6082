"""What ragrev prints, in the three formats every printing command takes
(``--format text|json|github``; ``--json`` is ``--format json``).

- ``text`` (the default, on a terminal or not): lines for a person.
- ``json``: one JSON document on standard output, and JSON lines for
  progress on standard error; every document and line carries
  ``"schema_version"`` (:data:`SCHEMA_VERSION`), raised when a field changes
  meaning or goes away (new fields may appear without a raise).
- ``github``: text, plus GitHub Actions workflow commands: each finding of
  ``check``/``review`` and each failed step as an annotation
  (``::error file=...,line=...::message``), and, when
  ``$GITHUB_STEP_SUMMARY`` names a file, the review or plan appended to it
  as Markdown.
"""
from __future__ import annotations

import json
import os

SCHEMA_VERSION = 1
FORMATS = ("text", "json", "github")


def document(kind: str, body: dict) -> dict:
    """``body`` as a versioned JSON document of ``kind``."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, **body}


def dumps(kind: str, body: dict) -> str:
    return json.dumps(document(kind, body), indent=2, default=str)


# --- GitHub workflow commands ---------------------------------------------------------

def _escape_data(text: str) -> str:
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, file: str | None = None, line: int | None = None,
               title: str | None = None) -> str:
    """One ``::error``/``::warning``/``::notice`` workflow command."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
        if line:
            props.append(f"line={int(line)}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{_escape_data(message)}"


def finding_annotations(findings, level_of=None) -> list[str]:
    """Annotations of findings (``Finding.to_json()`` dicts)."""
    out = []
    for f in findings:
        level = "error" if f.get("severity") == "error" else "warning"
        msg = f["message"] + (f" (fix: {f['fix']})" if f.get("fix") else "")
        out.append(annotation(level, msg, f.get("path"), f.get("line"), f"ragrev {f['rule']}"))
    return out


def step_summary(markdown: str) -> bool:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as f:
        f.write(markdown.rstrip() + "\n\n")
    return True


def plan_markdown(direction: str, target: str, actions: list[dict]) -> str:
    """An upgrade/downgrade plan (``commands.migrate(plan_only=True)``) as Markdown."""
    verb = "upgrade" if direction == "up" else "downgrade"
    out = [f"## ragrev {verb} plan to `{target}`", ""]
    if not actions:
        return "\n".join(out + ["Nothing to do: every store is at the target."]) + "\n"
    for a in actions:
        out += [f"#### `{a['revision']}` {a['message']} — **{a['store']}** ({a['mode']})", ""]
        for s in a["steps"]:
            rows = f" (~{s['rows']:,} rows)" if s.get("rows") is not None else ""
            done = " *(done)*" if s["done"] else ""
            out.append(f"{s['index']}. `{s['description']}`{rows}{done}")
        if not a["steps"]:
            out.append("No steps (stamp only).")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
