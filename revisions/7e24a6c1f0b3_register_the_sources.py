"""register the sources

The catalog of the six sources the articles come from: reference data,
written with Alembic's bulk_insert. bulk_insert has no inverse, so this
revision writes its downgrade() — and stays apart from the corpus load of
the next revision, whose downgrade ragrev derives.

Revision ID: 7e24a6c1f0b3
Revises: 3b8f1c2a9d01
Create Date: 2026-03-03 10:30:00+00:00
"""
import datetime as dt

import sqlalchemy as sa

revision = "7e24a6c1f0b3"
down_revision = "3b8f1c2a9d01"
branch_labels = None
depends_on = None

sources = sa.table(
    "sources",
    sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("url", sa.String),
    sa.column("license", sa.String), sa.column("added_at", sa.DateTime),
)

SOURCES = [
    (1, "Kestrel help center", "https://help.kestrel.example/en/", "CC-BY-4.0"),
    (2, "Kestrel service manuals", "https://service.kestrel.example/manuals/", "proprietary"),
    (3, "Kestrel community forum", "https://forum.kestrel.example/", "CC-BY-SA-4.0"),
    (4, "Kestrel release notes", "https://kestrel.example/releases/", "CC-BY-4.0"),
    (5, "Kestrel Hilfe-Center", "https://help.kestrel.example/de/", "CC-BY-4.0"),
    (6, "Kestrel centre d'aide", "https://help.kestrel.example/fr/", "CC-BY-4.0"),
]


def upgrade(op):
    op.meta.bulk_insert(sources, [
        {"id": i, "name": name, "url": url, "license": lic, "added_at": dt.datetime(2026, 3, 3, 10, 30)}
        for i, name, url, lic in SOURCES
    ])


def downgrade(op):
    op.meta.execute("DELETE FROM sources WHERE id BETWEEN 1 AND 6")
