"""Content hashes of volumes: what ``nodsynth serve``'s volume cache and the wire format name volumes by.

:func:`content_hash` hashes the decoded voxels (little-endian, C order) and the geometry (element
type, shape, spacing, origin, direction), never a file's bytes: the same CT read from a NIfTI or an
NRRD file, or handed over by Slicer, has one hash. SHA-256 of each 16 MiB piece in parallel threads,
then SHA-256 of the element type, shape, geometry and the pieces' digests: hashlib releases the GIL,
so a 128 MiB CT hashes in a fraction of a second.

:func:`cached_content_hash` remembers the hash per numpy array object (for as long as the object
lives): a client editing the same in-memory CT twice hashes it once. An array changed in place after
it was hashed keeps its old hash; the client's check of the server's result hash then fails and it
sends the volume whole (see :class:`nodsynth.engines.remote.RemoteEngine`), or call :func:`forget`.

:func:`read_hashed` reads a volume file with its hash remembered, hashing it only when the file's
(resolved path, size, modification time) is not in the client's file-hash store, a JSON file
(``NODSYNTH_HASH_CACHE``, default ``~/.cache/nodsynth/content-hashes.json``): a 128 MB CT edited again
and again, by one process or many, is hashed once. A file rewritten in place within the file
system's time resolution keeping its size is not seen; the server's result hash then does not check
and the volume is sent whole, as above. Folders (DICOM series) are hashed at every read.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .atomic import write_text_atomic
from ..volume import Volume
from .volume_files import read_volume

HASH_PIECE_BYTES = 16 << 20
HASH_PATTERN_LENGTH = 64
"""Hex digits of a content hash."""

MAX_FILE_HASHES = 4096
"""Entries the file-hash store keeps (the most recently written)."""

KEEP_PIECE_DIGESTS = 1024
"""Hashes whose pieces' digests are kept (the most recently computed; 32 bytes per 16 MiB piece)."""

_CACHE: dict[int, tuple[weakref.ref, tuple, str]] = {}
_PIECE_DIGESTS: OrderedDict[str, tuple[bytes, ...]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def little_endian(array: np.ndarray) -> np.ndarray:
    """``array`` in C order with a little-endian (or single-byte) element type."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array)


def is_content_hash(value: object) -> bool:
    """Whether ``value`` looks like a content hash (64 lower-case hex digits)."""
    return (isinstance(value, str) and len(value) == HASH_PATTERN_LENGTH
            and all(c in "0123456789abcdef" for c in value))


def content_hash(volume: Volume, like: str | None = None, boxes: Iterable[Sequence[int]] = ()) -> str:
    """SHA-256 based hash (64 hex digits) of ``volume``'s voxels and geometry (see the module docstring).

    ``like``, ``boxes``: the hash of a volume of the same shape and element type whose voxels equal
    these outside ``boxes`` (half-open ``(k0, k1, j0, j1, i0, i1)``), such as an edit's input: when
    its pieces' digests are still known (:data:`KEEP_PIECE_DIGESTS`), only the pieces overlapping the
    boxes are hashed again."""
    array = little_endian(volume.array)
    data = memoryview(array.reshape(-1).view(np.uint8))
    pieces = [data[start:start + HASH_PIECE_BYTES] for start in range(0, len(data), HASH_PIECE_BYTES)]
    with _CACHE_LOCK:
        known = _PIECE_DIGESTS.get(like) if like else None
    reuse = known is not None and len(known) == len(pieces)
    digests = list(known) if reuse else [None] * len(pieces)
    if reuse:
        for first, stop in _byte_spans(array, boxes):
            for index in range(first // HASH_PIECE_BYTES, -(-stop // HASH_PIECE_BYTES)):
                digests[index] = None
    todo = [index for index, digest in enumerate(digests) if digest is None]
    if len(todo) > 1:
        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
            for index, digest in zip(todo, pool.map(lambda n: hashlib.sha256(pieces[n]).digest(), todo)):
                digests[index] = digest
    else:
        for index in todo:
            digests[index] = hashlib.sha256(pieces[index]).digest()
    geometry = json.dumps([array.dtype.str, list(array.shape), volume.spacing.tolist(), volume.origin.tolist(),
                           volume.direction.reshape(-1).tolist()]).encode("utf-8")
    digest = hashlib.sha256(geometry + b"".join(digests)).hexdigest()
    with _CACHE_LOCK:
        _PIECE_DIGESTS[digest] = tuple(digests)
        _PIECE_DIGESTS.move_to_end(digest)
        while len(_PIECE_DIGESTS) > KEEP_PIECE_DIGESTS:
            _PIECE_DIGESTS.popitem(last=False)
    return digest


def _byte_spans(array: np.ndarray, boxes: Iterable[Sequence[int]]) -> Iterator[tuple[int, int]]:
    """Per box, the span of the array's bytes (C order) from its first voxel to its last, half-open."""
    rows, cols = array.shape[1], array.shape[2]
    for k0, k1, j0, j1, i0, i1 in boxes:
        first = ((k0 * rows + j0) * cols + i0) * array.itemsize
        yield first, (((k1 - 1) * rows + j1 - 1) * cols + i1) * array.itemsize


def _object_key(volume: Volume) -> tuple:
    """What must stay equal for a remembered hash to apply: the array's memory, layout, and the geometry."""
    array = volume.array
    return (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str,
            volume.spacing.tobytes(), volume.origin.tobytes(), volume.direction.tobytes())


def cached_content_hash(volume: Volume) -> str:
    """:func:`content_hash`, computed once per array object (see the module docstring)."""
    known = remembered_hash(volume)
    if known is None:
        known = content_hash(volume)
        remember(volume, known)
    return known


def remembered_hash(volume: Volume) -> str | None:
    """The hash remembered for this volume's array object, or ``None``."""
    with _CACHE_LOCK:
        entry = _CACHE.get(id(volume.array))
    if entry is None or entry[0]() is not volume.array or entry[1] != _object_key(volume):
        return None
    return entry[2]


def remember(volume: Volume, digest: str) -> None:
    """Remember ``digest`` as the content hash of ``volume``'s array object (e.g. a result whose hash
    the server sent and the client checked)."""
    array = volume.array
    key = id(array)
    try:
        ref = weakref.ref(array, lambda _ref, key=key: _drop(key, _ref))
    except TypeError:  # an object that cannot be weakly referenced is simply hashed each time
        return
    with _CACHE_LOCK:
        _CACHE[key] = (ref, _object_key(volume), digest)


def forget(volume: Volume) -> None:
    """Drop the remembered hash of ``volume``'s array (after changing it in place)."""
    with _CACHE_LOCK:
        _CACHE.pop(id(volume.array), None)


def _drop(key: int, ref: weakref.ref) -> None:
    with _CACHE_LOCK:
        if key in _CACHE and _CACHE[key][0] is ref:
            del _CACHE[key]


def file_hash_store() -> Path:
    """The client's file-hash store: ``NODSYNTH_HASH_CACHE`` or ``~/.cache/nodsynth/content-hashes.json``."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nodsynth" / "content-hashes.json"
    return Path(os.environ.get("NODSYNTH_HASH_CACHE") or default)


def _file_key(path: Path) -> str | None:
    """``resolved path|size|mtime in ns`` of a regular file; ``None`` for anything else."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}" if path.is_file() else None


def _load_store(store: Path) -> dict[str, str]:
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: start afresh
        return {}
    return {k: v for k, v in known.items() if is_content_hash(v)} if isinstance(known, dict) else {}


def read_hashed(path: str | os.PathLike, read: Callable[[str | os.PathLike], Volume] = read_volume) -> Volume:
    """``read(path)`` with its content hash remembered (:func:`remember`), from the file-hash store when
    the file is unchanged since it was hashed, else hashed now and stored (see the module docstring)."""
    path = Path(path)
    key, store = _file_key(path), file_hash_store()
    volume = read(path)
    known = _load_store(store) if key else {}
    digest = known.get(key) if key else None
    if digest is None:
        digest = content_hash(volume)
        if key is not None and _file_key(path) == key:  # not changed while it was read
            known.pop(key, None)
            known[key] = digest
            try:
                store.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(store, json.dumps(dict(list(known.items())[-MAX_FILE_HASHES:])), private=True)
            except OSError:  # a read-only home: the hash is still remembered for this process
                pass
    remember(volume, digest)
    return volume
