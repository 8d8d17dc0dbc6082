"""A failed chat step leaves nothing behind (issue 12, part 3): each chat data
operation is made to fail with an error after its third checkpoint
(``RAGREV_FAULTS=checkpoint=3:fail``, as when the revision's own code
raises); the revision exits 1, and its ``downgrade`` gives back every message
byte for byte — on MongoDB, where the step's first batches stay written,
because the revert undoes what the failed step recorded as it wrote; on
SQLite the revision's transaction rolled back. Cold-storage files the failed
``archive`` wrote stay (ragrev never deletes cold storage)."""
from __future__ import annotations

import pytest

from tests.helpers.chats import CHATS, messages

pytestmark = pytest.mark.slow

OPS = {
    "remap_sessions": f'{CHATS}.remap_sessions(lambda s: "user-" + s)',
    "merge_from": f'{CHATS}.merge_from(collection="imported")',
    "archive": f'{CHATS}.archive(older_than="30d", to="file://./var/cold", batch_size=50)',
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_the_revert_of_a_failed_chat_step_gives_back_every_message(chat_env, name):
    env = chat_env
    env.seed(messages(200, 4))
    if name == "merge_from":
        env.seed(messages(1000, 4, prefix="n", first_id=5000), collection="imported")
    before = env.raw()
    env.project.add("c1", None, f"def upgrade(op):\n    {OPS[name]}\n")
    proc = env.project.run("upgrade", "head", "-q", env={"RAGREV_FAULTS": "checkpoint=3:fail"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "fault injected at checkpoint #3" in err, err
    if env.kind == "mongo":
        assert env.raw() != before  # the failed step's first batches are written
    env.project.cli("downgrade", "base", "-q")
    assert env.raw() == before
