"""Whether a process id names a live process on this machine (POSIX and Windows)."""
from __future__ import annotations

import os

_STILL_ACTIVE = 259
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_ERROR_ACCESS_DENIED = 5


def _windows_process_gone(pid: int) -> bool:
    """Windows: ``os.kill(pid, 0)`` would send CTRL_C (signal 0 is CTRL_C_EVENT) — ask the kernel instead."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() != _ERROR_ACCESS_DENIED  # denied: it exists, owned by another user
    try:
        code = ctypes.c_ulong()
        return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value != _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def process_gone(pid: int) -> bool:
    """True when no live process has this id on this machine (a zombie counts as gone)."""
    if os.name == "nt":
        return _windows_process_gone(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
