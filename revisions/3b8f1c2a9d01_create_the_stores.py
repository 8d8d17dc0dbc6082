"""create the stores

Day one of Kestrel Assist, the help-center assistant of a (fictional) e-bike
maker. Four stores, one revision:

- docs.documents (MongoDB): the help-center articles, one document each, held
  to a JSON Schema (v1: title, body, source and dates required);
- vectors.chunks (Milvus): the articles cut into passages, with a 64-dim
  embedding under an IVF_FLAT index on L2 distance — the usual first choice;
- docs.conversations (MongoDB): the chat history, one document per message
  (session, sequence number, time, role, text), indexed by session and time;
- eu.conversations: the same collection on the EU instance of the assistant,
  which runs on its own database (merged in by revision b81e5d3f6c0a);
- meta.sources (SQL): the catalog of sites and manuals the articles come from.

Every operation has an inverse, so there is no downgrade(): ragrev derives
it (each collection and the table are soft-dropped into the trash).

Revision ID: 3b8f1c2a9d01
Revises:
Create Date: 2026-03-02 09:00:00+00:00
"""
import sqlalchemy as sa

revision = "3b8f1c2a9d01"
down_revision = None
branch_labels = None
depends_on = None

DOCUMENT_V1 = {
    "type": "object",
    "required": ["title", "body", "source_id", "url", "created_at"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "body": {"type": "string"},
        "source_id": {"type": "integer", "minimum": 1},
        "url": {"type": "string"},
        "created_at": {"bsonType": "date"},
    },
}

MESSAGE = {
    "type": "object",
    "required": ["session_id", "seq", "ts", "role", "content"],
    "properties": {
        "session_id": {"type": "string"},
        "seq": {"type": "integer", "minimum": 0},
        "ts": {"bsonType": "date"},
        "role": {"enum": ["user", "assistant"]},
        "content": {"type": "string"},
    },
}


def upgrade(op):
    op.docs.create_collection("documents", schema=DOCUMENT_V1)
    op.docs.create_index("documents", [("source_id", 1), ("created_at", -1)])

    op.vectors.create_collection("chunks", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
        {"name": "source_id", "type": "INT64"},
        {"name": "position", "type": "INT64"},
        {"name": "text", "type": "VARCHAR", "max_length": 4096},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 64},
    ], indexes={"embedding": {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 64}}},
        description="help-center passages; embedding: hashing(dim=64)")

    op.docs.create_collection("conversations", schema=MESSAGE)
    op.docs.create_index("conversations", [("session_id", 1), ("ts", 1)])
    op.eu.create_collection("conversations", schema=MESSAGE)
    op.eu.create_index("conversations", [("session_id", 1), ("ts", 1)])

    op.meta.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("license", sa.String(40), nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
