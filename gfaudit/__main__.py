"""``python -m gfaudit``: the same command line as the ``gfaudit`` script."""

from gfaudit.cli.app import main

if __name__ == "__main__":
    main()
