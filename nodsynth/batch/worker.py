"""What runs one job, in whichever process an executor chose: claim, compute, commit, record.

A :class:`WorkerState` lives as long as its worker (a pool process, a Ray actor, or the caller's
process): it creates each engine once and keeps it (networks stay loaded), and hashes each weight
file once. :meth:`WorkerState.run` takes a :class:`Task` and never raises; it returns an
:class:`Outcome`:

1. skip the job if it is done (:func:`~nodsynth.batch.records.is_done`);
2. claim it (:class:`~nodsynth.batch.claims.Claim`), or report it ``busy`` when a live runner has it;
3. run the op with its outputs going to ``<batch>/.staging/<id>/``;
4. check the claim is still ours, move every output onto its real path (``os.replace``), then write
   the record and the journal line. A job killed before step 4 leaves only its staging folder,
   which the next claimant removes. A runner that finds its claim taken over (it went stale) discards
   its outputs and reports the job ``busy``, not failed: the runner that took it over finishes it.
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..io.atomic import atomic_path, file_suffixes
from ..engines.base import Engine
from ..errors import NodsynthError
from ..progress import CancelToken, ProgressFn, no_progress
from .claims import HOST, Claim
from .engine_choice import row_engine_options
from .layout import BatchLayout
from .manifest import Job
from .opspec import JobContext, op_arguments
from .ops import get_op
from .records import HashCache, append_journal, environment, is_done, write_record

DONE, SKIPPED, FAILED, BUSY = "done", "skipped", "failed", "busy"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


@dataclass(frozen=True)
class WorkerSettings:
    """How every worker of a run computes (the same everywhere, so outputs are the same)."""

    threads_per_job: int = 1
    """torch intra-op threads; results are bit-identical only between runs with the same value."""
    device: Optional[str] = None
    """torch device for engines (None: CUDA when the worker sees a GPU, else CPU)."""
    weights_dir: Optional[str] = None
    engine_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale_after_s: float = 600.0
    executor: str = "inline"


@dataclass(frozen=True)
class Task:
    """One attempt at one job; ``dead_token`` is the claim token of an attempt whose worker died."""

    job: Job
    layout: BatchLayout
    token: str
    attempt: int = 1
    dead_token: Optional[str] = None


@dataclass
class Outcome:
    job_id: str
    status: str
    seconds: float = 0.0
    error: Optional[str] = None
    attempt: int = 1
    host: str = HOST
    pid: int = field(default_factory=os.getpid)


def limit_threads(threads: int) -> None:
    """Use ``threads`` threads per job here: environment for libraries not loaded yet, torch and
    SimpleITK if loaded (N workers then use N x threads cores, not N x all cores)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    sitk = sys.modules.get("SimpleITK")
    if sitk is not None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _replace_folder(staged: Path, target: Path) -> None:
    """Move the folder ``staged`` (a DICOM series) onto ``target``, an earlier one moved aside first, then removed;
    across filesystems a copy made beside ``target`` is moved."""
    if os.stat(staged).st_dev != os.stat(target.parent).st_dev:
        copy = target.with_name(f".{target.name}.{os.getpid()}.copy")
        shutil.copytree(staged, copy)
        staged = copy
    aside = target.with_name(f".{target.name}.{os.getpid()}.replaced")
    if target.exists():
        os.replace(target, aside)
    os.replace(staged, target)
    shutil.rmtree(aside, ignore_errors=True)


def move_into_place(staged: Path, target: Path) -> None:
    """``os.replace`` onto ``target``; across filesystems, copy beside it and rename (still atomic); a folder
    replaces an earlier one whole (:func:`_replace_folder`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if staged.is_dir():
        _replace_folder(staged, target)
        return
    try:
        os.replace(staged, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_path(target) as tmp:
            shutil.copyfile(staged, tmp)


class ClaimLost(NodsynthError):
    """Another runner took the job's claim over (it went stale) before this one committed."""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, NodsynthError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


class WorkerState:
    """Engines and hashes kept for the life of one worker; runs tasks (see the module docstring)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.hashes = HashCache()
        self._engines: dict[tuple[str, Optional[str]], Engine] = {}
        self._weights: dict[tuple[str, Optional[str]], dict] = {}
        limit_threads(settings.threads_per_job)

    # ----------------------------------------------------------- engines
    def _options(self, name: str, weights: Optional[str]) -> dict[str, Any]:
        return row_engine_options(name, weights, self.settings.weights_dir, self.settings.engine_options)

    def engine(self, name: str, weights: Optional[str] = None) -> Engine:
        """The engine ``name`` with these weights, created on first use and kept."""
        from ..engines import get_engine

        options = self._options(name, weights)
        key = (name, options.get("weights_dir"))
        if key not in self._engines:
            if self.settings.device:
                options.setdefault("device", self.settings.device)
            self._engines[key] = get_engine(name, **options)
            limit_threads(self.settings.threads_per_job)
        return self._engines[key]

    def weight_files(self, name: str, weights: Optional[str]) -> dict[str, dict]:
        """role -> path, SHA-256 and size of the files engine ``name`` uses (hashed once per worker)."""
        from ..weights import ENGINE_WEIGHTS, weights_report

        key = (name, self._options(name, weights).get("weights_dir"))
        if key not in self._weights:
            files = weights_report(name, key[1], with_hash=True)["files"] if name in ENGINE_WEIGHTS else []
            self._weights[key] = {f["role"]: {"path": f["found"], "sha256": f["sha256"], "bytes": f["size_bytes"]}
                                  for f in files if f["found"]}
        return self._weights[key]

    # ----------------------------------------------------------- jobs
    def run(self, task: Task, progress: Optional[ProgressFn] = None,
            cancel: Optional[CancelToken] = None) -> Outcome:
        """Run one attempt; never raises (a failure is an :class:`Outcome` with its error)."""
        start = time.perf_counter()
        job, layout = task.job, task.layout

        def outcome(status: str, error: Optional[str] = None) -> Outcome:
            return Outcome(job.id, status, time.perf_counter() - start, error, task.attempt)

        if not layout.records.is_dir():
            return outcome(FAILED, f"this worker ({HOST}) does not see the batch folder {layout.root}: inputs and "
                                   "outputs must be on storage every worker sees, at the same paths")
        try:
            if is_done(job, layout):
                return outcome(SKIPPED)
            claim = Claim(layout.claim_path(job.id), task.token, job.id)
            holder = claim.acquire(self.settings.stale_after_s, task.dead_token)
        except Exception as exc:  # e.g. the batch folder is not writable
            return outcome(FAILED, _error_text(exc))
        if holder is not None:
            return outcome(BUSY, f"claimed by {holder.get('host', '?')} process {holder.get('pid', '?')}")
        staging = layout.staging_dir(job.id)
        try:
            if is_done(job, layout):  # finished by the runner whose claim we found released
                return outcome(SKIPPED)
            claim.start_heartbeat(max(1.0, self.settings.stale_after_s / 4.0))
            self._compute_and_commit(task, claim, staging, progress or no_progress, cancel or CancelToken())
            return outcome(DONE)
        except ClaimLost as exc:  # not a failure: the job is done or being done by the runner that took it
            return outcome(BUSY, str(exc))
        except Exception as exc:  # one job's failure must not stop the batch
            return outcome(FAILED, _error_text(exc))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            claim.release()

    def _compute_and_commit(self, task: Task, claim: Claim, staging: Path, progress: ProgressFn,
                            cancel: CancelToken) -> None:
        job, layout = task.job, task.layout
        started = time.time()
        shutil.rmtree(staging, ignore_errors=True)  # left by an attempt that died
        staging.mkdir(parents=True)
        staged = {name: staging / f"{name}{file_suffixes(target)}" for name, target in job.outputs.items()}
        op = get_op(job.op)
        args = op_arguments(op, job, staged)
        limit_threads(self.settings.threads_per_job)
        t0 = time.perf_counter()
        facts = op.run(JobContext(job, args, staged, self.engine, progress, cancel, self.settings.weights_dir,
                                  self.settings.device))
        t1 = time.perf_counter()
        missing = [name for name, path in staged.items() if not path.exists()]
        if missing:
            raise NodsynthError(f"op {job.op!r} did not write output(s) {', '.join(missing)}")
        engine = self.engine(args.engine, args.weights) if op.ENGINE_OPERATION else None
        body: dict[str, Any] = {
            "inputs": {name: self.hashes.describe(path) for name, path in job.inputs.items()},
            "outputs": {name: {**self.hashes.describe(staged[name]), "path": str(job.outputs[name])}
                        for name in job.outputs},
            "engine": None if engine is None else {
                "name": engine.name, "weights_dir": self._options(engine.name, args.weights).get("weights_dir"),
                "options": self.settings.engine_options.get(engine.name, {}),
                "weights": self.weight_files(engine.name, args.weights)},
            "environment": environment(str(getattr(engine, "device", "cpu")), self.settings.threads_per_job),
            "executor": self.settings.executor, "attempt": task.attempt, "token": task.token, "facts": facts}
        t2 = time.perf_counter()
        if not claim.owned():
            raise ClaimLost("another runner took this job over (its claim went stale); outputs discarded")
        for name, target in job.outputs.items():
            move_into_place(staged[name], target)
        t3 = time.perf_counter()
        body["timings"] = {"started": started, "finished": time.time(), "run_s": t1 - t0, "hash_s": t2 - t1,
                           "commit_s": t3 - t2}
        write_record(layout, job, body)
        append_journal(layout, {"id": job.id, "token": task.token, "attempt": task.attempt, "host": HOST,
                                "pid": os.getpid(), "executor": self.settings.executor, "time": time.time()})
