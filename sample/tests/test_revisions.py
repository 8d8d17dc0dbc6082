"""The sample project's own tests of its revisions, with ragrev's pytest
plugin (``pip install "ragrev[test]"``; from a checkout:
``python -m pytest -p ragrev.pytest_plugin sample/tests``). Every store is a
fresh embedded engine per test (``[test]`` in ragrev.toml could say
otherwise)."""
from ragrev.testing import *  # noqa: F401,F403  (the built-in tests)


def test_language_codes_become_iso(ragrev_project):
    """Revision 9a1f6b3e8c42 gives every document an ISO 639-1 ``lang``."""
    ragrev_project.upgrade("9a1f6b3e8c42-1")
    docs = ragrev_project.client("docs").documents
    before = {d["_id"]: d for d in docs.find({}, limit=50)}
    ragrev_project.upgrade("9a1f6b3e8c42")
    after = {d["_id"]: d for d in ragrev_project.client("docs").documents.find({"_id": {"$in": list(before)}})}
    assert before and set(after) == set(before)
    assert not any("lang" in d for d in before.values())
    assert {d["lang"] for d in after.values()} <= {"en", "de", "fr"}
    assert all(after[i]["body"] == before[i]["body"] for i in before)  # nothing else changed
