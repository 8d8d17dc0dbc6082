"""Reading ``ragrev.toml`` (docs/configuration.md).

A configuration names the revision directory and the stores. A store's kind
follows from its URL's scheme (:func:`store_kind`); relative paths in embedded
URLs are resolved against the directory of the configuration file;
``${VAR}`` / ``${VAR:-default}`` are read from the environment. Passwords and
tokens never leave this module unmasked except through ``StoreConfig.url``:
everything printed uses :func:`mask_url`.
"""
from __future__ import annotations

import keyword
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ragrev.errors import ConfigError

CONFIG_NAME = "ragrev.toml"

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
    """Replace ``${VAR}`` and ``${VAR:-default}``; the default may itself hold
    ``${...}`` (``${A:-${B:-x}}``), expanded only when used. A missing
    variable without default, or a ``${`` that does not close, is a
    :class:`ConfigError` naming it."""
    env = os.environ if environ is None else environ
    out, i = [], 0
    while True:
        j = text.find("${", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        end = _closing(text, j + 2)
        if end < 0:
            raise ConfigError(f"{where}: unclosed '${{' in {mask_url(text)!r}")
        body = text[j + 2:end]
        name, sep, default = body.partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"{where}: bad variable reference '${{{mask_url(body)}}}': write ${{NAME}} or "
                              f"${{NAME:-default}}")
        if name in env:
            out.append(env[name])
        elif sep:
            out.append(expand_vars(default, where, env))
        else:
            raise ConfigError(f"{where}: environment variable {name} is not set "
                              f"(write ${{{name}:-default}} to give a default)")
        i = end + 1


def _closing(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start`` (-1 if none)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise ConfigError(f"not a URL: {mask_url(url)!r} (expected scheme://...)")
    return url.split("://", 1)[0].lower()


def store_kind(url: str) -> str:
    """The store kind for a URL (``"milvus"``, ``"mongo"``, ``"sql"``, ``"pgvector"``...): the
    kind of the driver that registered its scheme (see :mod:`ragrev.drivers`)."""
    from ragrev.drivers import for_scheme, known_schemes

    scheme = scheme_of(url)
    driver = for_scheme(scheme)
    if driver is not None:
        return driver.kind
    raise ConfigError(
        f"unknown URL scheme {scheme!r} in {mask_url(url)!r}: use one of {', '.join(known_schemes())} "
        "(SQL: a SQLAlchemy URL such as postgresql+psycopg://...)"
    )


#: query parameters whose value is a secret (any name holding one of these words, any case):
#: ``password``, ``sslpassword``, ``tlsCertificateKeyFilePassword``, ``token``, ``access_token``,
#: ``secret``, ``api_key``, ``apikey``, ``sas``...
_SECRET_PARAMS = re.compile(
    r"([?&;][^=&;#]*(?:pass|pwd|token|secret|api_?key|credential|signature|sas|authmechanismproperties)[^=&;#]*=)"
    r"([^&;#]*)", re.I)


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where the password of ``url``'s ``user:password@`` is (start, end), or None.

    The authority ends at the *last* ``@`` before the query, so a password
    holding ``/``, ``@`` or ``:`` unencoded (which drivers' parsers disagree
    on) is still masked whole; the user name ends at the first ``:``."""
    if "://" not in url:
        return None
    start = url.index("://") + 3
    query = url.find("?", start)
    at = url.rfind("@", start, query if query >= 0 else len(url))
    if at < 0:
        return None
    colon = url.find(":", start, at)
    if colon < 0 or "/" in url[start:colon]:
        return None
    return colon + 1, at


def mask_url(url: str) -> str:
    """The URL with its password and secret query parameters replaced by ``***``."""
    span = _userinfo(url)
    if span and span[1] > span[0]:
        url = url[:span[0]] + "***" + url[span[1]:]
    return _SECRET_PARAMS.sub(lambda m: m.group(1) + "***", url)


def secrets_of(url: str) -> list[str]:
    """The secret parts of a URL, as written and percent-decoded (for
    scrubbing error messages from drivers, which print either)."""
    from urllib.parse import unquote, unquote_plus

    found = []
    span = _userinfo(url)
    if span and span[1] > span[0]:
        found.append(url[span[0]:span[1]])
    found += [m.group(2) for m in _SECRET_PARAMS.finditer(url) if m.group(2)]
    out = []
    for f in found:
        for form in (f, unquote(f), unquote_plus(f)):
            if form and form not in out:
                out.append(form)
    return out


#: every secret seen in a loaded configuration, for :func:`scrub`
KNOWN_SECRETS: set[str] = set()


def register_secrets(*values) -> None:
    """Add secrets a driver's own URL parser found (``ragrev.stores``) to
    those :func:`scrub` masks."""
    from urllib.parse import unquote

    for v in values:
        if isinstance(v, str) and len(v) >= 3:
            KNOWN_SECRETS.update({v, unquote(v)})


def scrub(text: str) -> str:
    """``text`` with every secret of the loaded configurations masked."""
    for secret in sorted(KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def resolve_url_path(url: str, base: Path) -> str:
    """Make the path of an embedded URL (``milvus-lite:///./x.db``) absolute
    against ``base``. ``scheme:///rel`` and ``scheme:///./rel`` are relative,
    ``scheme:////abs`` is absolute (as in SQLAlchemy)."""
    from ragrev.drivers import for_scheme

    scheme = scheme_of(url)
    driver = for_scheme(scheme)
    if driver is None or not driver.carries_path(scheme):
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
        """``text`` with this store's secrets (and every other known one) masked (for driver messages)."""
        for secret in sorted(secrets_of(self.url), key=len, reverse=True):
            text = text.replace(secret, "***")
        return scrub(text)


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
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    return parse_config(data, path, environ)


#: the keys of ``[ragrev]``
RAGREV_KEYS = (
    "script_location", "file_template", "lock_timeout", "lock_lease", "models",
    # re-embedding at scale (docs/reembedding.md)
    "executor", "bulk_staging", "embed_texts_per_second", "embed_tokens_per_minute",
)
#: the keys of :data:`RAGREV_KEYS` that are :class:`Config` fields (the others go to ``Config.options``)
_CONFIG_FIELDS = ("script_location", "file_template", "lock_timeout", "lock_lease")
#: the keys of a ``[stores.NAME]`` table, by store kind (``url`` and ``lock_timeout`` for all)
STORE_KEYS = {
    "milvus": ("connect_timeout", "lock_url"),
    "mongo": ("database", "timeout", "cache_size"),
    "sql": ("transaction",),
}
_COMMON_STORE_KEYS = ("url", "lock_timeout")
_DURATION_KEYS = {"lock_timeout", "lock_lease", "connect_timeout", "timeout"}


def _unknown_key(where: str, key: str, known, every=()) -> ConfigError:
    """``unknown key 'databse' (did you mean 'database'?)``: the closest key
    (``difflib``) among ``known``, else among ``every`` (a key of another
    store kind), named as such."""
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if not close and every:
        other = difflib.get_close_matches(key, list(every), n=1, cutoff=0.8)
        hint = f" ({other[0]!r} is not an option of this kind of store)" if other else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(known)}")


def _check_url(url: str, where: str) -> None:
    """A network URL whose port is not a number, or that names no host, is
    bad input (drivers fail on it later, with a traceback)."""
    from urllib.parse import urlsplit

    from ragrev.drivers import for_scheme

    scheme = scheme_of(url)
    driver = for_scheme(scheme)
    if driver is not None and driver.carries_path(scheme):
        return
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port, as the drivers' parsers do
    except ValueError:
        hint = ""
        if _userinfo(url):
            hint = " (a password holding '/', '@', ':' or '%' must be percent-encoded: %2F, %40, %3A, %25)"
        raise ConfigError(f"{where}: bad URL {mask_url(url)!r}: its port is not a number from 0 to 65535{hint}") from None


def _check_option(key: str, value, where: str, kind: str):
    if key in _DURATION_KEYS:
        seconds = parse_duration(value, f"{key} in {where}")
        if seconds < 0:
            raise ConfigError(f"{where}: {key} must not be negative")
        if key != "lock_timeout" and seconds <= 0:
            raise ConfigError(f"{where}: {key} must be more than 0s")
    elif key in ("database", "cache_size", "transaction") and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key} must be a non-empty string, not {value!r}")


#: the public attributes of the ``op`` a revision receives (:class:`ragrev.plan.Recorder`):
#: a store of one of these names would be shadowed by it (tests/test_namespaces.py keeps them in step)
RESERVED_STORE_NAMES = frozenset({"check_references"})


def parse_config(data: dict, path: Path, environ=None) -> Config:
    base = path.parent
    section = data.get("ragrev", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [ragrev] must be a table")
    unknown_top = set(data) - {"ragrev", "stores", "test"}
    if unknown_top:
        key = sorted(unknown_top)[0]
        import difflib

        close = difflib.get_close_matches(key, ["ragrev", "stores", "test"], n=1, cutoff=0.6)
        hint = f" (did you mean [{close[0]}]?)" if close else ""
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown_top))}{hint}; "
                          f"expected [ragrev], [stores.NAME] and [test]")
    if not isinstance(data.get("test", {}), dict):
        raise ConfigError(f"{path}: [test] must be a table")
    for key in section:
        if key not in RAGREV_KEYS:
            raise _unknown_key(f"{path}: [ragrev]", key, RAGREV_KEYS)

    def opt(key, default):
        value = section.get(key, default)
        return expand_vars(value, f"{path}: [ragrev] {key}", environ) if isinstance(value, str) else value

    for key in ("script_location", "file_template"):
        if not isinstance(section.get(key, ""), str):
            raise ConfigError(f"{path}: [ragrev] {key} must be a string, not {section[key]!r}")
    script_location = base / opt("script_location", "revisions")
    stores: dict[str, StoreConfig] = {}
    raw_stores = data.get("stores", {})
    if not isinstance(raw_stores, dict):
        raise ConfigError(f"{path}: [stores] must hold tables [stores.NAME]")
    for name, table in raw_stores.items():
        where = f"{path}: [stores.{name}]"
        if not name.isidentifier() or name.startswith("_") or keyword.iskeyword(name):
            raise ConfigError(f"{where}: store names must be Python identifiers not starting with '_'")
        if name in RESERVED_STORE_NAMES:
            raise ConfigError(f"{where}: a store cannot be named {name!r}: revisions call op.{name}(...) "
                              "themselves; choose another name")
        if not isinstance(table, dict) or "url" not in table:
            raise ConfigError(f"{where}: needs url = \"...\"")
        if not isinstance(table["url"], str):
            raise ConfigError(f"{where}: url must be a string")
        url = expand_vars(table["url"], where, environ).strip()
        if not url:
            raise ConfigError(f"{where}: url is empty" + (f" ({table['url']} expands to nothing)" if table["url"] else ""))
        try:
            kind = store_kind(url)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        _check_url(url, where)
        url = resolve_url_path(url, base)
        known_keys = _COMMON_STORE_KEYS + STORE_KEYS.get(kind, ())
        every = {k for keys in STORE_KEYS.values() for k in keys}
        for key, value in table.items():
            if key not in known_keys:
                raise _unknown_key(where, key, known_keys, every)
            if key != "url":
                _check_option(key, expand_vars(value, where, environ) if isinstance(value, str) else value, where, kind)
        KNOWN_SECRETS.update(s for s in secrets_of(url) if len(s) >= 3)
        options = {
            k: (expand_vars(v, where, environ) if isinstance(v, str) else v)
            for k, v in table.items()
            if k != "url"
        }
        if isinstance(options.get("lock_url"), str):  # a SQL database holding a Milvus server's lease
            options["lock_url"] = resolve_url_path(options["lock_url"], base)
            KNOWN_SECRETS.update(s for s in secrets_of(options["lock_url"]) if len(s) >= 3)
        stores[name] = StoreConfig(name, url, kind, options)
    lock_lease = parse_duration(opt("lock_lease", "30s"), "lock_lease")
    if lock_lease <= 0:
        raise ConfigError(f"{path}: [ragrev] lock_lease must be more than 0s (a lease of {opt('lock_lease', '')!r} "
                          f"would expire as soon as it is taken)")
    lock_timeout = parse_duration(opt("lock_timeout", "60s"), "lock_timeout")
    if lock_timeout < 0:
        raise ConfigError(f"{path}: [ragrev] lock_timeout must not be negative")
    return Config(
        path=path,
        script_location=script_location,
        stores=stores,
        file_template=opt("file_template", "{rev}_{slug}"),
        lock_timeout=lock_timeout,
        lock_lease=lock_lease,
        options={k: v for k, v in section.items() if k not in _CONFIG_FIELDS},
        test=data.get("test", {}),
    )
