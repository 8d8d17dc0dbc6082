"""Operation objects: what ``op.<store>.<name>(...)`` builds (docs/configuration.md).

An operation is data: its parameters, a digest over their normalized form, a
one-line description, and ``reverse(captured)`` where an inverse exists. It
never talks to a store: the implementation of an operation is looked up by
(operation class, store kind) in :mod:`ragrev.stores` (as Alembic's
``toimpl``), so driver code never lives here.

Operation classes are grouped by FAMILY (``vector``, ``document``, ``sql``,
``chat``): they live in ``ragrev.ops.<family>*`` and register themselves under
their family with :func:`register`; :func:`operations_for` takes a family or a
store kind (kind -> driver -> family) and imports the family's module on first use.
"""
from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import hashlib
import importlib
import inspect
import json
import logging
import textwrap
import warnings
from typing import Any, Callable, ClassVar

from ragrev.errors import Irreversible

#: family -> {op name -> Operation class}
_REGISTRY: dict[str, dict[str, type]] = {}
#: family -> {former op name -> Operation class} (see ``Operation.old_names``)
_OLD_NAMES: dict[str, dict[str, type]] = {}
#: the module that defines the operations of each family (it imports the family's other modules)
_FAMILY_MODULES = {
    "sql": "ragrev.ops.sql",
    "vector": "ragrev.ops.vector",
    "document": "ragrev.ops.document",
    "chat": "ragrev.ops.chats",
}


def family_of(kind: str) -> str:
    """The family (``vector``, ``document``, ``sql``, ``chat``) of a store kind or
    family name: a kind resolves through its driver (``Driver.vocabulary``)."""
    if kind in _FAMILY_MODULES or kind in _REGISTRY:
        return kind
    from ragrev.drivers import for_kind

    driver = for_kind(kind)
    if driver is None:
        return kind
    vocabulary = driver.vocabulary
    return vocabulary if vocabulary == kind else family_of(vocabulary)


def register(kind: str):
    """Class decorator: make an Operation class ``op.<store of the family>.<cls.name>``.
    ``kind`` is a family, or a store kind standing for its driver's family."""

    def deco(cls):
        family = family_of(kind)
        cls.kind = family
        _REGISTRY.setdefault(family, {})[cls.name] = cls
        for old in cls.old_names:
            _OLD_NAMES.setdefault(family, {})[old] = cls
        return cls

    return deco


def former_names(kind: str) -> dict[str, type]:
    """Former operation names of a family's vocabulary (or a store kind's), still accepted
    with a deprecation warning (``Operation.old_names``): old name -> class."""
    operations_for(kind)
    return _OLD_NAMES.get(family_of(kind), {})


def operations_for(kind: str) -> dict[str, type]:
    """The operation classes of a family, or of a store kind (kind -> driver ->
    family: see ``Driver.operations`` in :mod:`ragrev.drivers`), by name."""
    family = family_of(kind)
    if family in _FAMILY_MODULES:  # even when another module of the family registered first
        importlib.import_module(_FAMILY_MODULES[family])
    return _REGISTRY.get(family, {})


def offered(kind: str) -> dict[str, type]:
    """The operations ``op.<store>`` offers a revision author: :func:`operations_for`
    without the inverse-only ones (made only by ``reverse()``)."""
    return {n: c for n, c in operations_for(kind).items() if not c.inverse_only}


class RagrevDeprecationWarning(DeprecationWarning):
    """A revision spells an operation or a parameter the former way: it still
    works for one release (the CLI shows it as a ``ragrev: warning:`` line)."""


_deprecations_said: set[str] = set()


def deprecated(message: str, where: str = "") -> None:
    """Say once per place that a former spelling was used: a ``ragrev.deprecation``
    log record (shown by the command line) and a :class:`RagrevDeprecationWarning`."""
    if where + message in _deprecations_said:
        return
    _deprecations_said.add(where + message)
    logging.getLogger("ragrev.deprecation").warning("%s%s", where, message)
    warnings.warn(where + message, RagrevDeprecationWarning, stacklevel=3)


class Operation:
    """Base of every operation. Subclasses are dataclasses whose fields are the
    operation's parameters; ``name`` is how revisions call it.

    Class attributes used by the runner and the linter:

    - ``is_check``: a check step (changes nothing; fails the run when false).
    - ``destructive``: removes data or structure (lint flags it).
    - ``data_step``: walks rows in batches (progress, resume token, ``batch_size``).
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    is_check: ClassVar[bool] = False
    destructive: ClassVar[bool] = False
    data_step: ClassVar[bool] = False
    #: changes only the rows (documents, vectors) of its ``collection``: an
    #: inverse made moot when the same downgrade then drops that collection
    rows_only: ClassVar[bool] = False
    #: drops its ``collection`` (softly: into the trash)
    drops_collection: ClassVar[bool] = False
    #: made only by another operation's ``reverse()`` (``restore_rows``,
    #: ``delete_inserted``...): not offered to revision authors
    inverse_only: ClassVar[bool] = False
    #: former names of the operation, accepted for one release with a deprecation warning
    old_names: ClassVar[tuple] = ()
    #: former keyword spellings, accepted for one release with a deprecation warning:
    #: old keyword -> new keyword, or -> ``fn(value) -> (new keyword, new value)``
    #: where the new spelling depends on the value
    renamed: ClassVar[dict[str, "str | Callable"]] = {}
    #: parameters new in this release: left out of :meth:`former_normalized` while at their default
    added: ClassVar[tuple] = ()
    #: current keyword -> former keyword for :meth:`former_normalized` (default: the
    #: inverse of the string entries of :attr:`renamed`)
    former_keys: ClassVar[dict[str, str]] = {}

    # set by the recorder, not parameters
    store: str = ""
    location: tuple[str, int] | None = None
    #: the deprecation notes of the call that made it (former names or keywords; lint: ``former-spelling``)
    former_spellings: tuple = ()

    # --- building ----------------------------------------------------------------

    @classmethod
    def current_spelling(cls, kwargs: dict) -> tuple[dict, list[str]]:
        """``kwargs`` with former keywords (:attr:`renamed`) turned into the
        current ones, and a note for each one turned; ValueError when a
        former keyword and its current one are both given."""
        notes = []
        for old, new in cls.renamed.items():
            if old not in kwargs:
                continue
            value = kwargs.pop(old)
            key, value = new(value) if callable(new) else (new, value)
            if key in kwargs:
                raise ValueError(f"give {key}= or the former {old}=, not both")
            kwargs[key] = value
            notes.append(f"{cls.name}({old}=...) is deprecated: write {cls.name}({key}=...)")
        return kwargs, notes

    # --- data ----------------------------------------------------------------

    def params(self) -> dict:
        if dataclasses.is_dataclass(self):
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dict(getattr(self, "_params", {}))

    def normalized(self) -> dict:
        """The operation as plain JSON data: what checksums and plans are made of."""
        return {"store": self.store, "op": self.name, "params": normalize(self.params())}

    def former_normalized(self) -> dict:
        """The operation normalized as the previous release did (its former name,
        keywords and parameters): a revision applied then keeps its checksum
        whichever spelling it uses now (:attr:`RevisionPlan.former_checksum`)."""
        keys = dict(self.former_keys) or {new: old for old, new in self.renamed.items() if isinstance(new, str)}
        defaults = ({f.name: f.default for f in dataclasses.fields(self)} if dataclasses.is_dataclass(self) else {})
        params: dict = {}
        for key, value in self.params().items():
            if key in self.added and value == defaults.get(key):
                continue
            old = keys.get(key, key)
            if old in params and value is None:  # two current keywords for one former one: keep the one given
                continue
            params[old] = value
        return {"store": self.store, "op": self.old_names[0] if self.old_names else self.name,
                "params": normalize(params)}

    @property
    def has_former(self) -> bool:
        """True when the previous release may have normalized this operation
        otherwise (a former name, keyword or an added parameter):
        :meth:`former_normalized` may differ from :meth:`normalized`."""
        return bool(self.renamed or self.old_names or self.added or self.former_keys)

    def canonical_json(self) -> str:
        """:meth:`normalized` as the JSON text checksums hash (sorted keys, no
        spaces). Kept once computed for a store: an operation does not change
        once recorded, and a step's rows may be large (normalized and encoded
        once, for the revision's checksum and the step's digest alike)."""
        cached = self.__dict__.get("_json")
        if cached is None or cached[0] != self.store:
            cached = self.__dict__["_json"] = (self.store, canonical_json(self.normalized()))
        return cached[1]

    def former_json(self) -> str:
        """:meth:`former_normalized` as JSON text (:meth:`canonical_json` when the
        operation has no former spelling)."""
        if self.has_former:
            return canonical_json(self.former_normalized())
        return self.canonical_json()

    def digest(self) -> str:
        """A short hash of :meth:`normalized` (the journal's step identity)."""
        cached = self.__dict__.get("_digest")
        if cached is None or cached[0] != self.store:
            cached = self.__dict__["_digest"] = (self.store, _sha256(self.canonical_json())[:16])
        return cached[1]

    def digests(self) -> tuple[str, ...]:
        """:meth:`digest`, and the one the previous release journaled when it
        differs (its spelling, see :meth:`former_normalized`): a step it
        started is this step."""
        if not self.has_former:
            return (self.digest(),)
        former = _sha256(self.former_json())[:16]
        return (self.digest(),) if former == self.digest() else (self.digest(), former)

    def describe(self) -> str:
        """One line for plans and logs."""
        parts = []
        for key, value in self.params().items():
            if value is None or value is MISSING or value is False or value == () or value == {}:
                continue
            parts.append(f"{key}={short(value)}")
        return f"{self.name}({', '.join(parts)})"

    # --- inverse ---------------------------------------------------------------

    @property
    def reversible(self) -> bool:
        """True when ``reverse`` is defined (it may still need captured data)."""
        return self.is_check or type(self).reverse is not Operation.reverse

    def reverse(self, captured: dict | None) -> list["Operation"]:
        """The operations that undo this one, given what its implementation
        captured when it ran (``captured``; None when planning). Checks undo to
        nothing."""
        if self.is_check:
            return []
        raise Irreversible(f"{self.name} on store {self.store!r} has no inverse; write downgrade(op) in the revision")

    def reverse_failed(self, captured: dict | None) -> list["Operation"]:
        """The operations that undo what this step wrote before it failed
        part-way (an error, not a kill: a killed step is finished first).
        A data step records what it writes before writing it (``captured``,
        saved at each checkpoint, as for resuming), so its inverse undoes
        exactly that part; a step that recorded nothing wrote nothing that can
        be told apart, and gets no inverse. Other steps are one call each:
        done whole or not at all (SQL steps also roll back with their
        transaction)."""
        if not self.data_step or not captured:
            return []
        return self.reverse(captured)

    def inverse(self, *ops: "Operation") -> list["Operation"]:
        """Helper for ``reverse``: mark ``ops`` as belonging to this op's store."""
        for o in ops:
            o.store = self.store
            o.location = self.location
        return list(ops)

    def validate(self) -> None:
        """Checks that need no store (e.g. a JSON Schema against the meta-schema);
        raise :class:`ragrev.errors.OperationError`."""

    def where(self) -> str:
        if self.location:
            return f"{self.location[0]}:{self.location[1]}: "
        return ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.store}.{self.describe()}>"


class _Missing:
    """No value given, where None is a value (``add_field`` without ``default=``)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def short(value, limit: int = 60) -> str:
    """``value`` in at most ``limit`` characters, for plans and logs. A large
    container is not rendered whole (a revision may pass 20,000 rows: their
    full ``repr`` cost seconds for every log line of the step)."""
    if callable(value):
        return getattr(value, "__name__", "<callable>")
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > 50:
        import reprlib

        cut = reprlib.Repr()
        cut.maxlist = cut.maxtuple = cut.maxdict = cut.maxset = cut.maxfrozenset = 3
        cut.maxstring = cut.maxother = limit
        text = cut.repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- normalization -------------------------------------------------------------------

def canonical_json(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_json(data) -> str:
    return _sha256(canonical_json(data))


def sha256_plan(up: list[str], down: list[str] | None) -> str:
    """``sha256_json({"up": [...], "down": [...]})`` of operations given as
    their JSON texts (:meth:`Operation.canonical_json`): the same bytes,
    without normalizing or encoding any operation again."""
    text = '{"down":' + ("null" if down is None else "[" + ",".join(down) + "]") + ',"up":[' + ",".join(up) + "]}"
    return _sha256(text)


def normalize(value) -> Any:
    """Plain JSON data for ``value``: containers recursively, callables by their
    normalized source (see :func:`callable_fingerprint`)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(normalize(v) for v in value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.timedelta)):
        return str(value)
    if isinstance(value, Operation):
        return value.normalized()
    if hasattr(value, "ragrev_normalized"):  # parameterized callables (ragrev.embeddings)
        return normalize(value.ragrev_normalized())
    if callable(value):
        return {"callable": callable_fingerprint(value)}
    if hasattr(value, "tolist"):  # numpy arrays
        return normalize(value.tolist())
    return repr(value)


def callable_fingerprint(fn) -> str:
    """A fingerprint of a callable that ignores comments and formatting.

    Functions defined in a revision file count by their source (as an AST
    dump, so layout and comments do not count); functions from elsewhere (an
    installed package, ragrev itself) by their qualified name.
    """
    module = getattr(fn, "__module__", "") or ""
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    if not module.startswith("ragrev_revision_"):
        return f"{module}:{qualname}"
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return _code_fingerprint(fn)
    tree = _parse_fragment(source)
    if tree is None:
        return _code_fingerprint(fn)
    node = tree
    if getattr(fn, "__name__", "") == "<lambda>":
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        if len(lambdas) == 1:
            node = lambdas[0]
    return hashlib.sha256(ast.dump(node, annotate_fields=False).encode()).hexdigest()[:16]


def _parse_fragment(source: str):
    for text in (source, "(" + source.strip().rstrip(",") + ")"):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
    # a lambda in the middle of a call: cut at its start
    idx = source.find("lambda")
    if idx >= 0:
        frag = source[idx:]
        for end in range(len(frag), 0, -1):
            try:
                return ast.parse(frag[:end])
            except SyntaxError:
                continue
    return None


def _code_fingerprint(fn) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)

    def walk(c):
        consts = [walk(k) if hasattr(k, "co_code") else repr(k) for k in c.co_consts]
        return [c.co_code.hex(), consts, list(c.co_names), list(c.co_varnames)]

    return sha256_json(walk(code))[:16]
