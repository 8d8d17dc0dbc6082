"""Every command's --help ends with an Examples: block a person can paste."""
import pytest
from click.testing import CliRunner

from ragrev.cli import cli


def _commands():
    return [[]] + [[name] for name in sorted(cli.commands)]


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "ragrev")
def test_help_ends_with_examples(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    tail = result.output.rstrip().split("\n\nExamples:\n")
    assert len(tail) == 2, f"ragrev {' '.join(args)} --help has no Examples: block"
    examples = tail[1].splitlines()
    assert examples and all(line.startswith("  ragrev ") for line in examples), examples
    if args:  # each example runs the command it documents
        assert all(line.split()[1] == args[0] for line in examples), examples
