"""``python -m fmnist``: the command line."""

from fmnist.cli import main

main()
