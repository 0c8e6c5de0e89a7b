"""One module per ``nodsynth`` verb (discovered automatically by :mod:`nodsynth.cli.main`)."""
