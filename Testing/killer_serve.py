"""``nodsynth serve`` with one more engine, ``killer``, whose ``edit`` SIGKILLs the server process, as
the out-of-memory killer does to a server running a job too large for it.

Run as ``python Testing/killer_serve.py serve ...`` (the arguments of ``nodsynth``).
"""
from __future__ import annotations

import os
import signal
import sys

from nodsynth.engines.classic import ClassicEngine


class KillerEngine(ClassicEngine):
    def edit(self, request, progress=None, cancel=None):
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from nodsynth.cli.main import main
    from nodsynth.engines.registry import ENGINE_CLASSES, ENGINE_OPERATIONS

    ENGINE_CLASSES["killer"] = "killer_serve:KillerEngine"  # this file's folder is on sys.path
    ENGINE_OPERATIONS["killer"] = ("edit",)
    sys.exit(main(sys.argv[1:]))
