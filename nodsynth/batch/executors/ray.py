"""``ray``: jobs on Ray actors (the optional extra ``nodsynth[ray]``).

Without an address a local Ray instance is started (and stopped at the end); with ``auto`` or
``HOST:PORT`` an existing cluster is joined; a Ray already initialised in this process is used as
is. One actor per GPU (``num_gpus=1``), or, without GPUs, one per ``threads_per_job`` CPUs; each
keeps a :class:`~nodsynth.batch.worker.WorkerState`, so its engines load once. Actors restart when
their process dies (``max_restarts=-1``); the job it was running is sent again, at most
``max_retries`` times. Only paths travel to the actors: inputs and outputs must be on storage every
node sees (the batch folder, inputs and outputs at the same paths).
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import replace
from typing import Optional

from ...errors import InputError
from ..worker import FAILED, Outcome, Task, WorkerSettings, WorkerState
from . import retry_of

PROBE_PAUSE_S = 0.5


class BatchActor:
    """A Ray actor holding one worker state."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.state = WorkerState(settings)

    def run(self, task: Task) -> Outcome:
        return self.state.run(task)

    def pid(self) -> int:
        return os.getpid()


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise InputError("the ray executor needs Ray: pip install 'nodsynth[ray]' (or use --executor local)") from exc
    return ray


class RayExecutor:
    def __init__(self, settings: WorkerSettings, workers: Optional[int], max_retries: int,
                 address: Optional[str] = None) -> None:
        ray = import_ray()
        self.ray, self.max_retries = ray, max_retries
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, log_to_driver=False) if address else ray.init(log_to_driver=False)
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        threads = max(1, settings.threads_per_job)
        fits = gpus if gpus else max(1, cpus // threads)
        self.workers = min(int(workers), fits) if workers else fits
        options = {"num_gpus": 1} if gpus else {"num_cpus": threads}
        actor_class = ray.remote(BatchActor).options(max_restarts=-1, max_task_retries=0, **options)
        settings = replace(settings, executor="ray")
        self.actors = [actor_class.remote(settings) for _ in range(self.workers)]
        self._recovering: dict = {}  # probe call -> actor whose process died

    def run(self, tasks: list[Task], events) -> list[Outcome]:
        """Tasks go to idle actors. The task of an actor whose process died is sent again to a live actor;
        the dead one rejoins once a probe call shows it has restarted."""
        ray = self.ray
        recovering = self._recovering
        pending, outcomes = deque(tasks), []
        idle = deque(a for a in self.actors if all(a is not r for r in recovering.values()))
        inflight: dict = {}
        while pending or inflight:
            while pending and idle:
                actor, task = idle.popleft(), pending.popleft()
                inflight[actor.run.remote(task)] = (actor, task)
                events.started(task)
            ready, _ = ray.wait(list(inflight) + list(recovering), num_returns=1)
            for ref in ready:
                if ref in recovering:
                    self._probed(ref, idle)
                    continue
                actor, task = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayActorError as exc:
                    recovering[actor.pid.remote()] = actor
                    retry, outcome = retry_of(task, f"its Ray worker died ({type(exc).__name__})", self.max_retries)
                    if retry is not None:
                        pending.appendleft(retry)
                        continue
                except ray.exceptions.RayError as exc:
                    idle.append(actor)
                    outcome = Outcome(task.job.id, FAILED, 0.0, f"{type(exc).__name__}: {exc}", task.attempt)
                events.finished(task, outcome)
                outcomes.append(outcome)
        return outcomes

    def _probed(self, ref, idle: deque) -> None:
        """An answered probe: the actor is back (idle), or still restarting (probed again shortly)."""
        actor = self._recovering.pop(ref)
        try:
            self.ray.get(ref)
            idle.append(actor)
        except self.ray.exceptions.RayActorError:
            time.sleep(PROBE_PAUSE_S)
            self._recovering[actor.pid.remote()] = actor

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            self.ray.shutdown()
