"""Progress reporting and cancellation for long work.

Every long-running function takes ``progress(fraction, message)`` (fraction in [0, 1])
and a :class:`CancelToken`; both are optional and default to doing nothing.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores its reports."""


class CancelToken:
    """Thread-safe cancel flag shared between a worker and whoever may stop it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def scaled_progress(progress: Optional[ProgressFn], start: float, stop: float) -> ProgressFn:
    """Map a sub-task's fraction 0..1 onto ``start..stop`` of the caller's progress."""
    report = progress or no_progress

    def sub(fraction: float, message: str) -> None:
        report(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return sub


def check_cancel(cancel: Optional[CancelToken]) -> None:
    """Raise :class:`Cancelled` when ``cancel`` is set; accept ``None``."""
    if cancel is not None:
        cancel.raise_if_cancelled()
