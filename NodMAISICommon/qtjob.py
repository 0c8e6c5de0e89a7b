"""Run a module's long job in a separate process and follow it from the GUI thread (Slicer side).

Slicer's embedded Python does not let worker threads run while the Qt event loop idles, so jobs
run in a :class:`nodsynth.jobs.client.JobHost` child process (``PythonSlicer``), started on first
use and kept warm between jobs (engines and their networks stay loaded). One such process serves
every module of the Slicer session (:func:`shared_host`): one engine cache and one CUDA context,
jobs of different modules run one after another in the order they were handed over. A ``qt.QTimer`` polls the
job every 100 ms: the progress bar and status label follow it, the apply button reads "Cancel"
while it runs, and its result is handed to ``onDone`` on the main thread, the only place MRML
nodes are touched. Large inputs (a CT the job process does not hold yet) are handed over a piece per
timer tick before the job starts, so the GUI stays responsive while they go. Cancel stops the job within 2 s (its process tree is killed when the engine
does not stop by itself; the other modules' jobs waiting behind it go to the next process); a
crashed job process fails the job with a message and leaves Slicer running; :meth:`discard` (scene
closed) forgets the module's job, and :meth:`close` of the last module's runner (module cleanup,
application quit) ends the process so none is left behind.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import qt
import slicer

from nodsynth.jobs import CANCELLED, DONE, RUNNING, JobStatus
from nodsynth.jobs.client import HostJob, JobHost

POLL_INTERVAL_MS = 100
UPLOAD_INTERVAL_MS = 0
"""While inputs are handed over: a piece whenever the event loop is idle (Qt's zero-interval timer)."""


_SHARED = {"host": None, "runners": set()}
"""The job host of this Slicer session and the runners using it (it stops when the last one closes)."""


def shared_host(runner) -> JobHost:
    """The session's one job host (in Slicer's temporary folder), with ``runner`` counted as its user."""
    if _SHARED["host"] is None:
        _SHARED["host"] = JobHost(temp_dir=slicer.app.temporaryPath)
    _SHARED["runners"].add(runner)
    return _SHARED["host"]


def release_shared_host(runner) -> None:
    """``runner`` no longer uses the host; the last one to go stops it (no process is left behind)."""
    _SHARED["runners"].discard(runner)
    if not _SHARED["runners"] and _SHARED["host"] is not None:
        _SHARED["host"].stop()
        _SHARED["host"] = None


class QtJobRunner:
    """One job at a time for a module widget, in the session's shared job process."""

    def __init__(self, progressBar, statusLabel=None) -> None:
        self.progressBar = progressBar
        self.statusLabel = statusLabel
        self.applyButton = None
        self.host = shared_host(self)
        self.job: Optional[HostJob] = None
        self._pending: Optional[tuple] = None  # (target, args, uploads) while inputs are handed over
        self._receiving = None  # the result being read, a piece per tick (``HostJob.result_pieces``)
        self._onDone: Optional[Callable[[Any], None]] = None
        self._applyText = ""
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._poll)
        if progressBar is not None:
            progressBar.setRange(0, 1000)
            progressBar.hide()

    @property
    def running(self) -> bool:
        return self.job is not None or self._pending is not None

    def start(self, button, target: str, args: tuple, onDone: Callable[[Any], None], uploads=()) -> None:
        """Run ``target`` (``"module:function"``) with ``args`` in the job process; ``button`` shows
        "Cancel" meanwhile and ``onDone(result)`` runs on the GUI thread when it succeeds. ``uploads``:
        iterators from ``JobHost.put_in_pieces`` for inputs ``args`` name as ``Stored``, advanced a
        step per tick before the job is submitted."""
        if self.running:
            raise RuntimeError("a job is already running")
        uploads = [iter(u) for u in uploads]
        if uploads:
            self._pending = (target, args, uploads)
            self._timer.setInterval(UPLOAD_INTERVAL_MS)
        else:
            self.job = self.host.submit(target, *args)
        self._onDone = onDone
        self.applyButton = button
        if button is not None:
            self._applyText = button.text
            button.text = "Cancel"
        if self.progressBar is not None:
            self.progressBar.setValue(0)
            self.progressBar.show()
        self._show(JobStatus(RUNNING, 0.0, "starting"))
        self._timer.start()

    def cancel(self) -> None:
        """Ask the job to stop; its process is ended if it has not stopped within the grace period."""
        if self._pending is not None:
            self._stop_uploads()
            self._finish()
            slicer.util.showStatusMessage("Cancelled.", 5000)
        elif self.job is not None:
            self.job.cancel()
            self._show(JobStatus(RUNNING, self.job.poll().fraction, "cancelling..."))

    def discard(self, message: str = "") -> None:
        """Forget the module's job now; its result is never delivered (a job that runs is ended with
        the process, the other modules' jobs go to the next one)."""
        if self.running:
            self._stop_uploads()
            if self.job is not None:
                self.job.abandon()
            self._finish()
            if message:
                slicer.util.showStatusMessage(message, 5000)

    def close(self) -> None:
        """Stop the timer and the job; the job process ends with the last runner (module cleanup, Slicer
        quitting)."""
        self.discard()
        self._timer.stop()
        release_shared_host(self)

    def _show(self, status: JobStatus) -> None:
        if self.progressBar is not None:
            self.progressBar.setValue(int(round(1000 * status.fraction)))
            self.progressBar.setFormat(f"{status.message} (%p%)")
        if self.statusLabel is not None:
            self.statusLabel.text = status.message

    def _stop_uploads(self) -> None:
        if self._pending is not None:
            for upload in self._pending[2]:
                upload.close()  # an unfinished input leaves nothing behind
            self._pending = None

    def _finish(self) -> None:
        if self._receiving is not None:
            self._receiving.close()  # the host removes the job's folder
            self._receiving = None
        self._timer.stop()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self.job = None
        if self.applyButton is not None:
            self.applyButton.text = self._applyText
        if self.progressBar is not None:
            self.progressBar.hide()

    def _upload_step(self) -> None:
        """One piece of the inputs being handed over; the job is submitted after the last."""
        target, args, uploads = self._pending
        for upload in uploads:
            if next(upload, StopIteration) is not StopIteration:
                self._show(JobStatus(RUNNING, 0.0, "handing the data to the job process"))
                return
        self._pending = None
        self._timer.setInterval(POLL_INTERVAL_MS)
        self.job = self.host.submit(target, *args)

    def _receive_step(self) -> None:
        """One piece of the result; after the last, ``onDone`` writes it into nodes."""
        onDone = self._onDone
        with slicer.util.tryWithErrorDisplay("Could not show the result.", waitCursor=True):
            try:
                piece = next(self._receiving)
            except BaseException:
                self._finish()
                raise
            if piece is None:
                return
            self._finish()
            onDone(piece[0])

    def _poll(self) -> None:
        if self._pending is not None:
            self._upload_step()
            return
        job = self.job
        if job is None:
            self._timer.stop()
            return
        if self._receiving is not None:
            self._receive_step()
            return
        status = job.poll()
        self._show(status)
        if not status.finished:
            return
        if status.state == DONE:  # the result comes a piece per tick, then goes into nodes
            self._receiving = job.result_pieces()
            self._timer.setInterval(UPLOAD_INTERVAL_MS)
            self._show(JobStatus(RUNNING, 1.0, "receiving the result"))
            return
        self._finish()
        if status.state == CANCELLED:
            slicer.util.showStatusMessage(status.message or "Cancelled.", 5000)
        else:
            logging.error(f"{status.error}\n{status.details}")
            slicer.util.errorDisplay(f"Failed: {status.error}", detailedText=status.details)
