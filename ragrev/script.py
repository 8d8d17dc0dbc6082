"""The directory of revision files (docs/configuration.md): reading and writing them.

Reading is in two depths, so that graph commands stay fast on large histories:

- :meth:`ScriptDirectory.revision_map` reads only each file's header (the
  docstring and the literal module-level assignments ``revision``,
  ``down_revision``, ``branch_labels``, ``depends_on``), without importing it.
  A file whose header is not plain literals is imported instead.
- :meth:`Script.module` imports the file (for ``upgrade``/``downgrade``);
  a file that fails to import is a :class:`RevisionFileError` naming file and line.
"""
from __future__ import annotations

import ast
import datetime as _dt
import importlib.util
import os
import re
import sys
import traceback
import uuid
from pathlib import Path

from ragrev.errors import RevisionFileError, ConfigError
from ragrev.graph import Revision, RevisionMap, normalize_ids

_HEADER_KEYS = ("revision", "down_revision", "branch_labels", "depends_on")
_ASSIGN = re.compile(r"^(revision|down_revision|branch_labels|depends_on)\s*(?::[^=]*)?=\s*(.+?)\s*(?:#.*)?$", re.M)
_DOCSTRING = re.compile(r'^\s*(?:[rRuU]?)("""|\'\'\')(.*?)\1', re.S)
#: the common right-hand sides, read without ``ast`` (the hot path on large histories)
_SIMPLE = re.compile(r"""^(?:"([^"\\\n]*)"|'([^'\\\n]*)'|None)$""")


def _literal(rhs: str):
    m = _SIMPLE.match(rhs)
    if m is None:
        return ast.literal_eval(rhs)
    return m.group(1) if m.group(1) is not None else m.group(2)


class Script:
    """One revision file: its header, and its module once imported."""

    def __init__(self, path: Path | str, revision: str, down_revision, branch_labels, depends_on, doc: str,
                 module=None):
        self._path = path
        self.revision = revision
        self.down_revision = normalize_ids(down_revision)
        self.branch_labels = normalize_ids(branch_labels)
        self.depends_on = normalize_ids(depends_on)
        self.doc = doc or ""
        self._module = module

    @property
    def path(self) -> Path:
        if not isinstance(self._path, Path):  # kept as text until asked: cheaper on large histories
            self._path = Path(self._path)
        return self._path

    @property
    def message(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""

    @property
    def module(self):
        if self._module is None:
            self._module = import_revision_file(self.path)
            rev = getattr(self._module, "revision", None)
            if rev != self.revision:
                raise RevisionFileError(f"revision changed while reading ({self.revision!r} -> {rev!r})", str(self.path))
        return self._module

    @property
    def upgrade(self):
        fn = getattr(self.module, "upgrade", None)
        if not callable(fn):
            raise RevisionFileError("defines no upgrade(op) function", str(self.path))
        return fn

    @property
    def downgrade(self):
        """The file's ``downgrade(op)``, or None when it is to be derived."""
        fn = getattr(self.module, "downgrade", None)
        return fn if callable(fn) else None

    def as_revision(self) -> Revision:
        return Revision(
            revision=self.revision,
            down_revision=self.down_revision,
            branch_labels=self.branch_labels,
            depends_on=self.depends_on,
            message=self.message,
            path=str(self._path),
            payload=self,
        )


def _module_name(path: Path) -> str:
    return "ragrev_revision_" + re.sub(r"\W", "_", path.stem) + "_" + uuid.uuid4().hex[:8]


def import_revision_file(path: Path):
    """Import one revision file as a fresh module; errors name file and line."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RevisionFileError(f"cannot read: {e}", str(path)) from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as e:
        raise RevisionFileError(f"syntax error: {e.msg}", str(path), e.lineno) from None
    name = _module_name(path)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit too: a file that exits on import is a bad file, not a run that ended well
        line = line_in(e, path)
        raise RevisionFileError(f"fails to import: {type(e).__name__}: {e}", str(path), line) from None
    finally:
        sys.modules.pop(name, None)
    return module


def line_in(exc: BaseException, path) -> int | None:
    """The last line of ``path`` in ``exc``'s traceback, if any."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == Path(path):
            line = frame.lineno
    return line


def read_header(path: Path | str) -> Script:
    """Read a revision file's header without importing it (falls back to an
    import when the header is not made of literals)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise RevisionFileError(f"cannot read: {e}", str(path)) from None
    values = {}
    for m in _ASSIGN.finditer(text):
        key, rhs = m.group(1), m.group(2)
        if key in values:
            values = None  # assigned twice: let the import decide
            break
        try:
            values[key] = _literal(rhs)
        except (ValueError, SyntaxError):
            values = None
            break
    if values is None or "revision" not in values:
        module = import_revision_file(Path(path))
        if not isinstance(getattr(module, "revision", None), str):
            raise RevisionFileError("no 'revision = \"<id>\"' at module level", str(path))
        values = {k: getattr(module, k, None) for k in _HEADER_KEYS}
        return _script(path, values, module.__doc__ or "", module)
    d = _DOCSTRING.match(text)
    return _script(path, values, _doc_text(d) if d else "")


def _doc_text(m: re.Match) -> str:
    """The docstring a :data:`_DOCSTRING` match holds, its escapes read as
    Python does (``ragrev revision`` escapes quotes in messages)."""
    doc = m.group(2)
    if "\\" not in doc or m.group(0).lstrip()[:1] in "rR":
        return doc
    try:
        return ast.literal_eval(m.group(1) + doc + m.group(1))
    except (ValueError, SyntaxError):
        return doc


def _script(path, values, doc, module=None) -> Script:
    rev = values.get("revision")
    if not isinstance(rev, str) or not rev:
        raise RevisionFileError("'revision' must be a non-empty string", str(path))
    for key in _HEADER_KEYS[1:]:
        v = values.get(key)
        if v is not None and not isinstance(v, (str, tuple, list)):
            raise RevisionFileError(f"'{key}' must be None, a string or a tuple of strings", str(path))
        if isinstance(v, (tuple, list)) and not all(isinstance(x, str) for x in v):
            raise RevisionFileError(f"'{key}' must hold only strings", str(path))
    return Script(path, rev, values.get("down_revision"), values.get("branch_labels"), values.get("depends_on"), doc, module)


class ScriptDirectory:
    """The revision files under ``script_location`` and the graph they form."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._scripts: list[Script] | None = None
        self._map: RevisionMap | None = None

    def files(self) -> list[Path]:
        return [Path(p) for p in self._file_names()]

    def _file_names(self) -> list[str]:
        """The revision files' paths as text, sorted by name (``*.py`` not
        starting with ``_`` or ``.``)."""
        try:
            with os.scandir(self.directory) as it:
                names = sorted(e.name for e in it if e.name.endswith(".py") and not e.name.startswith(("_", "."))
                               and e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(f"no revision directory at {self.directory} (script_location)") from None
        base = os.fspath(self.directory)
        return [os.path.join(base, n) for n in names]

    @property
    def scripts(self) -> list[Script]:
        if self._scripts is None:
            self._scripts = [read_header(p) for p in self._file_names()]
        return self._scripts

    @property
    def revision_map(self) -> RevisionMap:
        if self._map is None:
            self._map = RevisionMap(lambda: [s.as_revision() for s in self.scripts])
        return self._map

    def script(self, rev_id: str) -> Script:
        return self.revision_map.get(rev_id).payload

    def load_all(self) -> None:
        """Import every revision file (reports the first that fails)."""
        for s in self.scripts:
            s.module  # noqa: B018 - imports, raising RevisionFileError

    # --- writing ---------------------------------------------------------------

    def new_file_path(self, rev_id: str, message: str, file_template: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "revision"
        now = _dt.datetime.now(_dt.timezone.utc)
        name = file_template.format(
            rev=rev_id, slug=slug, year=now.year, month=f"{now.month:02d}", day=f"{now.day:02d}",
            hour=f"{now.hour:02d}", minute=f"{now.minute:02d}", second=f"{now.second:02d}",
        )
        return self.directory / f"{name}.py"


def new_rev_id() -> str:
    """A 12-hex revision id, like Alembic's."""
    return uuid.uuid4().hex[-12:]
