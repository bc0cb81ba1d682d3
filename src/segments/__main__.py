"""``python -m segments``: the command-line interface."""

from segments.cli import main

if __name__ == "__main__":
    main()
