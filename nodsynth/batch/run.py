"""``run_manifest``: check a manifest, then run its (share of) jobs stage by stage on an executor.

Everything is checked before any job runs (:func:`~nodsynth.batch.check.check_manifest`). Jobs that
are done are skipped; a job whose input another job of this run failed to write fails without
running; jobs another runner holds are waited for (and taken over if that runner dies). At the end
``failed.jsonl`` (or ``failed-shard-<i>-of-<n>.jsonl``) lists this run's failed jobs.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Optional, Union

from ..io.atomic import write_text_atomic
from ..progress import CancelToken, ProgressFn, check_cancel
from .check import CheckedManifest, check_manifest
from .executors import make_executor
from .records import is_done
from .shard import assign_shards, parse_shard
from .summary import ELSEWHERE, BatchSummary, RunCounter
from .worker import BUSY, FAILED, SKIPPED, Outcome, Task, WorkerSettings


def share_of(checked: CheckedManifest, shard: Optional[tuple[int, int]]) -> list[int]:
    """Indices of the jobs this runner runs: all, or shard ``i`` of ``n``."""
    if shard is None:
        return list(range(len(checked.jobs)))
    return assign_shards(checked.groups, shard[1])[shard[0]]


def _blocked(index: int, checked: CheckedManifest, outcomes: dict[str, Outcome]) -> Optional[str]:
    for producer in sorted(checked.deps[index]):
        job = checked.jobs[producer]
        if outcomes.get(job.id) is not None and outcomes[job.id].status == FAILED:
            return f"not run: its input comes from job {job.id!r} (row {job.row}), which failed"
    return None


FIRST_POLL_S = 0.25


def _wait_for_others(busy: list[Task], executor, counter: RunCounter, max_poll_s: float,
                     cancel: Optional[CancelToken]) -> dict[str, Outcome]:
    """Jobs held by another runner: wait until they are done there, or run them here once that runner died.
    Polls after 0.25 s, then 1.5 times longer each time up to ``max_poll_s``."""
    outcomes: dict[str, Outcome] = {}
    poll_s = FIRST_POLL_S
    while busy:
        time.sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 1.5)
        check_cancel(cancel)
        waiting = []
        for task in busy:
            if is_done(task.job, task.layout):
                outcomes[task.job.id] = Outcome(task.job.id, ELSEWHERE)
                counter.settle(ELSEWHERE)
            else:
                waiting.append(Task(task.job, task.layout, uuid.uuid4().hex))
        for outcome in executor.run(waiting, _SilentBusy(counter)) if waiting else []:
            if outcome.status != BUSY:
                outcomes[outcome.job_id] = outcome
        busy = [t for t in waiting if t.job.id not in outcomes]
    return outcomes


class _SilentBusy:
    """Counter events that do not count a job still busy elsewhere as finished."""

    def __init__(self, counter: RunCounter) -> None:
        self.counter = counter

    def started(self, task) -> None:
        self.counter.started(task)

    def finished(self, task, outcome: Outcome) -> None:
        if outcome.status == BUSY:
            self.counter.running -= 1
        else:
            self.counter.finished(task, outcome)


def run_manifest(manifest: Union[str, os.PathLike], executor: str = "local", workers: Optional[int] = None,
                 shard: Union[None, str, tuple[int, int]] = None, ray_address: Optional[str] = None,
                 threads_per_job: int = 1, max_retries: int = 2, stale_after_s: float = 600.0,
                 weights_dir: Optional[str] = None, engine_options: Optional[dict[str, dict[str, Any]]] = None,
                 device: Optional[str] = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None, allow_outside: bool = False) -> BatchSummary:
    """Run a manifest (see the module docstring) and return its :class:`BatchSummary`.

    ``executor``: ``"inline"`` (this process), ``"local"`` (``workers`` processes; default one per GPU,
    else cores // ``threads_per_job``) or ``"ray"`` (``ray_address``: None starts a local instance,
    ``"auto"`` / ``"HOST:PORT"`` joins a cluster). ``shard``: ``"i/n"``. ``threads_per_job``: torch
    threads of each job (outputs are bit-identical between runs with the same value). A worker that dies
    is replaced and its job retried up to ``max_retries`` times; a claim without heartbeat for
    ``stale_after_s`` may be taken over. ``progress(fraction, message)`` gets done / failed / running
    and the ETA. Bad input raises :class:`~nodsynth.errors.InputError` before any job runs; so do outputs
    outside the manifest's folder unless ``allow_outside``.
    """
    share_spec = parse_shard(f"{shard[0]}/{shard[1]}" if isinstance(shard, tuple) else shard)
    if threads_per_job < 1 or max_retries < 0 or stale_after_s <= 0:
        raise ValueError("threads_per_job >= 1, max_retries >= 0 and stale_after_s > 0 are required")
    checked = check_manifest(manifest, weights_dir, engine_options, allow_outside)
    indices = share_of(checked, share_spec)
    layout = checked.layout
    layout.records.mkdir(parents=True, exist_ok=True)
    settings = WorkerSettings(threads_per_job, device, weights_dir, dict(engine_options or {}), stale_after_s)
    start = time.perf_counter()
    counter = RunCounter(len(indices), progress)
    outcomes: dict[str, Outcome] = {}
    runner = make_executor(executor, settings, workers, max_retries, ray_address, cancel)
    try:
        for stage in sorted({checked.stage[i] for i in indices}):
            tasks = []
            for index in (i for i in indices if checked.stage[i] == stage):
                job = checked.jobs[index]
                reason = _blocked(index, checked, outcomes)
                if reason is not None or is_done(job, layout):
                    outcomes[job.id] = Outcome(job.id, FAILED if reason else SKIPPED, error=reason)
                    counter.settle(outcomes[job.id].status)
                else:
                    tasks.append(Task(job, layout, uuid.uuid4().hex))
            check_cancel(cancel)
            results = {o.job_id: o for o in runner.run(tasks, _SilentBusy(counter))}
            busy = [t for t in tasks if results[t.job.id].status == BUSY]
            outcomes.update({i: o for i, o in results.items() if o.status != BUSY})
            outcomes.update(_wait_for_others(busy, runner, counter, max(0.2, min(5.0, stale_after_s / 20)), cancel))
    finally:
        runner.close()
    summary = BatchSummary(checked.manifest.path, layout, executor, runner.workers, share_spec,
                           [checked.jobs[i] for i in indices], outcomes, time.perf_counter() - start)
    write_text_atomic(summary.failed_path, "".join(json.dumps(row) + "\n" for row in summary.failed_rows()))
    return summary
