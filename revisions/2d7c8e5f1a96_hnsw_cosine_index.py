"""index upgrade: HNSW on cosine similarity

IVF_FLAT on L2 was a fine start; the embeddings are normalized and the
assistant ranks by cosine similarity, and HNSW answers faster at the same
recall. The index is rebuilt in place (the collection is released, indexed,
loaded again), then check_recall gates the revision: the top-10 neighbours
of 100 sampled passages found through the new index must agree with an
exact cosine search for at least 95% of them, or the run stops with exit 1
(and `ragrev downgrade -1` puts IVF_FLAT/L2 back).

Revision ID: 2d7c8e5f1a96
Revises: 9a1f6b3e8c42
Create Date: 2026-07-06 16:40:00+00:00
"""
revision = "2d7c8e5f1a96"
down_revision = "9a1f6b3e8c42"
branch_labels = None
depends_on = None


def upgrade(op):
    op.vectors.drop_index("chunks", "embedding")
    op.vectors.create_index("chunks", "embedding", index_type="HNSW", metric_type="COSINE",
                            params={"M": 16, "efConstruction": 200})
    op.vectors.check_recall("chunks", k=10, queries=100, min_recall=0.95, search_params={"ef": 64})
