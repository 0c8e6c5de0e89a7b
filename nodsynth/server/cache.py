"""The server's volume cache: the volumes each client sent (and the results it got), by content hash.

A client names its volumes by :func:`~nodsynth.io.content_hash.content_hash`; the server keeps each
client's (token name's) volumes in a folder of its own, so one client can never reach another's::

    JOBS_DIR/cache/<sha256 of the token name, 32 hex digits>/<content hash>.vol

A ``.vol`` file is a :mod:`nodsynth.io.wire` message holding one volume (codec ``none``), written
atomically. Reading a file recomputes the content hash: a corrupted or truncated file is deleted and
counts as absent, so the client is asked to send the volume again. Files survive a restart. Each
client's folder holds at most ``cap_bytes``: the least recently used files (by modification time,
refreshed on every use) go first; files unused for ``keep_s`` (``nodsynth serve --keep-hours``)
expire. Recently used volumes are also held in memory (up to ``memory_bytes`` in all, read-only
arrays), so a client's next edit of the same CT reads nothing from disk.

A volume a client sends (:meth:`VolumeCache.put_unchecked`) and a job's result (:meth:`VolumeCache.put_later`)
are held in memory at once and written by a background thread **when no job is on its client's critical
path**: from its start until its client deletes it, having fetched its result (:meth:`VolumeCache.hold`,
:meth:`VolumeCache.release`; a hold counts for :data:`DEFER_MAX_S` at most, and no write waits longer than
that): a job and its download wait neither for the write of a 256 MB CT nor compete with it, and the disk
holds it a few seconds later. A sent volume is checked against its hash just before its write (one that
does not match is dropped). The job itself never depends on a deferred write: its request file holds the
volumes sent with it, and a volume it names by hash is written before it is queued
(:meth:`VolumeCache.persist`), so a server killed meanwhile loses cache files, never a job; the client's
next request is then asked for the volume whole. ``close`` (server shutdown) writes what is pending.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from ..io import wire
from ..io.atomic import atomic_path
from ..io.content_hash import content_hash, is_content_hash
from ..volume import Volume

log = logging.getLogger(__name__)

SUFFIX = ".vol"
CACHE_FOLDER = "cache"
"""The cache's folder inside the jobs folder (not a job id, so the job store ignores it)."""
DEFER_MAX_S = 30.0
"""Longest wait of a deferred cache write, and longest a job's hold counts (a busy server still writes)."""


class VolumeCache:
    """Per-client content-addressed volumes on disk, with a memory tier (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, cap_bytes: int, keep_s: float, memory_bytes: int) -> None:
        self.root = Path(root)  # made by the first put
        self.cap_bytes, self.keep_s, self.memory_bytes = int(cap_bytes), float(keep_s), int(memory_bytes)
        self._memory: OrderedDict[tuple[str, str], Volume] = OrderedDict()
        self._pending: dict[tuple[str, str], tuple[Volume, bool]] = {}  # deferred writes: (volume, check first)
        self._lock = threading.RLock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="nodsynth-cache-write")
        self._jobs = threading.Condition()
        self._holds: dict[str, float] = {}  # job id -> monotonic time it was held
        self._closing = False

    def folder(self, owner: str) -> Path:
        return self.root / hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]

    def _path(self, owner: str, digest: str) -> Path:
        if not is_content_hash(digest):  # never a path from what a client sent
            raise ValueError(f"not a content hash: {digest!r}")
        return self.folder(owner) / f"{digest}{SUFFIX}"

    # ------------------------------------------------------------------------------------ memory
    def _remember(self, owner: str, digest: str, volume: Volume) -> None:
        volume.array.flags.writeable = False  # shared by every job that names it
        with self._lock:
            self._memory[(owner, digest)] = volume
            self._memory.move_to_end((owner, digest))
            total = sum(v.array.nbytes for v in self._memory.values())
            while total > self.memory_bytes and self._memory:
                _, dropped = self._memory.popitem(last=False)
                total -= dropped.array.nbytes

    # ---------------------------------------------------------------------------------- public
    def get(self, owner: str, digest: str) -> Optional[Volume]:
        """The owner's volume with this content hash, or ``None`` (never held, evicted, or corrupt)."""
        path = self._path(owner, digest)
        key = (owner, digest)
        with self._lock:
            volume = self._memory.get(key)
            if volume is not None:
                self._memory.move_to_end(key)
            elif key in self._pending:
                volume = self._pending[key][0]
        if volume is None:
            volume = self._read(path, digest)
            if volume is None:
                return None
            self._remember(owner, digest, volume)
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        return volume

    def _read(self, path: Path, digest: str) -> Optional[Volume]:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            volume, stored = wire.decode_volume(data)
            valid = stored == digest and content_hash(volume) == digest
        except wire.WireError:
            valid = False
        if not valid:
            log.warning("cached volume %s is corrupt; deleted (the client will be asked to send it again)", path)
            path.unlink(missing_ok=True)
            return None
        return volume

    def put_unchecked(self, owner: str, digest: str, volume: Volume) -> None:
        """Keep a volume a client sent under the hash it sent: in memory now, on disk when the workers are
        idle, after checking that ``digest`` is its content hash (module docstring)."""
        self._defer(owner, digest, volume, check=True)

    def put_later(self, owner: str, digest: str, volume: Volume) -> None:
        """Keep a volume whose content hash this server computed: in memory now, on disk when idle."""
        self._defer(owner, digest, volume, check=False)

    def _defer(self, owner: str, digest: str, volume: Volume, check: bool) -> None:
        self._path(owner, digest)  # a content hash, or ValueError
        with self._lock:
            self._remember(owner, digest, volume)
            self._pending[(owner, digest)] = (volume, check)
        try:
            self._writer.submit(self._write_when_idle, owner, digest)
        except RuntimeError:  # closed: the server is stopping, write it now
            self.persist(owner, digest)

    def _write_when_idle(self, owner: str, digest: str) -> None:
        self._wait_until_idle(DEFER_MAX_S)
        self.persist(owner, digest)

    def persist(self, owner: str, digest: str) -> None:
        """Write the owner's volume now if its write was deferred (a queued job that names it must find it
        after a restart); checked first if it was sent. Nothing to do for one on disk or unknown."""
        with self._lock:
            volume, check = self._pending.get((owner, digest), (None, False))
        if volume is None:
            return
        try:
            if check and content_hash(volume) != digest:
                log.warning("a volume sent by %s does not have the content hash sent with it; dropped", owner)
                self.delete(owner, digest)
                return
            with self._lock:
                if self._pending.pop((owner, digest), None) is not None:
                    self._write(self._path(owner, digest), volume, digest)
        except OSError:
            log.exception("could not write the cached volume %s of %s", digest[:12], owner)

    def hold(self, job_id: str) -> None:
        """A job started: deferred writes wait until :meth:`release` (module docstring)."""
        with self._jobs:
            self._holds[job_id] = time.monotonic()

    def release(self, job_id: str) -> None:
        """The job's client has its result and deleted the job (or the job ended without a result)."""
        with self._jobs:
            self._holds.pop(job_id, None)
            self._jobs.notify_all()

    def _held(self, now_s: float) -> bool:
        for job_id in [j for j, since in self._holds.items() if now_s - since > DEFER_MAX_S]:
            del self._holds[job_id]  # never fetched, or a long job: writes go on
        return bool(self._holds)

    def _wait_until_idle(self, max_wait_s: float) -> None:
        deadline = time.monotonic() + max_wait_s
        with self._jobs:
            while not self._closing and self._held(time.monotonic()) and time.monotonic() < deadline:
                self._jobs.wait(min(deadline - time.monotonic(), 1.0))

    def pending_writes(self) -> int:
        """How many volumes wait for their deferred write (``/v1/health``: has the server's work settled)."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        """Wait until every volume deferred so far is checked and written (or dropped)."""
        self._writer.submit(lambda: None).result()

    def close(self) -> None:
        """Write what is pending now, without waiting for idle workers (server shutdown)."""
        with self._jobs:
            self._closing = True
            self._jobs.notify_all()
        self._writer.shutdown(wait=True)

    def _write(self, path: Path, volume: Volume, digest: str) -> None:
        """Write one cache file (atomically; lock held), then evict beyond the byte cap."""
        if path.is_file():
            os.utime(path)
            return
        pieces = wire.encode_volume(volume, digest)
        if wire.message_size(pieces) > self.cap_bytes:
            return  # larger than the whole cache: kept in memory only
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, private=True) as tmp, open(tmp, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
        self._evict(path.parent, keep=path)

    def _evict(self, folder: Path, keep: Path) -> None:
        """Delete the least recently used files of ``folder`` until it holds at most ``cap_bytes``."""
        files = []
        for path in folder.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.cap_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

    def delete(self, owner: str, digest: Optional[str] = None) -> int:
        """Forget one of the owner's volumes (or all of them); returns how many it held (on disk or
        waiting for their write)."""
        with self._lock:
            forgotten = {key[1] for key in self._pending if key[0] == owner and digest in (None, key[1])}
            for held in (self._memory, self._pending):
                for key in [k for k in held if k[0] == owner and digest in (None, k[1])]:
                    del held[key]
            paths = [self._path(owner, digest)] if digest else list(self.folder(owner).glob(f"*{SUFFIX}"))
            for path in paths:
                if path.is_file():
                    path.unlink()
                    forgotten.add(path.stem)
            return len(forgotten)

    def expire(self, now_s: Optional[float] = None) -> int:
        """Delete files unused for ``keep_s``; returns how many."""
        cutoff = (time.time() if now_s is None else now_s) - self.keep_s
        deleted = 0
        with self._lock:
            for path in self.root.glob(f"*/*{SUFFIX}"):
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        deleted += 1
                except OSError:
                    continue
            stale = [key for key in self._memory if key not in self._pending and not self._path(*key).is_file()]
            for key in stale:
                del self._memory[key]
        return deleted
