"""One server per jobs folder: an OS lock on ``JOBS_DIR/.serve.lock`` holding the owner's pid and address.

Two servers on one folder would run every job twice and trip over each other's files, so the second
one refuses to start and names the first. The OS drops the lock when its process ends, however it
ends (SIGKILL, power cut), so a stale lock file never blocks a restart.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

LOCK_FILE = ".serve.lock"
_LOCKED_BYTE = 1 << 20
"""Windows locks a byte range: one byte past any text the file holds, so others can still read it."""


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file without waiting; ``False`` if another process holds it."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class JobsFolderLock:
    """Held from :meth:`acquire` until the process ends or :meth:`release` is called."""

    def __init__(self, jobs_dir: str | os.PathLike) -> None:
        self.path = Path(jobs_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, owner: str) -> None:
        """Lock the folder for ``owner`` (e.g. ``"http://127.0.0.1:8765"``); raises :class:`InputError`
        naming the running server (pid, address) when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "pid unknown"
            os.close(fd)
            raise InputError(f"the jobs folder {self.path.parent} is used by another nodsynth serve ({holder}); "
                             "stop it, or give this one another --jobs-dir")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}, {owner}\n".encode("utf-8"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None
