"""Claim files: at most one runner works on a job at a time, across processes and machines.

A claim is ``<batch>/.claims/<id>.claim``, created with ``O_CREAT | O_EXCL`` (exactly one creator
wins) and holding the claimant's token, host and process id. While the job runs, a heartbeat
thread refreshes its modification time. A claim is **stale**, and may be taken over, when

* its process is gone (same host, no such process or a zombie),
* the runner that started it saw it die (the executor passes that attempt's token), or
* its heartbeat stopped for ``stale_after_s``.

Taking over goes through ``<claim>.break-<token>``, again created with ``O_EXCL``: of several
runners that find the same stale claim, only one removes it, after checking that it still holds
that token. Before it moves outputs into place, the owner checks that the claim is still its own.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from ..processes import process_gone

HOST = socket.gethostname()
UNREADABLE_GRACE_S = 30.0
"""A claim whose content cannot be read yet (its creator is writing it) is respected this long."""


def _create_exclusive(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True


def read_claim(path: Path) -> Optional[dict]:
    """The claim's content, ``{}`` when unreadable, None when there is no claim."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _remove_if_older(path: Path, age_s: float) -> None:
    try:
        if time.time() - path.stat().st_mtime > age_s:
            path.unlink()
    except FileNotFoundError:
        pass


def stale_reason(path: Path, info: dict, stale_after_s: float, dead_token: Optional[str]) -> Optional[str]:
    """Why the claim ``info`` at ``path`` may be taken over, or None while it is live."""
    try:
        age_s = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return "released"
    if not info:
        return f"unreadable for {age_s:.0f} s" if age_s > UNREADABLE_GRACE_S else None
    if dead_token is not None and info.get("token") == dead_token:
        return "its runner died"
    if info.get("host") == HOST and isinstance(info.get("pid"), int) and process_gone(info["pid"]):
        return f"process {info['pid']} is gone"
    if age_s > stale_after_s:
        return f"no heartbeat for {age_s:.0f} s"
    return None


class Claim:
    """A claim this process holds on one job (see the module docstring)."""

    def __init__(self, path: Path, token: str, job_id: str) -> None:
        self.path, self.token, self.job_id = path, token, job_id
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def _content(self) -> str:
        return json.dumps({"token": self.token, "host": HOST, "pid": os.getpid(), "job": self.job_id,
                           "started": time.time()})

    def acquire(self, stale_after_s: float, dead_token: Optional[str] = None) -> Optional[dict]:
        """Take the claim; returns None on success, else the holder's claim content."""
        if _create_exclusive(self.path, self._content()):
            return None
        info = read_claim(self.path)
        if info is None:  # released in the meantime
            return None if _create_exclusive(self.path, self._content()) else (read_claim(self.path) or {})
        if stale_reason(self.path, info, stale_after_s, dead_token) is None:
            return info
        breaker = self.path.with_name(f"{self.path.name}.break-{info.get('token', 'unreadable')}")
        if not _create_exclusive(breaker, self.token):
            _remove_if_older(breaker, UNREADABLE_GRACE_S)  # left by a runner that died while breaking
            return info  # another runner is taking it over; asked again later
        try:
            if read_claim(self.path) == info:
                self.path.unlink()
            return None if _create_exclusive(self.path, self._content()) else (read_claim(self.path) or {})
        finally:
            breaker.unlink()

    def owned(self) -> bool:
        info = read_claim(self.path)
        return bool(info) and info.get("token") == self.token

    def start_heartbeat(self, interval_s: float) -> None:
        def beat() -> None:
            while not self._stop.wait(interval_s):
                try:
                    os.utime(self.path)
                except OSError:
                    return

        self._beat = threading.Thread(target=beat, name=f"claim-{self.job_id}", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still ours."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.owned():
            self.path.unlink()
