"""On Windows, ending a job host runs ``taskkill``, a console program: started from Slicer (a GUI
program) without CREATE_NO_WINDOW it flashes a console window (issue 21 (8))."""
from __future__ import annotations

import subprocess
import sys

from nodsynth.jobs import client

CREATE_NO_WINDOW = 0x08000000
"""Windows' process creation flag (WinBase.h); Python's ``subprocess.CREATE_NO_WINDOW`` on Windows."""


def test_killing_the_host_on_windows_opens_no_console_window(monkeypatch):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = client.JobHost()
    host._process = process
    calls = []

    def taskkill(args, **options):
        calls.append((list(args), options))
        process.kill()  # what taskkill /F /T would do
        return subprocess.CompletedProcess(args, 0)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(client.subprocess, "run", taskkill)
            patch.setattr(client.subprocess, "CREATE_NO_WINDOW", CREATE_NO_WINDOW, raising=False)
            patch.setattr(client.os, "name", "nt")
            host.kill()
    finally:
        process.kill()
        process.wait()
    [(args, options)] = calls
    assert args[0] == "taskkill" and args[-1] == str(process.pid)
    assert options.get("creationflags", 0) & CREATE_NO_WINDOW, "taskkill must not open a console window"
