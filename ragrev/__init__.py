"""ragrev: Alembic-style revisions for the stores of a RAG system.

Revision files with ``upgrade(op)`` / ``downgrade(op)`` over Milvus vector
collections, MongoDB documents, chat archives and SQL tables; a version table
and a step journal in every store; one runner that moves every store to a
target along the revision graph.

The package is importable without any driver: drivers (pymilvus, pymongo,
sqlalchemy) are imported lazily by the drivers in ``ragrev.drivers``.
"""
__version__ = "0.1.0"


def contract(store, collection: str, embedder=None, **options):
    """The embedding contract of a vector collection; with ``embedder``, refuse
    (:class:`ragrev.contracts.ContractMismatch`) one whose model or dimension
    differs. See :func:`ragrev.contracts.contract`."""
    from ragrev.contracts import contract as _contract

    return _contract(store, collection, embedder, **options)


import logging as _logging

# ragrev logs under "ragrev.*" (runner, stores); an application routes it with
# its own handlers. Without any, nothing is printed (the CLI adds its own).
_logging.getLogger("ragrev").addHandler(_logging.NullHandler())
del _logging
