"""The server's job queue, persisted in the jobs folder so that a restarted server loses nothing.

One folder per job, named by its server-made id (never by anything a client sent)::

    JOBS_DIR/<id>/job.json      state, order, progress, error (rewritten atomically on every change)
    JOBS_DIR/<id>/request.bin   the wire request as sent (volumes named by hash: refs to the volume cache)
    JOBS_DIR/<id>/result.bin    the wire result, once done

A job folder appears in one atomic rename, complete with its request and ``job.json``, and leaves in
one (``.discarded-*``, deleted in the background); half-made and half-deleted folders are removed at
start-up. On start-up queued jobs are queued again in their
original order, a job that was running when the server died is queued again at its place (and its
``attempts`` count shows it ran twice) unless it has already started ``max_attempts`` times: a job
that kills the server (out of memory, a crashing library) then fails with that reason instead of
crashing every restart. Finished jobs stay until the client deletes them or they expire.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Optional

from ..io.atomic import write_text_atomic
from ..progress import CancelToken
from .auth import DEFAULT_NAME

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
"""Job ids are 128 random bits as 32 hex digits (:func:`secrets.token_hex`)."""
JOB_FILE, REQUEST_FILE, RESULT_FILE = "job.json", "request.bin", "result.bin"
INCOMING_PREFIX = ".incoming-"
TRASH_PREFIX = ".discarded-"
WRITE_BYTES = 4 << 20
"""An incoming request is written in pieces of about this many bytes."""
DEFAULT_MAX_ATTEMPTS = 3
"""Starts of one job after which a server restart fails it instead of running it again."""


@dataclass
class Job:
    """One job's persisted record (``job.json``) plus its live cancel token."""

    id: str
    seq: int
    operation: str
    engine: str
    state: str = QUEUED
    progress: float = 0.0
    message: str = "queued"
    error: str = ""
    error_type: str = ""
    attempts: int = 0
    owner: str = DEFAULT_NAME  # the name of the token that submitted it (jobs.json of older servers: none)
    created_s: float = field(default_factory=time.time)
    started_s: Optional[float] = None
    finished_s: Optional[float] = None
    cancel: CancelToken = field(default_factory=CancelToken, repr=False, compare=False)
    decoded: Any = field(default=None, repr=False, compare=False)  # the request as checked at submission

    def record(self) -> dict:
        """The JSON-able persisted fields."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("cancel", "decoded")}


class IncomingRequest:
    """A request file written piece by piece while the request arrives, in order, by a thread of its own
    (pieces gathered to :data:`WRITE_BYTES` first): the upload does not wait for the disk, and the job's
    file is complete when the last byte is in (:meth:`JobStore.commit`)."""

    def __init__(self, job_id: str, folder: Path) -> None:
        self.job_id, self.folder = job_id, folder
        self._handle = os.fdopen(os.open(folder / REQUEST_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="nodsynth-request-write")
        self._writes: list = []
        self._gathered = bytearray()

    def write(self, piece: bytes) -> None:
        self._gathered += piece
        if len(self._gathered) >= WRITE_BYTES:
            self._writes.append(self._writer.submit(self._handle.write, bytes(self._gathered)))
            self._gathered.clear()

    def finish(self) -> None:
        """Wait until every piece is written (raises what a write raised) and close the file."""
        try:
            if self._gathered:
                self._writes.append(self._writer.submit(self._handle.write, bytes(self._gathered)))
            for write in self._writes:
                write.result()
        finally:
            self._writer.shutdown(wait=True)
            self._handle.close()

    def discard(self) -> None:
        """Abandon it: nothing of it stays."""
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class JobStore:
    """Thread-safe persisted queue. Workers take jobs in submission order with :meth:`next_job`."""

    def __init__(self, jobs_dir: str | Path, keep_s: float = 24 * 3600.0,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.root = Path(jobs_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep_s = float(keep_s)
        self.max_attempts = int(max_attempts)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Condition()
        self._next_seq = 0
        self._load()

    # ----------------------------------------------------------------------------- persistence
    def _folder(self, job: Job) -> Path:
        return self.root / job.id  # job.id was made by this server (see submit / _load)

    def _save(self, job: Job) -> None:
        write_text_atomic(self._folder(job) / JOB_FILE, json.dumps(job.record(), indent=1), private=True)

    def _load(self) -> None:
        """Rebuild the queue from the jobs folder (start-up)."""
        for path in sorted(self.root.iterdir()):
            if path.name.startswith((INCOMING_PREFIX, TRASH_PREFIX)):
                shutil.rmtree(path, ignore_errors=True)
                continue
            if not (path.is_dir() and JOB_ID_PATTERN.match(path.name)):
                continue
            try:
                record = json.loads((path / JOB_FILE).read_text(encoding="utf-8"))
                job = Job(**record)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable job folder %s: %s", path, exc)
                continue
            if job.id != path.name:
                log.warning("ignoring job folder %s: its job.json names job %s", path, job.id)
                continue
            self._recover(job, path)
            self._jobs[job.id] = job
            self._next_seq = max(self._next_seq, job.seq + 1)

    def _recover(self, job: Job, path: Path) -> None:
        """Bring a job read from disk into a state a worker can continue from."""
        if job.state == RUNNING or (job.state == DONE and not (path / RESULT_FILE).is_file()):
            if job.attempts < self.max_attempts:
                job.state, job.progress, job.message = QUEUED, 0.0, "queued again after a server restart"
            else:
                job.state, job.message, job.error_type = FAILED, "failed", "ServerError"
                job.error = (f"the server stopped {job.attempts} times while running this job (the job may "
                             "crash it, e.g. by running out of memory); not run again (nodsynth serve "
                             f"--max-attempts {self.max_attempts})")
                job.finished_s = time.time()
        if job.state == QUEUED and not (path / REQUEST_FILE).is_file():
            job.state, job.error, job.error_type = FAILED, "the request file of this job is missing", "NodsynthError"
            job.finished_s = time.time()
        self._save(job)

    # ---------------------------------------------------------------------------------- clients
    def submit(self, request_pieces: Iterable[bytes], operation: str, engine: str, owner: str = DEFAULT_NAME,
               decoded: Any = None) -> Job:
        """Persist a validated request as a new queued job of ``owner`` and return it; ``decoded``, the
        request already decoded, spares the worker decoding it again (it is not persisted)."""
        incoming = self.incoming()
        try:
            for piece in request_pieces:
                incoming.write(piece)
        except BaseException:
            incoming.discard()
            raise
        return self.commit(incoming, operation, engine, owner, decoded)

    def incoming(self) -> "IncomingRequest":
        """A new job's request file, written while the request arrives, then committed (:meth:`commit`) or
        discarded: the job's folder is ``.incoming-<id>`` until then (removed at start-up if left)."""
        job_id = secrets.token_hex(16)
        folder = self.root / f"{INCOMING_PREFIX}{job_id}"
        folder.mkdir()
        return IncomingRequest(job_id, folder)

    def commit(self, incoming: "IncomingRequest", operation: str, engine: str, owner: str = DEFAULT_NAME,
               decoded: Any = None) -> Job:
        """The request written, make it a queued job (one atomic rename of its folder) and return it."""
        try:
            incoming.finish()
            with self._lock:
                job = Job(id=incoming.job_id, seq=self._next_seq, operation=operation, engine=engine, owner=owner,
                          decoded=decoded)
                self._next_seq += 1
                write_text_atomic(incoming.folder / JOB_FILE, json.dumps(job.record(), indent=1), private=True)
                incoming.folder.rename(self.root / job.id)
                self._jobs[job.id] = job
                self._lock.notify_all()
        finally:
            if incoming.folder.exists():
                incoming.discard()
        return job

    def get(self, job_id: str) -> Optional[Job]:
        """The job with this id, or ``None`` (ids that are not well-formed are never looked up on disk)."""
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.seq)

    def queue_position(self, job: Job) -> int:
        """How many queued jobs run before this one (0 = next); -1 when it is not queued."""
        with self._lock:
            if job.state != QUEUED:
                return -1
            return sum(1 for other in self._jobs.values() if other.state == QUEUED and other.seq < job.seq)

    def result_path(self, job: Job) -> Path:
        return self._folder(job) / RESULT_FILE

    def request_path(self, job: Job) -> Path:
        return self._folder(job) / REQUEST_FILE

    def cancel(self, job: Job) -> None:
        """Cancel a queued job now, or ask a running one to stop at its next check."""
        with self._lock:
            if job.state == QUEUED:
                self._finish_locked(job, CANCELLED, "cancelled before it started")
            elif job.state == RUNNING:
                job.cancel.cancel()
                job.message = "cancelling"

    def discard(self, job: Job) -> None:
        """Forget a finished job and delete its files (the client fetched its result): the folder is
        renamed away at once and deleted in the background (its request may hold a 256 MB CT)."""
        with self._lock:
            if job.state not in FINISHED:
                raise ValueError("only finished jobs can be discarded")
            self._jobs.pop(job.id, None)
        trash = self.root / f"{TRASH_PREFIX}{job.id}"
        try:
            self._folder(job).rename(trash)
        except OSError:
            return  # already gone
        threading.Thread(target=shutil.rmtree, args=(trash, True), name="nodsynth-discard", daemon=True).start()

    def expire(self, now_s: Optional[float] = None) -> int:
        """Discard finished jobs older than ``keep_s``; returns how many."""
        now_s = time.time() if now_s is None else now_s
        with self._lock:
            old = [j for j in self._jobs.values()
                   if j.state in FINISHED and j.finished_s is not None and now_s - j.finished_s > self.keep_s]
        for job in old:
            self.discard(job)
        return len(old)

    # ---------------------------------------------------------------------------------- workers
    def next_job(self, timeout_s: float) -> Optional[Job]:
        """Mark the oldest queued job running and return it; ``None`` after ``timeout_s`` without one."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                queued = [j for j in self._jobs.values() if j.state == QUEUED]
                if queued:
                    job = min(queued, key=lambda j: j.seq)
                    job.state, job.message, job.progress = RUNNING, "starting", 0.0
                    job.attempts += 1
                    job.started_s = time.time()
                    job.cancel = CancelToken()
                    self._save(job)
                    return job
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    return None

    def report(self, job: Job, fraction: float, message: str) -> None:
        """Progress of a running job (kept in memory only: a restarted job starts from 0 anyway)."""
        job.progress = min(max(float(fraction), 0.0), 1.0)
        if not job.cancel.cancelled:
            job.message = str(message)

    def finish(self, job: Job, state: str, message: str, error: str = "", error_type: str = "") -> None:
        with self._lock:
            self._finish_locked(job, state, message, error, error_type)

    def _finish_locked(self, job: Job, state: str, message: str, error: str = "", error_type: str = "") -> None:
        job.state, job.message, job.error, job.error_type = state, message, error, error_type
        if state == DONE:
            job.progress = 1.0
        job.finished_s = time.time()
        self._save(job)
        self._lock.notify_all()
