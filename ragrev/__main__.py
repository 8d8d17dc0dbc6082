"""``python -m ragrev`` runs the command line."""
from ragrev.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
