"""Console entry point (``gfaudit``): installs the Ctrl-C policy before importing anything heavy."""

from __future__ import annotations


def main() -> None:
    from . import interrupt

    interrupt.install()
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
