"""Drive a :class:`~NodMAISICommon.worker.BackgroundJob` from the GUI thread with a ``qt.QTimer``.

The apply button becomes a Cancel button while the job runs; a progress bar shows the job's
fraction and message; the completion callback runs on the main thread, the only place where
MRML nodes are created or changed.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import qt
import slicer

from .worker import CANCELLED, DONE, BackgroundJob, JobStatus

POLL_INTERVAL_MS = 100


class QtJobRunner:
    """Runs one background job at a time for a module widget."""

    def __init__(self, progressBar, applyButton, statusLabel=None) -> None:
        self.progressBar = progressBar
        self.applyButton = applyButton
        self.statusLabel = statusLabel
        self.job: Optional[BackgroundJob] = None
        self._onDone: Optional[Callable[[Any], None]] = None
        self._applyText = applyButton.text if applyButton is not None else ""
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._poll)
        if progressBar is not None:
            progressBar.setRange(0, 1000)
            progressBar.hide()

    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self, fn: Callable[..., Any], onDone: Callable[[Any], None], *args: Any, **kwargs: Any) -> None:
        """Start ``fn(*args, progress=, cancel=, **kwargs)`` in a thread; ``onDone(result)`` runs on the GUI thread."""
        if self.running:
            raise RuntimeError("a job is already running")
        self._onDone = onDone
        self.job = BackgroundJob(fn, *args, **kwargs).start()
        if self.applyButton is not None:
            self._applyText = self.applyButton.text
            self.applyButton.text = "Cancel"
        if self.progressBar is not None:
            self.progressBar.setValue(0)
            self.progressBar.show()
        self._timer.start()

    def cancel(self) -> None:
        """Ask the running job to stop (it stops at its next cancel check)."""
        if self.job is not None:
            self.job.cancel()
            self._show(JobStatus("running", self.job.poll().fraction, "cancelling..."))

    def _show(self, status: JobStatus) -> None:
        if self.progressBar is not None:
            self.progressBar.setValue(int(round(1000 * status.fraction)))
            self.progressBar.setFormat(f"{status.message} (%p%)")
        if self.statusLabel is not None:
            self.statusLabel.text = status.message

    def _poll(self) -> None:
        job = self.job
        if job is None:
            self._timer.stop()
            return
        status = job.poll()
        self._show(status)
        if not status.finished:
            return
        self._timer.stop()
        self.job = None
        if self.applyButton is not None:
            self.applyButton.text = self._applyText
        if self.progressBar is not None:
            self.progressBar.hide()
        if status.state == DONE:
            with slicer.util.tryWithErrorDisplay("Could not show the result.", waitCursor=True):
                self._onDone(status.result)
        elif status.state == CANCELLED:
            slicer.util.showStatusMessage("Cancelled.", 3000)
        else:
            logging.error(status.error_details)
            slicer.util.errorDisplay(f"Failed: {status.message}", detailedText=status.error_details)
