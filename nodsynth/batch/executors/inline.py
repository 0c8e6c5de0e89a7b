"""``inline``: one job at a time in the calling process (Slicer, notebooks, debugging, the reference)."""
from __future__ import annotations

import os
import sys
from typing import Optional

from ...progress import CancelToken
from ..worker import THREAD_VARIABLES, Outcome, Task, WorkerSettings, WorkerState


class InlineExecutor:
    workers = 1

    def __init__(self, settings: WorkerSettings, cancel: Optional[CancelToken] = None) -> None:
        torch, sitk = sys.modules.get("torch"), sys.modules.get("SimpleITK")
        self._threads_before = torch.get_num_threads() if torch is not None else None
        self._itk_threads_before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() if sitk is not None else None
        self._environment_before = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        self.state = WorkerState(settings)
        self.cancel = cancel

    def run(self, tasks: list[Task], events) -> list[Outcome]:
        outcomes = []
        for task in tasks:
            if self.cancel is not None:
                self.cancel.raise_if_cancelled()
            events.started(task)
            outcome = self.state.run(task, cancel=self.cancel)
            events.finished(task, outcome)
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        """Give the calling process back its thread settings."""
        for name, value in self._environment_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch, sitk = sys.modules.get("torch"), sys.modules.get("SimpleITK")
        if torch is not None and self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
        if sitk is not None and self._itk_threads_before is not None:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self._itk_threads_before)
