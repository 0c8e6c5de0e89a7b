"""The parent side of a job host: start the child, hand it jobs, follow them without blocking.

Every call here returns in milliseconds (a pipe write of one line, a small file read), so a GUI
timer can poll a job ten times a second. Cancel asks the job to stop; if it has not stopped after
``cancel_grace_s`` the whole process tree of the host is killed and the next job starts a new
host. A host that dies (a crash, the out-of-memory killer) fails its job with a message naming the
exit status and the tail of the host's log. :meth:`JobHost.stop` (or the end of the parent: the
child sees its stdin close) leaves no process behind.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from ..errors import NodsynthError
from .protocol import (CANCELLED, DONE, FAILED, RUNNING, STORED_PIECE_BYTES, JobStatus, Stored, read_result,
                       read_status, stored_path, stored_pieces, write_call)

CANCEL_GRACE_S = 1.0
"""How long a cancelled job may take to stop on its own before its process tree is killed."""
STORED_ON_DISK = 4
"""Stored inputs kept in the host's folder; the oldest goes when another is put."""
LOG_NAME = "host.log"


def python_executable() -> str:
    """The interpreter for the host: Slicer's ``PythonSlicer`` when it is on PATH (inside Slicer),
    else this process's interpreter when it is a plain Python."""
    found = shutil.which("PythonSlicer")
    if found:
        return found
    if re.match(r"^python[\d.]*(\.exe)?$", Path(sys.executable).name, flags=re.IGNORECASE):
        return sys.executable
    raise NodsynthError(f"cannot find PythonSlicer on PATH to run the job process (this interpreter is "
                        f"{sys.executable}); start Slicer through its launcher")


def child_environment(base: Optional[dict] = None) -> dict:
    """This process's environment with its import path as ``PYTHONPATH``, so the host imports the same
    ``nodsynth`` and module libraries (Slicer adds module folders to ``sys.path`` at run time)."""
    env = dict(os.environ if base is None else base)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def describe_exit(returncode: int) -> str:
    """``-9`` -> 'was killed by signal SIGKILL (out of memory?)'; ``1`` -> 'exited with status 1'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        hint = " (out of memory?)" if -returncode == getattr(signal, "SIGKILL", 9) else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with status {returncode}"


class JobHost:
    """One child process that runs jobs one after another and keeps what they load."""

    def __init__(self, python: Optional[str] = None, cancel_grace_s: float = CANCEL_GRACE_S) -> None:
        self.python = python
        self.cancel_grace_s = float(cancel_grace_s)
        self._process: Optional[subprocess.Popen] = None
        self._root: Optional[Path] = None
        self._log = None
        self._count = 0
        self._stored: list = []

    # ------------------------------------------------------------------------------ the process
    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the host process now (a GUI starts it when its panel opens, so a click only hands over
        the job); nothing happens when it runs already."""
        if self.alive:
            return
        self.stop()
        self._root = Path(tempfile.mkdtemp(prefix="nodmaisi-jobs-"))
        self._stored = []
        self._log = open(self._root / LOG_NAME, "ab")
        options: dict[str, Any] = {}
        if os.name == "nt":
            info = subprocess.STARTUPINFO()
            info.dwFlags, info.wShowWindow = 1, 0  # no console window
            options.update(startupinfo=info, creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
        else:
            options["start_new_session"] = True  # its own process group: killed as one tree
        self._process = subprocess.Popen([self.python or python_executable(), "-m", "nodsynth.jobs.host",
                                          str(self._root)], stdin=subprocess.PIPE, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=child_environment(), **options)

    def _send(self, line: str) -> bool:
        """Write one command line; False when the host is gone."""
        try:
            self._process.stdin.write((line + "\n").encode("utf-8"))
            self._process.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the host printed (its stdout and stderr), for error reports."""
        if self._root is None or not (self._root / LOG_NAME).is_file():
            return ""
        text = (self._root / LOG_NAME).read_bytes()[-20000:].decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """End the host and everything it started, at once."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False,
                           creationflags=subprocess.CREATE_NO_WINDOW)  # no console flashing over Slicer
        else:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Let the host go (it leaves after closing its stdin), kill it if it lingers, remove its files."""
        process = self._process
        if process is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # --------------------------------------------------------------------------------- the jobs
    def holds(self, key: str) -> bool:
        """True when the running host has the input stored under ``key``."""
        return self.alive and key in self._stored

    def put(self, key: str, value: Any) -> Stored:
        """Hand ``value`` to the host once under ``key`` (a key names one content: a node and its
        modification time); jobs then pass the returned :class:`Stored` instead of the value."""
        stored, pieces = self.put_in_pieces(key, value)
        for _ in pieces:
            pass
        return stored

    def put_in_pieces(self, key: str, value: Any, piece_bytes: int = STORED_PIECE_BYTES) -> tuple:
        """:meth:`put` one piece per step of the returned iterator (a GUI advances it once per timer tick,
        so a CT-sized input never blocks it long); the input counts as stored after the last step."""
        self.start()
        if key in self._stored:
            return Stored(key), iter(())
        return Stored(key), self._pieces(key, value, piece_bytes)

    def _pieces(self, key: str, value: Any, piece_bytes: int) -> Iterator[None]:
        yield from stored_pieces(self._root, key, value, piece_bytes)
        self._stored.append(key)
        while len(self._stored) > STORED_ON_DISK:
            stored_path(self._root, self._stored.pop(0)).unlink()

    def submit(self, target: str, *args: Any, **kwargs: Any) -> "HostJob":
        """Run ``target`` (``"module:function"``) with these arguments in the host (started if needed)."""
        self.start()
        self._count += 1
        job_dir = self._root / f"job{self._count:05d}"
        job_dir.mkdir()
        write_call(job_dir, target, args, kwargs)
        job = HostJob(self, job_dir)
        if not self._send(f"run {job_dir.name}"):
            job.final = JobStatus(FAILED, 0.0, "failed", "the job process could not be reached", "NodsynthError",
                                  self.log_tail())
        return job


class HostJob:
    """One job handed to a :class:`JobHost`; :meth:`poll` is cheap enough for a GUI timer."""

    def __init__(self, host: JobHost, job_dir: Path) -> None:
        self.host, self.dir = host, job_dir
        self._process = host._process
        self.final: Optional[JobStatus] = None
        self.cancel_requested_s: Optional[float] = None

    def cancel(self) -> None:
        """Ask the job to stop; :meth:`poll` kills the host if it has not stopped after the grace period."""
        if self.final is None and self.cancel_requested_s is None:
            self.cancel_requested_s = time.monotonic()
            self.host._send(f"cancel {self.dir.name}")

    def poll(self) -> JobStatus:
        """The job's state now (never blocks)."""
        if self.final is not None:
            return self.final
        status = read_status(self.dir) or JobStatus(RUNNING, 0.0, "starting the job process")
        if status.finished:
            self.final = status
        elif self.cancel_requested_s is not None and time.monotonic() - self.cancel_requested_s > self.host.cancel_grace_s:
            if self._process is self.host._process:
                self.host.kill()
            self.final = JobStatus(CANCELLED, status.fraction, f"cancelled: the job did not stop within "
                                   f"{self.host.cancel_grace_s:g} s, so its process was ended")
        elif self._process.poll() is not None:
            self.final = self._died()
        return self.final or status

    def _died(self) -> JobStatus:
        status = read_status(self.dir)  # it may have finished just before it ended
        if status is not None and status.finished:
            return status
        return JobStatus(FAILED, 0.0, "failed", f"the job process {describe_exit(self._process.returncode)} "
                         "before the job finished", "NodsynthError", self.host.log_tail())

    def wait(self, timeout_s: Optional[float] = None, poll_s: float = 0.05) -> JobStatus:
        """Poll until the job finishes (headless use); cancels and raises ``TimeoutError`` after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.poll()
            if status.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"the job did not finish within {timeout_s:g} s")
            time.sleep(poll_s)

    def result(self) -> Any:
        """The finished job's return value; the host then removes the job's folder (off this thread)."""
        if self.poll().state != DONE:
            raise NodsynthError(f"the job has no result: it is {self.poll().state}")
        try:
            return read_result(self.dir)
        finally:
            self.host._send(f"forget {self.dir.name}")
