"""embeddings v2: 256 dimensions, switched blue-green

A better embedding (here: hashing(dim=256, seed=1), standing for a new
model) means new vectors of a new dimension for every passage. Blue-green,
so that the assistant keeps answering from the old vectors until the new
ones are proven:

1. create ``chunks_256`` (green) with the new dimension and an HNSW/COSINE index;
2. copy every passage from ``chunks`` (blue, through its alias) with its
   text re-embedded — batched, resumable from the last primary key;
3. the gate: green has as many rows as blue, and its index finds the exact
   top-10 neighbours for at least 95% of sampled queries;
4. only then point the alias ``chunks`` at green: the switch the
   application sees, one call.

Blue stays as it is, the way back: the derived downgrade points the alias
at it again and soft-drops green. Drop blue in a later revision, once v2
has proven itself in production.

Revision ID: e63b4a9d7f25
Revises: 2d7c8e5f1a96
Create Date: 2026-09-14 10:05:00+00:00
"""
from ragrev.embeddings import hashing

revision = "e63b4a9d7f25"
down_revision = "2d7c8e5f1a96"
branch_labels = None
depends_on = None

EMBED_V2 = hashing(dim=256, seed=1)


def with_v2_embedding(row):
    """A passage with its vector recomputed from its text by the new model."""
    return {**row, "embedding": EMBED_V2([row["text"]])[0].tolist()}


def upgrade(op):
    op.vectors.create_collection("chunks_256", fields=[
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
        {"name": "source_id", "type": "INT64"},
        {"name": "position", "type": "INT64"},
        {"name": "text", "type": "VARCHAR", "max_length": 4096},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 256},
        {"name": "lang", "type": "VARCHAR", "max_length": 8},
    ], indexes={"embedding": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 16, "efConstruction": 200}}},
        description="help-center passages; embedding: hashing(dim=256, seed=1)")
    op.vectors.copy("chunks", "chunks_256", transform=with_v2_embedding, batch_size=1000)
    op.vectors.expect_count("chunks_256", same_as="chunks")
    op.vectors.check_recall("chunks_256", k=10, queries=100, min_recall=0.95, search_params={"ef": 64})
    op.vectors.alter_alias("chunks_256", "chunks")
