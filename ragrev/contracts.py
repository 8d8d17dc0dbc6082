"""The embedding contract: which model made a collection's vectors.

``create_collection(..., embedding={"model": ..., "version": ..., "chunker": ...})``
and ``reembed`` record, in the collection's properties (key
``ragrev.embedding``), the embedding model's name and version, the vector
field and the chunker version when given. The dimension and the metric are
not copied there: they are read from the field and its index, so they cannot
go stale when an index is rebuilt.

An application checks its query embedder against it once, at start-up::

    from ragrev import contract

    contract("vectors", "chunks", embedder=embed)       # raises ContractMismatch
    c = contract(client, "chunks")                        # a pymilvus MilvusClient works too
    c.model, c.version, c.dim, c.metric, c.chunker

``ragrev drift`` compares the contract each collection carries with the one
its revisions imply.
"""
from __future__ import annotations

import dataclasses
import json

from ragrev.errors import BadInput, RagrevError


class ContractMismatch(RagrevError):
    """The query embedder does not match the one that made the stored vectors."""

    exit_code = 4


@dataclasses.dataclass(frozen=True)
class Contract:
    """What a collection's vectors are: model, version, dimension, metric, chunker."""

    collection: str
    field: str | None
    dim: int | None
    metric: str | None
    model: str | None = None
    version: str | None = None
    chunker: str | None = None

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    def mismatches(self, embedder=None, *, model: str | None = None, version: str | None = None,
                   dim: int | None = None, chunker: str | None = None) -> list[str]:
        """What differs between this contract and a query embedder (or the
        model/version/dim/chunker given): one phrase each, empty when it fits.
        An embedder's model and version are read as by :func:`embedder_identity`;
        its dimension from its ``dim`` attribute, else by embedding one probe text."""
        if embedder is not None:
            emodel, eversion = embedder_identity(embedder)
            model = model or emodel
            version = version or eversion
            if dim is None:
                dim = embedder_dim(embedder)
        out = []
        if dim is not None and self.dim is not None and dim != self.dim:
            out.append(f"dimension {dim}, the collection holds {self.dim}")
        if model is not None and self.model is not None and model != self.model:
            out.append(f"model {model!r}, the vectors were made by {self.model!r}")
        if version is not None and self.version is not None and version != self.version:
            out.append(f"model version {version!r}, the vectors were made by version {self.version!r}")
        if chunker is not None and self.chunker is not None and chunker != self.chunker:
            out.append(f"chunker {chunker!r}, the passages were cut by {self.chunker!r}")
        return out

    def check(self, embedder=None, **given) -> "Contract":
        """Raise :class:`ContractMismatch` when ``embedder`` (or ``model=``,
        ``version=``, ``dim=``, ``chunker=``) differs; return the contract."""
        problems = self.mismatches(embedder, **given)
        if problems:
            raise ContractMismatch(f"collection {self.collection!r}: the query embedder has "
                                   + "; ".join(problems))
        return self


def embedder_identity(fn) -> tuple[str | None, str | None]:
    """(model, version) of an embedding function: its ``model_name``/``model``
    and ``model_version``/``version`` attributes (strings), else, for ragrev's
    own embeddings, their ``ragrev_normalized()`` (``hashing`` and its
    parameters), else its qualified name and no version."""
    model = next((v for v in (getattr(fn, "model_name", None), getattr(fn, "model", None))
                  if isinstance(v, str) and v), None)
    version = next((v for v in (getattr(fn, "model_version", None), getattr(fn, "version", None))
                    if isinstance(v, (str, int)) and not isinstance(v, bool)), None)
    if model is None and hasattr(fn, "ragrev_normalized"):
        norm = dict(fn.ragrev_normalized())
        model = str(norm.pop("embedding", type(fn).__name__))
        norm.pop("dim", None)
        if version is None and norm:
            version = json.dumps(norm, sort_keys=True, separators=(",", ":"))
    if model is None:
        model = f"{getattr(fn, '__module__', '') or ''}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    return model, None if version is None else str(version)


def embedder_dim(fn) -> int | None:
    dim = getattr(fn, "dim", None)
    if isinstance(dim, int) and not isinstance(dim, bool):
        return dim
    try:
        return len(fn(["ragrev dimension probe"])[0])
    except Exception:  # noqa: BLE001 - an embedder that cannot be probed is not checked on dimension
        return None


def from_description(collection: str, description: dict, indexes: dict) -> Contract:
    """A contract from ``describe_collection``'s answer and the vector indexes
    (field -> {"metric_type": ...})."""
    from ragrev.drivers.milvus.store import read_contract

    recorded = read_contract(description) or {}
    vectors = [f for f in description.get("fields", []) if "dim" in (f.get("params") or {})]
    field = recorded.get("field") or (vectors[0]["name"] if len(vectors) == 1 else None)
    f = next((v for v in vectors if v["name"] == field), None)
    dim = int(f["params"]["dim"]) if f else None
    metric = (indexes.get(field) or {}).get("metric_type") if field else None
    return Contract(collection, field, dim, metric, recorded.get("model"), recorded.get("version"),
                    recorded.get("chunker"))


def _read_client(client, collection: str) -> Contract:
    from pymilvus import MilvusException

    try:
        d = client.describe_collection(collection)
    except MilvusException as e:
        raise BadInput(f"no collection {collection!r}: {getattr(e, 'message', e)}") from None
    phys = d.get("collection_name") or collection
    indexes = {}
    for iname in client.list_indexes(phys):
        info = client.describe_index(phys, iname) or {}
        indexes[info.get("field_name") or iname] = {"metric_type": str(info.get("metric_type") or "").upper() or None}
    return from_description(collection, d, indexes)


def contract(store, collection: str, embedder=None, *, config=None, model: str | None = None,
             version: str | None = None, dim: int | None = None, chunker: str | None = None) -> Contract:
    """The embedding contract of ``collection`` in ``store`` (a store name of
    ``ragrev.toml``, found as the CLI finds it or given as ``config=`` (a path or
    a loaded config); or an open pymilvus ``MilvusClient``). With ``embedder``
    (or ``model=``/``version=``/``dim=``/``chunker=``), raise
    :class:`ContractMismatch` when they differ from it: the one-call guard an
    application runs at start-up."""
    if isinstance(store, str):
        from ragrev.config import Config, load_config
        from ragrev.stores import open_store

        cfg = config if isinstance(config, Config) else load_config(config)
        sc = cfg.store(store)
        if sc.kind != "milvus":
            raise BadInput(f"store {store!r} is a {sc.kind} store; embedding contracts are kept by vector stores")
        s = open_store(sc)
        s.connect()
        try:
            c = _read_client(s.c, collection)
        finally:
            s.close()
    else:
        c = _read_client(store, collection)
    if embedder is not None or any(v is not None for v in (model, version, dim, chunker)):
        c.check(embedder, model=model, version=version, dim=dim, chunker=chunker)
    return c
