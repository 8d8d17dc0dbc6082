"""merge the EU instance's conversations

The EU instance of the assistant (store ``eu``) is retired; its
conversations join the main collection. merge_from, with dedupe:

- sessions only the EU instance has come over as they are;
- a session that the EU instance continued after a fail-over shares its
  first messages with the main one: those are dropped as duplicates and
  the new ones join the main session;
- a session id that exists in both but shares no message is another
  conversation: it comes over renamed ``eu:<id>``, and a message id that
  is taken gets the same prefix;
- a message the EU client stored twice (a retry) comes over once.

check_sequence then proves every session still in order. The source is not
changed; the derived downgrade deletes exactly the messages merged here
(their ids are in the journal).

Revision ID: b81e5d3f6c0a
Revises: 4f0a2c7e9b58
Create Date: 2026-11-27 15:30:00+00:00
"""
revision = "b81e5d3f6c0a"
down_revision = "4f0a2c7e9b58"
branch_labels = None
depends_on = None


def upgrade(op):
    chats = op.docs.chats("conversations", session_key="session_id", order_key="ts", seq_key="seq")
    chats.merge_from("eu.conversations", on_conflict="prefix", prefix="eu:", dedupe=True)
    chats.check_sequence()
