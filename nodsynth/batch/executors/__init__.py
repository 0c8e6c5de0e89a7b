"""Where jobs run: ``inline`` (this process), ``local`` (a pool of worker processes) or ``ray``.

Every executor has ``workers`` and ``run(tasks, events) -> list[Outcome]``, runs at most ``workers``
tasks at once, calls ``events.started(task)`` / ``events.finished(task, outcome)``, and retries a task
whose worker died (``max_retries`` times, passing the dead attempt's claim token so the retry may take
the job over at once); ``close()`` ends its workers.
"""
from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Optional, Protocol

from ...errors import InputError
from ..worker import FAILED, Outcome, Task

EXECUTORS = ("inline", "local", "ray")


class Events(Protocol):
    def started(self, task: Task) -> None: ...

    def finished(self, task: Task, outcome: Outcome) -> None: ...


def retry_of(task: Task, reason: str, max_retries: int) -> tuple[Optional[Task], Optional[Outcome]]:
    """After the worker of ``task`` died: (the next attempt, None) or (None, a failed outcome)."""
    if task.attempt > max_retries:
        return None, Outcome(task.job.id, FAILED, 0.0, f"{reason}; gave up after {task.attempt} attempt(s) "
                             f"(max retries {max_retries})", task.attempt)
    return replace(task, token=uuid.uuid4().hex, attempt=task.attempt + 1, dead_token=task.token), None


def make_executor(name: str, settings, workers: Optional[int], max_retries: int, ray_address: Optional[str] = None,
                  cancel=None):
    """The executor called ``name`` (see :data:`EXECUTORS`); ``cancel`` stops an inline run inside a job."""
    if name == "inline":
        from .inline import InlineExecutor

        return InlineExecutor(settings, cancel=cancel)
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(settings, workers, max_retries)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(settings, workers, max_retries, ray_address)
    raise InputError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
