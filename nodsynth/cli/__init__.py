"""Command line interface; see :mod:`nodsynth.cli.main`."""
