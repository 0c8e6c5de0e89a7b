"""A stand-in for ``PythonSlicer``, the launcher (CTK's ctkAppLauncher) Slicer puts on ``PATH``.

The real launcher sets up the environment and runs the real interpreter as its *child* (a QProcess
with forwarded channels): the process a caller starts is the launcher, not Python. When the child
ends normally its exit status is passed through; when it ends abnormally (QProcess::CrashExit: a
signal, the out-of-memory killer, TerminateProcess) the launcher reports the problem and exits
with status 1, so the caller never sees the signal. This stand-in does the same.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

CRASH_EXIT_STATUS = 1

SCRIPT = '''#!{python}
"""PythonSlicer stand-in: runs the interpreter as a child; a child that ends abnormally gives status 1."""
import subprocess, sys
done = subprocess.run([{python!r}] + sys.argv[1:])
if done.returncode < 0:
    print(f"[{python}] exit abnormally - Report the problem.", file=sys.stderr)
sys.exit(done.returncode if done.returncode >= 0 else {crash})
'''


def write_launcher(folder: Path) -> Path:
    """Write the executable ``folder/PythonSlicer`` (POSIX: a script run through its first line)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "PythonSlicer"
    path.write_text(SCRIPT.format(python=sys.executable, crash=CRASH_EXIT_STATUS))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def install_launcher(folder: Path) -> Path:
    """:func:`write_launcher` and put ``folder`` first on ``PATH``, where Slicer has its launcher."""
    path = write_launcher(folder)
    os.environ["PATH"] = os.pathsep.join([str(folder), os.environ.get("PATH", "")])
    return path
