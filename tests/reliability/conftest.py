"""One reference for the reliability tests of a session: the chain project's
seeded stores, their snapshots before and after an uninterrupted
``upgrade head`` and after ``downgrade base`` (see ``harness.Harness.prepare``)."""
from __future__ import annotations

import pytest

from tests.reliability.harness import Harness


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("reliability"), seed=1)
    h.prepare()
    return h
