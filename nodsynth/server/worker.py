"""One worker thread per device: takes the oldest queued job, runs its engine, stores the result."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ..io import wire
from ..io.atomic import atomic_path
from ..io.changed_boxes import changed_boxes
from ..io.content_hash import content_hash
from ..engines.base import Engine, SynthesisResult
from ..errors import Cancelled, InputError, NodsynthError
from ..volume import Volume
from .cache import VolumeCache
from .jobs import CANCELLED, DONE, FAILED, Job, JobStore

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 60.0


class Worker(threading.Thread):
    """Runs jobs from ``store`` one at a time with the engines made for its device."""

    def __init__(self, store: JobStore, engines: dict[str, Engine], device: str, cache: VolumeCache,
                 poll_s: float = 1.0) -> None:
        super().__init__(name=f"nodsynth-worker-{device}", daemon=True)
        self.store, self.engines, self.device, self.poll_s = store, engines, device, poll_s
        self.cache = cache
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
                    self.cache.expire()
                job = self.store.next_job(timeout_s=self.poll_s)
            except OSError:  # e.g. the jobs disk is full: keep serving, try again shortly
                log.exception("job store error; retrying in %.0f s", self.poll_s)
                self._stop_event.wait(self.poll_s)
                continue
            if job is not None:
                self.run_job(job)

    def run_job(self, job: Job) -> None:
        """Run one job to a finished state; never raises."""
        self.cache.hold(job.id)  # cache writes wait until the client has the result (app: delete)
        try:
            result_pieces, to_cache = self._compute(job, lambda f, m: self.store.report(job, f, m))
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
        else:
            self._keep_results(job, to_cache)
        finally:
            if job.state != DONE:
                self.cache.release(job.id)

    def _keep_results(self, job: Job, to_cache: dict[str, Volume]) -> None:
        """Cache a done job's result volumes (written when idle): the client may edit this result next."""
        for digest, volume in to_cache.items():
            self.cache.put_later(job.owner, digest, volume)

    def _resolver(self, owner: str):
        def resolve(digest: str) -> Volume:
            volume = self.cache.get(owner, digest)
            if volume is None:
                raise InputError(f"input volume {digest[:12]}... is no longer in the server's cache (evicted "
                                 "or deleted since the job was queued); submit the job again")
            return volume
        return resolve

    def _compute(self, job: Job, progress: Callable[[float, str], None]) -> tuple[list[bytes], dict[str, Volume]]:
        """The result message of the job, and the result volumes to keep in the cache by content hash."""
        decoded, job.decoded = job.decoded, None
        if decoded is None:  # queued before a restart: read back from disk
            decoded = wire.decode_request(self.store.request_path(job).read_bytes(), resolve=self._resolver(job.owner))
        engine = self.engines[decoded.engine]
        job.cancel.raise_if_cancelled()
        result = getattr(engine, decoded.operation)(decoded.request, progress=progress, cancel=job.cancel)
        job.cancel.raise_if_cancelled()
        bases = wire.request_volumes(decoded.request)
        changes = patchable_changes(result, bases) if decoded.hashes else {}
        hashes = {name: content_hash(result.volumes[name], like=decoded.hashes.get(name), boxes=boxes)
                  for name, boxes in changes.items()}
        pieces = wire.encode_result(result, codec=decoded.result_codec, bases=bases, hashes=hashes, boxes=changes)
        return pieces, {digest: result.volumes[name] for name, digest in hashes.items()}


def patchable_changes(result: SynthesisResult, bases: dict[str, Volume]) -> dict[str, list]:
    """The changed boxes of the result volumes that may travel as patches of a same-named request volume
    of the same shape and type (a client that hashes its inputs holds those), by name."""
    return {name: changed_boxes(bases[name].array, volume.array) for name, volume in result.volumes.items()
            if name in bases and bases[name].array.shape == volume.array.shape
            and bases[name].array.dtype == volume.array.dtype}
