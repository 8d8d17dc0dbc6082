"""Reading ``ragrev.toml`` (DESIGN §1).

A configuration names the revision directory and the stores. A store's kind
follows from its URL's scheme (:func:`store_kind`); relative paths in embedded
URLs are resolved against the directory of the configuration file;
``${VAR}`` / ``${VAR:-default}`` are read from the environment. Passwords and
tokens never leave this module unmasked except through ``StoreConfig.url``:
everything printed uses :func:`mask_url`.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ragrev.errors import ConfigError

CONFIG_NAME = "ragrev.toml"

#: scheme -> store kind. SQL schemes are SQLAlchemy dialect names, with or
#: without ``+driver``.
_SCHEMES = {
    "milvus-lite": "milvus",
    "milvus": "milvus",
    "milvus+http": "milvus",
    "milvus+https": "milvus",
    "mongodb": "mongo",
    "mongodb+srv": "mongo",
    "secantus": "mongo",
}
_SQL_DIALECTS = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"}
#: embedded schemes whose URL carries a file system path
_PATH_SCHEMES = {"milvus-lite", "secantus", "sqlite"}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value, what: str = "duration") -> float:
    """``"60s"``, ``"5m"``, ``"90d"``, ``"250ms"`` or a number of seconds -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigError(f"bad {what} {value!r}: use a number with a unit, e.g. '60s', '5m', '90d'")
    return float(m.group(1)) * _UNITS[m.group(2)]


def expand_vars(text: str, where: str, environ=None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; a missing variable without
    default is a :class:`ConfigError` naming it."""
    env = os.environ if environ is None else environ

    def sub(m):
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set (write ${{{name}:-default}} to give a default)")

    return _VAR.sub(sub, text)


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise ConfigError(f"not a URL: {mask_url(url)!r} (expected scheme://...)")
    return url.split("://", 1)[0].lower()


def store_kind(url: str) -> str:
    """The store kind for a URL: ``"milvus"``, ``"mongo"`` or ``"sql"``."""
    scheme = scheme_of(url)
    if scheme in _SCHEMES:
        return _SCHEMES[scheme]
    if scheme.split("+", 1)[0] in _SQL_DIALECTS:
        return "sql"
    raise ConfigError(
        f"unknown URL scheme {scheme!r} in {mask_url(url)!r}: use milvus-lite, milvus, milvus+https, "
        "secantus, mongodb, mongodb+srv, or a SQLAlchemy URL (sqlite, postgresql+psycopg, mysql+pymysql, ...)"
    )


_USERINFO = re.compile(r"^([a-zA-Z0-9+.\-]+://)([^:/@]*):([^@/]*)@")
_SECRET_PARAMS = re.compile(r"([?&](?:password|token|secret|api_key|apikey)=)([^&]*)", re.I)


def mask_url(url: str) -> str:
    """The URL with its password and token replaced by ``***``."""
    url = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", url)
    return _SECRET_PARAMS.sub(lambda m: m.group(1) + "***", url)


def secrets_of(url: str) -> list[str]:
    """The secret parts of a URL (for scrubbing error messages from drivers)."""
    found = []
    m = _USERINFO.match(url)
    if m and m.group(3):
        found.append(m.group(3))
    found += [m.group(2) for m in _SECRET_PARAMS.finditer(url) if m.group(2)]
    return found


#: every secret seen in a loaded configuration, for :func:`scrub`
KNOWN_SECRETS: set[str] = set()


def scrub(text: str) -> str:
    """``text`` with every secret of the loaded configurations masked."""
    for secret in sorted(KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def resolve_url_path(url: str, base: Path) -> str:
    """Make the path of an embedded URL (``milvus-lite:///./x.db``) absolute
    against ``base``. ``scheme:///rel`` and ``scheme:///./rel`` are relative,
    ``scheme:////abs`` is absolute (as in SQLAlchemy)."""
    scheme = scheme_of(url)
    if scheme.split("+", 1)[0] not in _PATH_SCHEMES:
        return url
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ConfigError(f"{mask_url(url)!r}: write {scheme}:///relative/path or {scheme}:////absolute/path")
    path, sep, query = rest[1:].partition("?")
    if path in ("", ":memory:"):
        return url
    p = Path(path)
    if not p.is_absolute():
        p = (base / p).resolve()
    return f"{scheme}:///{p}" + (sep + query if sep else "")


@dataclass
class StoreConfig:
    """One ``[stores.NAME]`` table: its name, expanded URL, kind and options."""

    name: str
    url: str
    kind: str
    options: dict = field(default_factory=dict)

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    @property
    def path(self) -> str:
        """The file system path of an embedded store URL."""
        return self.url.split("://", 1)[1][1:].split("?", 1)[0]

    def scrub(self, text: str) -> str:
        """``text`` with this store's secrets masked (for driver messages)."""
        for secret in secrets_of(self.url):
            text = text.replace(secret, "***")
        return text


@dataclass
class Config:
    path: Path
    script_location: Path
    stores: dict[str, StoreConfig]
    file_template: str = "{rev}_{slug}"
    lock_timeout: float = 60.0
    lock_lease: float = 30.0
    options: dict = field(default_factory=dict)
    #: the ``[test]`` table, read by the pytest plugin (:mod:`ragrev.pytest_plugin`)
    test: dict = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def templates_dir(self) -> Path:
        return self.directory / "templates"

    def store(self, name: str) -> StoreConfig:
        try:
            return self.stores[name]
        except KeyError:
            raise ConfigError(f"unknown store {name!r}; {self.path.name} defines: {', '.join(self.stores) or 'none'}") from None


def find_config(explicit: str | os.PathLike | None = None) -> Path:
    """``-c PATH``, else ``$RAGREV_CONFIG``, else ``./ragrev.toml``."""
    chosen = explicit or os.environ.get("RAGREV_CONFIG") or CONFIG_NAME
    path = Path(chosen)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"no configuration at {path} (run 'ragrev init DIR', or pass -c PATH)")
    return path.resolve()


def load_config(explicit: str | os.PathLike | None = None, environ=None) -> Config:
    """Read and check a ``ragrev.toml``."""
    path = find_config(explicit)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    return parse_config(data, path, environ)


def parse_config(data: dict, path: Path, environ=None) -> Config:
    base = path.parent
    section = data.get("ragrev", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [ragrev] must be a table")
    unknown_top = set(data) - {"ragrev", "stores", "test"}
    if unknown_top:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown_top))}; "
                          f"expected [ragrev], [stores.NAME] and [test]")
    if not isinstance(data.get("test", {}), dict):
        raise ConfigError(f"{path}: [test] must be a table")

    def opt(key, default):
        value = section.get(key, default)
        return expand_vars(value, f"{path}: [ragrev] {key}", environ) if isinstance(value, str) else value

    script_location = base / opt("script_location", "revisions")
    stores: dict[str, StoreConfig] = {}
    raw_stores = data.get("stores", {})
    if not isinstance(raw_stores, dict):
        raise ConfigError(f"{path}: [stores] must hold tables [stores.NAME]")
    for name, table in raw_stores.items():
        where = f"{path}: [stores.{name}]"
        if not name.isidentifier() or name.startswith("_"):
            raise ConfigError(f"{where}: store names must be Python identifiers not starting with '_'")
        if not isinstance(table, dict) or "url" not in table:
            raise ConfigError(f"{where}: needs url = \"...\"")
        if not isinstance(table["url"], str):
            raise ConfigError(f"{where}: url must be a string")
        url = expand_vars(table["url"], where, environ)
        kind = store_kind(url)
        url = resolve_url_path(url, base)
        KNOWN_SECRETS.update(s for s in secrets_of(url) if len(s) >= 3)
        options = {
            k: (expand_vars(v, where, environ) if isinstance(v, str) else v)
            for k, v in table.items()
            if k != "url"
        }
        stores[name] = StoreConfig(name, url, kind, options)
    known = {"script_location", "file_template", "lock_timeout", "lock_lease"}
    return Config(
        path=path,
        script_location=script_location,
        stores=stores,
        file_template=opt("file_template", "{rev}_{slug}"),
        lock_timeout=parse_duration(opt("lock_timeout", "60s"), "lock_timeout"),
        lock_lease=parse_duration(opt("lock_lease", "30s"), "lock_lease"),
        options={k: v for k, v in section.items() if k not in known},
        test=data.get("test", {}),
    )
