"""docs/operations.md is generated from the operation classes' docstrings;
a docstring changed without rerunning the generator fails here."""
from pathlib import Path

from ragrev import docgen

#: the repository's page (ragrev may be installed from a wheel, away from docs/)
PAGE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def test_operations_page_is_current():
    assert PAGE.read_text() == docgen.render(), "docs/operations.md is stale: run python -m ragrev.docgen"


def test_the_generated_namespaces_are_current():
    """ragrev/ops/namespaces_<family>.py (the typed op.<store> classes) are generated too."""
    for family in docgen.NAMESPACES:
        path = docgen.namespaces_path(family)
        assert path.read_text() == docgen.render_namespaces(family), f"{path.name} is stale: run python -m ragrev.docgen"


def test_every_operation_is_documented():
    from ragrev.ops import operations_for

    text = docgen.render()
    for kind, _title, _where in docgen.KINDS:
        for name in operations_for(kind):
            if name != "sql":  # the Alembic calls, listed by name
                assert f"#### `{name}`" in text, (kind, name)


def test_check_reports_a_stale_page(tmp_path, capsys):
    page = tmp_path / "operations.md"
    page.write_text(docgen.render().replace("Soft drop", "Hard drop"))
    assert docgen.main(["--check", "--path", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert docgen.main(["--path", str(page)]) == 0
    assert docgen.main(["--check", "--path", str(page)]) == 0


def test_every_milvus_operation_is_known_whichever_module_is_imported_first():
    """ragrev.ops.vector_online registers check_relevance and expect_fresh; a
    process that imported it first knew no other Milvus operation (review and
    lint tests then failed with "has no operation 'create_collection'")."""
    import subprocess
    import sys

    code = ("import ragrev.ops.vector_online\nfrom ragrev.ops import operations_for\n"
            "print(sorted(operations_for('vector')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "create_collection" in out and "check_relevance" in out, out
