"""The SQL driver: any SQLAlchemy URL (SQLite, PostgreSQL, MySQL/MariaDB...), with
Alembic's operations.

This module only describes the driver (no driver library is imported). The
store lives in :mod:`ragrev.drivers.sql.store`, chat archives on SQL tables in
:mod:`~ragrev.drivers.sql.chats`.
"""
from ragrev.drivers import Driver

DRIVER = Driver("sql", "sql", "sql", "ragrev.drivers.sql.store:SqlStore",
                dialects=("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"),
                path_schemes=("sqlite",))
