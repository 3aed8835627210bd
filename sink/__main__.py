"""``python -m sink`` runs the ``sink`` command."""

from sink.cli import main

main()
