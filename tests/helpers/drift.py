"""Test helpers (drift): the revision the state and drift tests start from."""

REV = '''
def upgrade(op):
    fields = [
        {"name": "id", "type": "INT64", "primary": True},
        {"name": "doc_id", "type": "VARCHAR", "max_length": 32},
        {"name": "text", "type": "VARCHAR", "max_length": 200},
        {"name": "embedding", "type": "FLOAT_VECTOR", "dim": 8},
    ]
    op.vec.create_collection("chunks", fields=fields,
                             indexes={"embedding": {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8}}},
                             embedding={"model": "mini-embed", "version": "1", "chunker": "para-v1"})
    op.vec.create_collection("other", fields=fields)
    op.vec.create_alias("chunks", "live")
    op.vec.insert("chunks", rows=[{"id": i, "doc_id": f"d{i % 5}", "text": f"passage {i}",
                                   "embedding": [float((i + k) % 7) + 1.0 for k in range(8)]} for i in range(40)])
    op.docs.create_collection("documents", schema={"type": "object", "required": ["title"],
                                                   "properties": {"title": {"type": "string"}}})
    op.docs.create_index("documents", [("source_id", 1)])
    op.docs.insert("documents", [{"_id": f"d{i}", "title": f"doc {i}", "source_id": i} for i in range(5)])
    op.meta.create_table("sources", sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("name", sa.String(50), nullable=False))
    op.meta.create_index("ix_sources_name", "sources", ["name"])
    op.check_references("vec.chunks.doc_id", "docs.documents._id", batch_size=7)
'''
