"""The pgvector driver: vector collections as PostgreSQL tables (see docs/drivers.md).

This module only describes the driver (no driver library is imported);
the store and the implementations of the vector operations live in
:mod:`ragrev.drivers.pgvector.store` and are imported when a store is opened.
"""
from ragrev.drivers import Driver

DRIVER = Driver(
    "pgvector", "pgvector", "vector", "ragrev.drivers.pgvector.store:PgvectorStore",
    schemes=("pgvector", "pgvector+postgresql"), path_schemes=("pgvector",),
    capabilities={"vector_types": ["FLOAT_VECTOR", "FLOAT16_VECTOR"], "index_types": ["HNSW", "IVF_FLAT", "FLAT",
                  "AUTOINDEX"], "metrics": ["L2", "IP", "COSINE"], "aliases": "views", "transactions": "per batch",
                  "schema_caps": "ragrev.drivers.pgvector.schema:CAPS"},
)
