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
arrays), so a client's next edit of the same CT reads nothing from disk. A volume a client sends is
stored at once and checked against its hash in the background while its job runs
(:meth:`VolumeCache.put_unchecked`).
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


class VolumeCache:
    """Per-client content-addressed volumes on disk, with a memory tier (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, cap_bytes: int, keep_s: float, memory_bytes: int) -> None:
        self.root = Path(root)  # made by the first put
        self.cap_bytes, self.keep_s, self.memory_bytes = int(cap_bytes), float(keep_s), int(memory_bytes)
        self._memory: OrderedDict[tuple[str, str], Volume] = OrderedDict()
        self._lock = threading.RLock()
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="nodsynth-cache-check")

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
        with self._lock:
            volume = self._memory.get((owner, digest))
            if volume is not None:
                self._memory.move_to_end((owner, digest))
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
        """:meth:`put` a volume a client sent, then check in a background thread that ``digest`` is its
        content hash (a volume that does not match is deleted again): its job need not wait for that."""
        self.put(owner, digest, volume)
        self._checker.submit(self._check, owner, digest, volume)

    def _check(self, owner: str, digest: str, volume: Volume) -> None:
        if content_hash(volume) != digest:
            log.warning("a volume sent by %s does not have the content hash sent with it; deleted", owner)
            self.delete(owner, digest)

    def flush(self) -> None:
        """Wait until every volume given to :meth:`put_unchecked` so far is checked."""
        self._checker.submit(lambda: None).result()

    def put(self, owner: str, digest: str, volume: Volume) -> None:
        """Keep ``volume`` (whose content hash is ``digest``) for ``owner``; evicts beyond the byte cap."""
        path = self._path(owner, digest)
        self._remember(owner, digest, volume)
        if path.is_file():
            os.utime(path)
            return
        pieces = wire.encode_volume(volume, digest)
        if wire.message_size(pieces) > self.cap_bytes:
            return  # larger than the whole cache: kept in memory only
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
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
        """Forget one of the owner's volumes (or all of them); returns how many files were deleted."""
        with self._lock:
            for key in [k for k in self._memory if k[0] == owner and digest in (None, k[1])]:
                del self._memory[key]
            paths = [self._path(owner, digest)] if digest else list(self.folder(owner).glob(f"*{SUFFIX}"))
            deleted = 0
            for path in paths:
                if path.is_file():
                    path.unlink()
                    deleted += 1
            return deleted

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
            stale = [key for key in self._memory if not self._path(*key).is_file()]
            for key in stale:
                del self._memory[key]
        return deleted
