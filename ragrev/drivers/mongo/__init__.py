"""The MongoDB driver: any MongoDB server (``mongodb://``, ``mongodb+srv://``) or an
embedded SecantusDB (``secantus:///dir``), on pymongo only.

This module only describes the driver (no driver library is imported). The
store lives in :mod:`ragrev.drivers.mongo.store`, how it applies each document
operation in :mod:`ragrev.drivers.mongo.steps` (``aggregate_into`` in
:mod:`~ragrev.drivers.mongo.pipeline`), chat archives in
:mod:`~ragrev.drivers.mongo.chats`, the embedded server in :mod:`~ragrev.drivers.mongo.secantus`.
"""
from ragrev.drivers import Driver

DRIVER = Driver("mongo", "mongo", "document", "ragrev.drivers.mongo.store:MongoStore",
                schemes=("mongodb", "mongodb+srv", "secantus"), path_schemes=("secantus",))
