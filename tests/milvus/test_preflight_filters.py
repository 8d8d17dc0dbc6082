"""A filter Milvus cannot parse, on a collection an earlier step of the same
run changes (found by the reliability harness, issue 9: the preflight tried
filters only on collections no earlier step touches, so the run applied
every revision before the bad one, then failed with exit 1). A syntax error
is bad input whatever the earlier steps do: exit 2, nothing changed; a filter
on a field an earlier step adds is still accepted."""
from __future__ import annotations

import pytest

from tests.helpers.milvus import BASE, state

REBUILD = 'op.vectors.add_field("docs", "lang", "VARCHAR", max_length=8, default="en")'


@pytest.fixture
def project(make_project, milvus_url):
    p = make_project({"vectors": milvus_url})
    p.add("b0", None, BASE)
    p.cli("upgrade", "head", "-q")
    return p


def test_a_syntax_error_after_a_rebuild_is_exit_2_and_changes_nothing(project):
    path = project.add("b1", "b0", f"def upgrade(op):\n    {REBUILD}\n    op.vectors.delete('docs', 'id >>> 3')\n")
    before = state(project)
    line = project.cli("upgrade", "head", expect=2).output.strip().splitlines()[-1]
    assert f"{path}:" in line and "filter 'id >>> 3' on 'docs'" in line, line
    assert state(project) == before


def test_a_filter_on_a_field_an_earlier_step_adds_is_accepted(project):
    project.add("b1", "b0", f"def upgrade(op):\n    {REBUILD}\n    op.vectors.delete('docs', 'lang == \"xx\"')\n")
    project.cli("upgrade", "head", "-q")
    assert state(project)["heads"] == ("b1",)
