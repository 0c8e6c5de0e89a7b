"""The parent side of a job host: start the child, hand it jobs, follow them without blocking.

Every call here returns in milliseconds (a pipe write of one line, a small file read), so a GUI
timer can poll a job ten times a second. Cancel asks the job to stop; if it has not stopped after
``cancel_grace_s`` the whole process tree of the host is killed and the next job starts a new
host. A host that dies (a crash, the out-of-memory killer) fails its job with a message naming the
exit status and the tail of the host's log. :meth:`JobHost.stop` (or the end of the parent: the
child sees its stdin close) leaves no process behind.
"""
from __future__ import annotations

import json
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
from ..processes import process_gone
from .protocol import (CANCELLED, DONE, FAILED, HOST_FAULT_FILE, RESULT_FILE, RUNNING, STORED_PIECE_BYTES,
                       JobStatus, Stored, hide_secrets, read_host_state, read_pieces, read_status, stored_path,
                       stored_pieces, write_call)

CANCEL_GRACE_S = 1.0
"""How long a cancelled job may take to stop on its own before its process tree is killed."""
STORED_ON_DISK = 4
"""Stored inputs kept in the host's folder; the least recently used goes when another is put."""
LOG_NAME = "host.log"
FOLDER_PREFIX = "nodmaisi-jobs-"
"""A host's folder is ``<temp>/nodmaisi-jobs-<parent pid>-<random>``: the pid tells a stale folder
(its application is gone, after a crash) that :func:`sweep_stale_folders` removes."""


def folder_owner(folder: Path) -> Optional[int]:
    """The pid of the application that made a host folder (from its name), ``None`` for other folders."""
    owner = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
    return int(owner) if folder.name.startswith(FOLDER_PREFIX) and owner.isdigit() else None


def sweep_stale_folders(parent: Path) -> list:
    """Remove the host folders in ``parent`` whose application is gone (they may hold pickled CTs);
    returns the folders removed."""
    removed = []
    for folder in parent.glob(FOLDER_PREFIX + "*"):
        owner = folder_owner(folder)
        if owner is not None and owner != os.getpid() and folder.is_dir() and process_gone(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


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


LAUNCHER_CRASH_STATUS = 1
"""What ``PythonSlicer`` (ctkAppLauncher) exits with when its child ended abnormally, whatever the cause."""


def describe_end(returncode: int, record: dict, fault: str) -> str:
    """How the host process ended, from what it recorded itself (``record``: its ``host.json``;
    ``fault``: its fatal-error traceback) and the exit status of the process started, which may be
    the launcher's: a fatal error, a catchable signal and an exit are recorded; a kill is not."""
    who = f"(pid {record['pid']}) " if record.get("pid") else ""
    if fault.strip():
        return f"{who}crashed: {fault.strip().splitlines()[0]}"
    if record.get("state") == "signalled":
        return f"{who}was ended by signal {record['signal']}"
    if record.get("state") == "exited":
        return f"{who}exited with status {record['code']} ({record.get('reason', '')})"
    if returncode < 0:
        return who + describe_exit(returncode)
    if returncode == LAUNCHER_CRASH_STATUS:
        return (f"{who}was killed (out of memory?): it recorded no exit (its launcher reported status "
                f"{returncode})")
    return f"{who}exited with status {returncode}"


class JobHost:
    """One child process that runs jobs one after another and keeps what they load."""

    def __init__(self, python: Optional[str] = None, cancel_grace_s: float = CANCEL_GRACE_S,
                 temp_dir: Optional[str] = None) -> None:
        """``temp_dir``: where the host's folder goes (Slicer's temporary folder; else the system's)."""
        self.python = python
        self.cancel_grace_s = float(cancel_grace_s)
        self.temp_dir = temp_dir
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
    def job_pid(self) -> Optional[int]:
        """The pid of the Python process that runs the jobs, as it recorded it (the process started may
        be a launcher, ``PythonSlicer``, that runs it as its child); ``None`` before it did."""
        return read_host_state(self._root).get("pid") if self._root is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the host process now (a GUI starts it when its panel opens, so a click only hands over
        the job); nothing happens when it runs already. A host that ended (killed, crashed) is followed
        by a new process in the same folder: the stored inputs and the calls of waiting jobs are there."""
        if self.alive:
            return
        if self._process is not None:
            self.end_cause(self._process)  # read what the old process recorded before the new one starts
        if self._root is None:
            parent = Path(self.temp_dir or tempfile.gettempdir())
            parent.mkdir(parents=True, exist_ok=True)
            sweep_stale_folders(parent)
            self._root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=parent))
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

    def end_cause(self, process: subprocess.Popen) -> tuple:
        """``(how the ended host process ended, its fatal-error traceback)`` (see :func:`describe_end`),
        read once from what it recorded, before a new process in the same folder overwrites it."""
        if getattr(process, "nodsynth_end_cause", None) is None:
            try:
                fault = (self._root / HOST_FAULT_FILE).read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, TypeError):
                fault = ""
            record = read_host_state(self._root) if self._root is not None else {}
            process.nodsynth_end_cause = (describe_end(process.returncode, record, fault), fault.strip())
        return process.nodsynth_end_cause

    def _send(self, line: str) -> bool:
        """Write one command line; False when the host is gone."""
        if self._process is None:
            return False
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
            self._stored.remove(key)  # used again: the last to make room
            self._stored.append(key)
            return Stored(key), (piece for piece in ())  # nothing to write; closable as the others
        return Stored(key), self._pieces(key, value, piece_bytes)

    def _pieces(self, key: str, value: Any, piece_bytes: int) -> Iterator[None]:
        yield from stored_pieces(self._root, key, value, piece_bytes)
        self._stored.append(key)
        while len(self._stored) > STORED_ON_DISK:
            try:
                stored_path(self._root, self._stored.pop(0)).unlink()
            except PermissionError:  # Windows: the host is reading it; the folder goes at stop
                pass

    def submit(self, target: str, *args: Any, **kwargs: Any) -> "HostJob":
        """Run ``target`` (``"module:function"``) with these arguments in the host (started if needed),
        after the jobs handed over before. Secret fields of dataclass arguments (a server token) go to
        the host on its stdin, never to disk."""
        self.start()
        self._count += 1
        job_dir = self._root / f"job{self._count:05d}"
        job_dir.mkdir()
        args, secrets = hide_secrets(args)
        write_call(job_dir, target, args, kwargs)
        job = HostJob(self, job_dir, secrets)
        self._hand_over(job)
        return job

    def _hand_over(self, job: "HostJob") -> None:
        """Send ``job`` (its secrets, then ``run``) to the running host; a job that cannot be sent fails."""
        job._process = self._process
        sent = all(self._send(f"secret {key} {json.dumps(value)}") for key, value in job.secrets.items())
        if not (sent and self._send(f"run {job.dir.name}")):
            job.final = JobStatus(FAILED, 0.0, "failed", "the job process could not be reached", "NodsynthError",
                                  self.log_tail())

    def resubmit(self, job: "HostJob") -> None:
        """Hand a job that never started to the next host process (its own ended: killed because another
        job ignored Cancel, or crashed in another job): queued jobs are never lost."""
        self.start()
        self._hand_over(job)


class HostJob:
    """One job handed to a :class:`JobHost`; :meth:`poll` is cheap enough for a GUI timer."""

    def __init__(self, host: JobHost, job_dir: Path, secrets: Optional[dict] = None) -> None:
        self.host, self.dir = host, job_dir
        self.secrets = dict(secrets or {})
        self._process = host._process
        self.final: Optional[JobStatus] = None
        self.cancel_requested_s: Optional[float] = None
        self._last = JobStatus(RUNNING, 0.0, "waiting for the job process")

    def _read(self) -> Optional[JobStatus]:
        """The status file now; the last one read while the host is replacing it (Windows refuses the
        open meanwhile); ``None`` before the host started the job."""
        try:
            status = read_status(self.dir)
        except PermissionError:
            return self._last
        if status is not None:
            self._last = status
        return status

    def cancel(self) -> None:
        """Ask the job to stop; :meth:`poll` kills the host if it has not stopped after the grace period
        (a job that has not started is just skipped: the host and the jobs of others go on)."""
        if self.final is None and self.cancel_requested_s is None:
            self.cancel_requested_s = time.monotonic()
            self.host._send(f"cancel {self.dir.name}")

    def abandon(self) -> None:
        """Forget the job now (its result is never read): a job that runs is ended with its host process
        (the jobs waiting behind it go to the next one), one that waits is skipped."""
        if self.final is not None:
            return
        if self._read() is not None and self._process is self.host._process:
            self.host.kill()
        else:
            self.host._send(f"cancel {self.dir.name}")
        self.final = JobStatus(CANCELLED, 0.0, "cancelled")

    def poll(self) -> JobStatus:
        """The job's state now (never blocks)."""
        if self.final is not None:
            return self.final
        status = self._read()
        if status is not None and status.finished:
            self.final = status
        elif self.cancel_requested_s is not None and status is None:
            self.final = JobStatus(CANCELLED, 0.0, "cancelled before it started")
        elif self.cancel_requested_s is not None and time.monotonic() - self.cancel_requested_s > self.host.cancel_grace_s:
            if self._process is self.host._process:
                self.host.kill()
            self.final = JobStatus(CANCELLED, status.fraction, f"cancelled: the job did not stop within "
                                   f"{self.host.cancel_grace_s:g} s, so its process was ended")
        elif self._process.poll() is not None:
            if not self.dir.is_dir():
                self.final = JobStatus(CANCELLED, 0.0, "cancelled: the job process was stopped")
            elif status is None:  # it never started: the next host process runs it
                self.host.resubmit(self)
            else:
                self.final = self._died()
        return self.final or status or self._last

    def _died(self) -> JobStatus:
        status = self._read()  # it may have finished just before it ended
        if status is not None and status.finished:
            return status
        cause, fault = self.host.end_cause(self._process)
        return JobStatus(FAILED, 0.0, "failed", f"the job process {cause} before the job finished", "NodsynthError",
                         "\n".join(text for text in (fault, self.host.log_tail()) if text))

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
        *_, (value,) = self.result_pieces(piece_bytes=2 ** 62)
        return value

    def result_pieces(self, piece_bytes: int = STORED_PIECE_BYTES) -> Iterator[Optional[tuple]]:
        """The finished job's return value read a piece per step (a GUI advances it once per timer tick,
        so a CT-sized result never blocks it long): yields ``None`` while reading, then ``(value,)``;
        the host then removes the job's folder."""
        if self.poll().state != DONE:
            raise NodsynthError(f"the job has no result: it is {self.poll().state}")
        try:
            yield from read_pieces(self.dir / RESULT_FILE, piece_bytes)
        finally:
            self.host._send(f"forget {self.dir.name}")
