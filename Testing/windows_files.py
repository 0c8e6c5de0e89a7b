"""Windows file-sharing semantics on a POSIX test machine, for the job exchange's tests.

On Windows, Python opens files without ``FILE_SHARE_DELETE``: while any process holds a file open,
``os.replace`` onto it and ``os.unlink`` of it fail with ``PermissionError`` (WinError 5, "Access is
denied"), and opening a file another process is replacing fails the same way. Here every ``open``
takes a shared ``flock`` on what it opened (held until it is closed) and ``os.replace`` /
``os.unlink`` need an exclusive one: ``flock`` locks belong to open files, so they conflict across
processes and between two opens in one process, as Windows' sharing modes do.

:func:`install` patches this process (the test's, standing for the GUI); the job target
:func:`install_in_job` patches a job host, so both sides of the exchange behave as on Windows.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # Windows has the real semantics
    fcntl = None

_REAL = {"open": io.open, "replace": os.replace, "unlink": os.unlink, "remove": os.remove}


def _denied(path: Any) -> PermissionError:
    """What Windows raises (WinError 5, ERROR_ACCESS_DENIED)."""
    return PermissionError(errno.EACCES, "Access is denied", os.fspath(path))


def windows_open(file, mode="r", *args, **kwargs):
    handle = _REAL["open"](file, mode, *args, **kwargs)
    if isinstance(file, int):
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # being replaced or deleted ("delete pending")
        handle.close()
        raise _denied(file) from None
    return handle


@contextlib.contextmanager
def _exclusive(path) -> Iterator[None]:
    """Hold ``path`` exclusively (no one has it open), or raise PermissionError; nothing when absent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _denied(path) from None
        yield
    finally:
        os.close(fd)


def windows_replace(src, dst, **kwargs) -> None:
    with _exclusive(dst):
        _REAL["replace"](src, dst, **kwargs)


def windows_unlink(path, **kwargs) -> None:
    with _exclusive(path):
        _REAL["unlink"](path, **kwargs)


def install() -> None:
    """Give this process Windows' file sharing (until :func:`uninstall`)."""
    if fcntl is None:
        return
    io.open = builtins.open = windows_open
    os.replace = windows_replace
    os.unlink = os.remove = windows_unlink


def uninstall() -> None:
    io.open = builtins.open = _REAL["open"]
    os.replace, os.unlink, os.remove = _REAL["replace"], _REAL["unlink"], _REAL["remove"]


def install_in_job(progress=None, cancel=None) -> int:
    """Job target: the job host runs with Windows' file sharing from now on; returns its pid."""
    install()
    return os.getpid()


def hold_repeatedly(path, hold_s: float, gap_s: float, stop) -> int:
    """Open ``path`` and hold it ``hold_s`` seconds, again and again every ``gap_s`` until the
    ``threading.Event`` ``stop`` is set, as a slow reader does (a virus scanner, an indexer, a GUI
    thread busy mid-read); returns how many times it held the file."""
    import time

    held = 0
    while not stop.is_set():
        try:
            with windows_open(path, "rb"):
                held += 1
                time.sleep(hold_s)
        except (FileNotFoundError, PermissionError):
            pass
        time.sleep(gap_s)
    return held
