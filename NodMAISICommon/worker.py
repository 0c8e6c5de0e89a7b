"""Run long work in a background thread and let the GUI thread poll it (pure Python).

The work is any ``fn(*args, progress=..., cancel=..., **kwargs)`` following nodsynth's
convention (``progress(fraction, message)``, :class:`nodsynth.progress.CancelToken`). The
thread never touches MRML or Qt: it only stores its latest progress and, at the end, its
result or error, which the GUI thread reads with :meth:`BackgroundJob.poll` (see ``qtjob``)
and turns into nodes on the main thread.
"""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

from nodsynth.errors import Cancelled
from nodsynth.progress import CancelToken

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job: state, progress fraction 0..1 and message, then result or error."""

    state: str
    fraction: float
    message: str
    result: Any = None
    error: Optional[BaseException] = None
    error_details: str = ""

    @property
    def finished(self) -> bool:
        return self.state != RUNNING


class BackgroundJob:
    """One call of ``fn`` in a daemon thread, with thread-safe progress and cooperative cancel."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.cancel_token = CancelToken()
        self._lock = threading.Lock()
        self._status = JobStatus(RUNNING, 0.0, "starting")
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True,
                                        name=f"nodmaisi-{getattr(fn, '__name__', 'job')}")

    def start(self) -> "BackgroundJob":
        self._thread.start()
        return self

    def _report(self, fraction: float, message: str) -> None:
        with self._lock:
            if self._status.state == RUNNING:
                self._status = JobStatus(RUNNING, min(max(float(fraction), 0.0), 1.0), str(message))

    def _finish(self, status: JobStatus) -> None:
        with self._lock:
            self._status = status

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            result = fn(*args, progress=self._report, cancel=self.cancel_token, **kwargs)
        except Cancelled as exc:
            self._finish(JobStatus(CANCELLED, self._status.fraction, "cancelled", error=exc))
        except Exception as exc:  # handed to the GUI thread, which shows it
            self._finish(JobStatus(FAILED, self._status.fraction, str(exc), error=exc,
                                   error_details=traceback.format_exc()))
        else:
            if self.cancel_token.cancelled:
                self._finish(JobStatus(CANCELLED, self._status.fraction, "cancelled"))
            else:
                self._finish(JobStatus(DONE, 1.0, "done", result=result))

    def poll(self) -> JobStatus:
        """The latest status; safe to call from any thread at any rate."""
        with self._lock:
            return self._status

    def cancel(self) -> None:
        """Ask the work to stop at its next cancel check."""
        self.cancel_token.cancel()

    def wait(self, timeout_s: Optional[float] = None) -> JobStatus:
        """Block until the work ends (headless use and tests); returns the final status."""
        self._thread.join(timeout_s)
        return self.poll()
