"""``python -m mbv1`` (and ``torchrun -m mbv1``) runs the CLI."""

from mbv1.cli.main import main

main()
