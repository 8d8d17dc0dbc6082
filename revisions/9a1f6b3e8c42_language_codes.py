"""add language codes to documents and chunks

The help center now has German and French articles, and the assistant
should answer in the asker's language: every article and every passage gets
an ISO 639-1 code in a new field ``lang``, found by a small stop-word
detector (a pure function of the text, so a rerun finds the same codes).

- docs.documents: ``add_field`` computed from each document's body, in
  batches; then JSON Schema v2, which requires ``lang`` (set_schema checks
  the existing documents first and fails, changing nothing, if any lacks
  it); an index on (lang, source_id).
- vectors.chunks: ``add_field`` computed from each passage. Milvus cannot
  add a non-null field in place, so ragrev copies the rows into a new
  collection, points an alias named ``chunks`` at it and keeps the old one
  in the trash; expect_count then checks that every passage got a code.

Downgrade (derived): the alias goes back to the old collection, the field
is removed from exactly the documents it was added to, the validator and
index are restored.

Revision ID: 9a1f6b3e8c42
Revises: c5d90e4b2a17
Create Date: 2026-05-18 11:15:00+00:00
"""
import re

revision = "9a1f6b3e8c42"
down_revision = "c5d90e4b2a17"
branch_labels = None
depends_on = None

STOP_WORDS = {
    "en": {"the", "and", "of", "to", "a", "is", "for", "with", "your", "on", "it", "when", "every"},
    "de": {"der", "die", "das", "und", "nicht", "mit", "ist", "den", "des", "dem", "sie", "bei", "wird"},
    "fr": {"le", "la", "les", "et", "des", "du", "est", "pas", "vous", "vos", "pour", "dans", "une", "au"},
}
WORD = re.compile(r"\w+", re.UNICODE)


def detect(text):
    """The language whose stop words the text uses most ("en" on a tie)."""
    words = WORD.findall(text.lower())
    hits = {lang: sum(w in stop for w in words) for lang, stop in STOP_WORDS.items()}
    return max(hits, key=lambda lang: (hits[lang], lang == "en"))


DOCUMENT_V2 = {
    "type": "object",
    "required": ["title", "body", "source_id", "url", "created_at", "lang"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "body": {"type": "string"},
        "source_id": {"type": "integer", "minimum": 1},
        "url": {"type": "string"},
        "created_at": {"bsonType": "date"},
        "lang": {"enum": ["en", "de", "fr"]},
    },
}


def upgrade(op):
    op.docs.add_field("documents", "lang", fill=lambda doc: detect(doc["body"]), batch_size=500)
    op.docs.set_schema("documents", DOCUMENT_V2)
    op.docs.create_index("documents", [("lang", 1), ("source_id", 1)])

    op.vectors.add_field("chunks", "lang", "VARCHAR", max_length=8, nullable=False,
                         fill=lambda row: detect(row["text"]), batch_size=1000)
    op.vectors.expect_count("chunks", count=0, filter='lang not in ["en", "de", "fr"]')
