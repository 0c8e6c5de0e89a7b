"""``local``: N worker processes on this machine (``concurrent.futures.ProcessPoolExecutor``, spawned).

Each process keeps one :class:`~nodsynth.batch.worker.WorkerState` (engines loaded once). With GPUs
and no ``device`` setting, worker ``i`` uses ``cuda:{i mod GPUs}`` and the default is one worker per
GPU; otherwise the default is CPU cores // threads per job. A worker exits when the process that
started it is gone (so a killed runner leaves no orphan computing), and a dead worker's tasks are
retried on a new pool.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Optional

from ..worker import FAILED, Outcome, Task, WorkerSettings, WorkerState
from . import retry_of

PARENT_POLL_S = 0.5
_state: Optional[WorkerState] = None


def gpu_devices() -> list[str]:
    """``cuda:0``, ... for the GPUs torch sees here (none without torch or CUDA)."""
    from ...server.devices import torch_cuda_count

    return [f"cuda:{i}" for i in range(torch_cuda_count())]


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(70)


def _initialize(settings: WorkerSettings, devices, parent_pid: int) -> None:
    global _state
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    if devices is not None:
        settings = replace(settings, device=devices.get())
    _state = WorkerState(settings)


def _run(task: Task) -> Outcome:
    assert _state is not None, "worker not initialised"
    return _state.run(task)


class LocalExecutor:
    def __init__(self, settings: WorkerSettings, workers: Optional[int], max_retries: int) -> None:
        self.settings = replace(settings, executor="local")
        self.devices = [] if settings.device else gpu_devices()
        default = len(self.devices) or max(1, (os.cpu_count() or 1) // max(1, settings.threads_per_job))
        self.workers = int(workers) if workers else default
        self.max_retries = max_retries
        self._pool: Optional[ProcessPoolExecutor] = None

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # no fork: torch / CUDA state must not be copied
        devices = None
        if self.devices:
            devices = context.Queue()
            for index in range(self.workers):
                devices.put(self.devices[index % len(self.devices)])
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_initialize,
                                   initargs=(self.settings, devices, os.getpid()))

    def _settle(self, future: Future, task: Task, pending: deque, events, outcomes: list) -> bool:
        """Record a finished future's outcome, or queue a retry when its pool broke; True if it broke."""
        broken = False
        try:
            outcome = future.result()
        except BrokenProcessPool:
            broken = True
            retry, outcome = retry_of(task, "a worker process died", self.max_retries)
            if retry is not None:
                pending.appendleft(retry)
                return broken
        except Exception as exc:  # the task could not be sent or its result not returned
            outcome = Outcome(task.job.id, FAILED, 0.0, f"{type(exc).__name__}: {exc}", task.attempt)
        events.finished(task, outcome)
        outcomes.append(outcome)
        return broken

    def run(self, tasks: list[Task], events) -> list[Outcome]:
        pending, outcomes = deque(tasks), []
        inflight: dict[Future, Task] = {}
        while pending or inflight:
            if self._pool is None:
                self._pool = self._new_pool()
            while pending and len(inflight) < self.workers:
                task = pending.popleft()
                inflight[self._pool.submit(_run, task)] = task
                events.started(task)
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                broken |= self._settle(future, inflight.pop(future), pending, events, outcomes)
            if broken:  # the whole pool is gone: settle everything it still had, then start a new one
                wait(list(inflight))
                for future in list(inflight):
                    self._settle(future, inflight.pop(future), pending, events, outcomes)
                self._pool.shutdown(wait=True)
                self._pool = None
        return outcomes

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
