"""One worker thread per device: takes the oldest queued job, runs its engine, stores the result."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .. import wire
from ..atomic import atomic_path
from ..engines.base import Engine
from ..errors import Cancelled, NodsynthError
from .jobs import CANCELLED, DONE, FAILED, Job, JobStore

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 60.0


class Worker(threading.Thread):
    """Runs jobs from ``store`` one at a time with the engines made for its device."""

    def __init__(self, store: JobStore, engines: dict[str, Engine], device: str,
                 poll_s: float = 1.0) -> None:
        super().__init__(name=f"nodsynth-worker-{device}", daemon=True)
        self.store, self.engines, self.device, self.poll_s = store, engines, device, poll_s
        self._stop_event = threading.Event()
        self._last_expire = 0.0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                if time.monotonic() - self._last_expire > EXPIRE_EVERY_S:
                    self._last_expire = time.monotonic()
                    self.store.expire()
                job = self.store.next_job(timeout_s=self.poll_s)
            except OSError:  # e.g. the jobs disk is full: keep serving, try again shortly
                log.exception("job store error; retrying in %.0f s", self.poll_s)
                self._stop_event.wait(self.poll_s)
                continue
            if job is not None:
                self.run_job(job)

    def run_job(self, job: Job) -> None:
        """Run one job to a finished state; never raises."""
        try:
            result_pieces = self._compute(job, lambda f, m: self.store.report(job, f, m))
            with atomic_path(self.store.result_path(job), private=True) as tmp, open(tmp, "wb") as handle:
                for piece in result_pieces:
                    handle.write(piece)
            self.store.finish(job, DONE, "done")
        except Cancelled:
            self.store.finish(job, CANCELLED, "cancelled while running")
        except NodsynthError as exc:
            self.store.finish(job, FAILED, "failed", str(exc), type(exc).__name__)
        except Exception as exc:  # the worker must survive any engine failure (out of memory, bugs)
            log.exception("job %s failed", job.id)
            self.store.finish(job, FAILED, "failed", f"server error: {type(exc).__name__}: {exc}",
                              "ServerError")

    def _compute(self, job: Job, progress: Callable[[float, str], None]) -> list[bytes]:
        data = self.store.request_path(job).read_bytes()
        decoded = wire.decode_request(data)
        del data
        engine = self.engines[decoded.engine]
        job.cancel.raise_if_cancelled()
        result = getattr(engine, decoded.operation)(decoded.request, progress=progress, cancel=job.cancel)
        job.cancel.raise_if_cancelled()
        return wire.encode_result(result)
