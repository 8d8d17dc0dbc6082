"""Project and revision templates.

Templates are folders: ``ragrev.toml`` and anything else ``ragrev init``
copies, and ``revision.py.tmpl`` which ``ragrev revision`` fills in
(``string.Template`` syntax: ``${rev_id}``, ``${message}``,
``${down_revision}`` / ``${branch_labels}`` / ``${depends_on}`` (Python
literals), ``${revises}`` (the parent ids as text, for the docstring),
``${create_date}``, ``${store_hints}``, ``${first_store}``, ``${chat_store}`` (the
first document or SQL store)). A template with
a ``ragrev.toml`` is a project template (``ragrev init``); the others are
revision templates only. The shipped ones live in the
package (``ragrev/templates/`` in a wheel, ``templates/`` in a source
checkout); a project's own ``templates/NAME/`` comes first.
"""
from __future__ import annotations

import string
from pathlib import Path

from ragrev.errors import BadInput


def shipped_templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


def available(project_dir: Path | None = None) -> list[str]:
    names = set()
    for base in (project_dir, shipped_templates_dir()):
        if base and Path(base).is_dir():
            names |= {p.name for p in Path(base).iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    return sorted(names)


def project_templates() -> list[str]:
    """The shipped templates ``ragrev init`` accepts (those with a ``ragrev.toml``)."""
    base = shipped_templates_dir()
    return sorted(p.name for p in base.iterdir() if (p / "ragrev.toml").is_file())


def find_template(name: str, project_dir: Path | None) -> Path:
    for base in (project_dir, shipped_templates_dir()):
        if base and (Path(base) / name).is_dir():
            return Path(base) / name
    raise BadInput(f"no template {name!r}; available: {', '.join(available(project_dir))}")


_HINTS = {
    "sql": "op.{name}.add_column('table', sa.Column('col', sa.String(20)))  # Alembic's Operations",
    "milvus": "op.{name}.create_index('collection', 'embedding', index_type='HNSW', metric_type='COSINE')",
    "mongo": "op.{name}.add_field('collection', 'field', default=None)",
}


def render_revision(template: str, project_templates: Path | None, **values) -> str:
    folder = find_template(template, project_templates)
    path = folder / "revision.py.tmpl"
    if not path.is_file():
        path = find_template("generic", project_templates) / "revision.py.tmpl"
    kinds = values.pop("store_kinds", {})
    values.pop("stores", None)
    hints = [_HINTS[k].format(name=n) for n, k in kinds.items() if k in _HINTS]
    values["store_hints"] = "\n".join(f"    # {h}" for h in hints) or "    # op.<store>.<operation>(...)"
    values["first_store"] = next(iter(kinds), "store")
    # chat archives live in a document or SQL store (templates/chat-archive)
    values["chat_store"] = next((n for n, k in kinds.items() if k in ("mongo", "sql")), values["first_store"])
    values.setdefault("message", "")
    values.setdefault("revises", "")
    return string.Template(path.read_text(encoding="utf-8")).safe_substitute(values)
