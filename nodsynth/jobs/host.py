"""The job host, the child process of :class:`~nodsynth.jobs.client.JobHost`::

    python -m nodsynth.jobs.host ROOT

It runs the jobs of folder ``ROOT`` one at a time, in the order their names arrive on stdin, and
stays alive between jobs so that what a job loads (torch, an engine's networks) is there for the
next one. Commands, one per stdin line: ``secret KEY JSON`` (a secret a job's call names as
``Secret(KEY)``, kept in memory only), ``run NAME`` (the job folder ``ROOT/NAME``),
``cancel NAME`` (set that job's cancel token), ``forget NAME`` (the parent has read the result:
remove the folder) and ``quit`` (after the current job). End of stdin
means the parent is gone: the host leaves at once, so it never outlives the application that
started it. It records its pid when it starts and how it ends (an exit with its status, a signal it
could catch, a fatal error's traceback): what it never records is a kill.
"""
from __future__ import annotations

import faulthandler
import json
import os
import queue
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from ..errors import Cancelled
from ..progress import CancelToken
from .protocol import (CANCELLED, DONE, FAILED, HOST_FAULT_FILE, RUNNING, JobStatus, Stored, job_dir_name,
                       read_call, read_stored, reveal_secrets, write_host_state, write_result, write_status)

STORED_IN_MEMORY = 2
"""Stored inputs kept loaded (a CT being clicked and its lung map); older ones are read again if asked for."""
STATUS_EVERY_S = 0.1
"""Progress is written at most this often (the parent polls every 100 ms)."""
PROGRESS_PATIENCE_S = 0.5
"""How long a progress report waits for the parent to let go of the status file; then it is skipped
(the next one catches up), so a held file never fails the job."""
ORPHAN_EXIT_STATUS = 3
RECORDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK")
"""Signals the host can catch: it records which one ended it (SIGKILL cannot be caught)."""


class _Current:
    """The job now running and its cancel token, shared with the stdin reader thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.name: Optional[str] = None
        self.token = CancelToken()
        self.cancelled: set = set()  # names cancelled before or while they ran

    def start(self, name: str) -> CancelToken:
        with self.lock:
            self.name, self.token = name, CancelToken()
            if name in self.cancelled:
                self.token.cancel()
            return self.token

    def cancel(self, name: str) -> None:
        with self.lock:
            self.cancelled.add(name)
            if self.name == name:
                self.token.cancel()


def _read_commands(root: Path, pending: "queue.Queue[Optional[str]]", current: _Current, stored: "StoredInputs") -> None:
    """stdin reader (a thread): keep ``secret`` values, queue ``run`` jobs, forward ``cancel``, remove
    ``forget`` folders; exit when the parent is gone."""
    for line in sys.stdin:
        verb, _, name = line.strip().partition(" ")
        if verb == "secret":
            key, _, text = name.partition(" ")
            stored.secrets[key] = json.loads(text)
        elif verb == "run":
            pending.put(name)
        elif verb == "cancel":
            current.cancel(name)
        elif verb == "forget":
            shutil.rmtree(root / job_dir_name(name), ignore_errors=True)
        elif verb == "quit":
            pending.put(None)
            return
    write_host_state(root, "exited", code=ORPHAN_EXIT_STATUS, reason="its parent let go")
    os._exit(ORPHAN_EXIT_STATUS)  # stdin closed: the parent died or let go of us


class StoredInputs:
    """The inputs the parent handed over outside the call file: stored once (loaded on first use, the
    last few kept in memory) or, for secrets, sent on stdin (in memory only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: "OrderedDict[str, object]" = OrderedDict()
        self.secrets: dict = {}

    def get(self, key: str) -> object:
        if key not in self.loaded:
            self.loaded[key] = read_stored(self.root, key)
            while len(self.loaded) > STORED_IN_MEMORY:
                self.loaded.popitem(last=False)
        self.loaded.move_to_end(key)
        return self.loaded[key]

    def value(self, value):
        """``value`` itself, or the object a :class:`Stored` names, or a dataclass's secrets filled in."""
        return self.get(value.key) if isinstance(value, Stored) else reveal_secrets(value, self.secrets)

    def resolve(self, values):
        """``values`` (a tuple, or a dict's values) with every :class:`Stored` and secret resolved."""
        if isinstance(values, dict):
            return {k: self.value(v) for k, v in values.items()}
        return tuple(self.value(v) for v in values)


def release_cached_memory() -> bool:
    """Collect what finished work left (a failed job's frames hold its tensors) and hand the memory
    torch's CUDA allocator keeps cached back to the driver; False when CUDA is not in use here."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")  # never imported for this
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return False
    torch.cuda.empty_cache()
    return True


def _progress_writer(job_dir: Path):
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= STATUS_EVERY_S:
            last[0] = now
            try:
                write_status(job_dir, JobStatus(RUNNING, min(max(float(fraction), 0.0), 1.0), str(message)),
                             PROGRESS_PATIENCE_S)
            except PermissionError:
                pass

    return report


def run_job(job_dir: Path, token: CancelToken, stored: StoredInputs) -> JobStatus:
    """Run one job folder's call to a finished status, written to the folder; never raises."""
    if token.cancelled:  # cancelled while it waited: skipped
        status = JobStatus(CANCELLED, 0.0, "cancelled before it started")
        write_status(job_dir, status)
        return status
    write_status(job_dir, JobStatus(RUNNING, 0.0, "starting"))
    start = time.monotonic()
    try:
        function, args, kwargs = read_call(job_dir)
        args, kwargs = stored.resolve(args), stored.resolve(kwargs)
        result = function(*args, progress=_progress_writer(job_dir), cancel=token, **kwargs)
        if token.cancelled:
            raise Cancelled("cancelled by the user")
        write_result(job_dir, result)
        status = JobStatus(DONE, 1.0, f"done in {time.monotonic() - start:.1f} s")
    except Cancelled:
        status = JobStatus(CANCELLED, 0.0, "cancelled")
    except BaseException as exc:  # noqa: BLE001 - any failure (MemoryError included) goes to the parent
        status = JobStatus(FAILED, 0.0, "failed", str(exc) or type(exc).__name__, type(exc).__name__,
                           traceback.format_exc())
    if status.state == FAILED:  # the exception is handled: what its frames held can go (out of GPU memory?)
        release_cached_memory()
    write_status(job_dir, status)
    return status


def record_signals(root: Path) -> None:
    """Catchable signals end the host with a record of which one (and the usual 128 + n status)."""
    def leave(number, frame) -> None:
        write_host_state(root, "signalled", signal=signal.Signals(number).name)
        os._exit(128 + number)

    for name in RECORDED_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), leave)


def main(argv: Optional[list] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m nodsynth.jobs.host JOBS_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    write_host_state(root, RUNNING)
    faulthandler.enable(open(root / HOST_FAULT_FILE, "w"))  # a fatal error's traceback (segfault, abort)
    record_signals(root)
    try:
        code = serve(root)
    except BaseException as exc:
        write_host_state(root, "exited", code=1, reason=f"{type(exc).__name__}: {exc}")
        raise
    write_host_state(root, "exited", code=code, reason="asked to quit")
    return code


def serve(root: Path) -> int:
    """Run the jobs named on stdin until ``quit`` (returns 0)."""
    pending: "queue.Queue[Optional[str]]" = queue.Queue()
    current = _Current()
    stored = StoredInputs(root)
    threading.Thread(target=_read_commands, args=(root, pending, current, stored), daemon=True,
                     name="commands").start()
    while True:
        name = pending.get()
        if name is None:
            return 0
        if not (root / name).is_dir():  # forgotten before it ran
            continue
        token = current.start(name)
        run_job(root / name, token, stored)
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
