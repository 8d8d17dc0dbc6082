"""archive conversations older than 90 days

Retention: conversations whose last message is more than 90 days older
than 2026-11-27 (the day this revision was written: a fixed cutoff, so the
same sessions are archived whenever it runs) move to cold storage under
./var/cold — gzip-compressed JSON lines, one folder per month, a SHA-256
manifest per file. Each archived session leaves a pointer document in
docs.conversations_archive, from which the application can offer "restore
this conversation".

check_sequence first: every session's messages in order, no sequence
number repeated or skipped — what is archived must be whole.

The derived downgrade restores exactly the sessions archived here, byte
for byte, after verifying every file against its manifest. Archive files
are never deleted.

Revision ID: 4f0a2c7e9b58
Revises: e63b4a9d7f25
Create Date: 2026-11-27 08:00:00+00:00
"""
import datetime as dt

revision = "4f0a2c7e9b58"
down_revision = "e63b4a9d7f25"
branch_labels = None
depends_on = None

WRITTEN_ON = dt.datetime(2026, 11, 27)
CUTOFF = WRITTEN_ON - dt.timedelta(days=90)


def upgrade(op):
    chats = op.docs.chats("conversations", session_key="session_id", order_key="ts", seq_key="seq")
    chats.check_sequence()
    chats.archive(older_than=CUTOFF, to="file://./var/cold", format="jsonl.gz", batch_size=5000)
