"""``python -m gfaudit``: the same command line as the ``gfaudit`` script."""

from .cli import main

if __name__ == "__main__":
    main()
