"""The Milvus driver: Milvus Lite (embedded, ``milvus-lite:///path.db``) or a
Milvus server (``milvus://host:port``), the vector family's reference driver.

This module only describes the driver (no driver library is imported). The
store lives in :mod:`ragrev.drivers.milvus.store` (built on
:mod:`~ragrev.drivers.milvus.connection` and :mod:`~ragrev.drivers.milvus.schema`),
how it applies each vector operation in :mod:`~ragrev.drivers.milvus.schema_steps`
and :mod:`~ragrev.drivers.milvus.data_steps` (with :mod:`~ragrev.drivers.milvus.online`
for catch-up and :mod:`~ragrev.drivers.milvus.bulk` for bulk import).
"""
from ragrev.drivers import Driver

DRIVER = Driver("milvus", "milvus", "vector", "ragrev.drivers.milvus.store:MilvusStore",
                schemes=("milvus-lite", "milvus", "milvus+http", "milvus+https"), path_schemes=("milvus-lite",))
