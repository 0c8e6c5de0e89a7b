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
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .volume import Volume

HASH_PIECE_BYTES = 16 << 20
HASH_PATTERN_LENGTH = 64
"""Hex digits of a content hash."""

_CACHE: dict[int, tuple[weakref.ref, tuple, str]] = {}
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


def content_hash(volume: Volume) -> str:
    """SHA-256 based hash (64 hex digits) of ``volume``'s voxels and geometry (see the module docstring)."""
    array = little_endian(volume.array)
    data = memoryview(array.reshape(-1).view(np.uint8))
    pieces = [data[start:start + HASH_PIECE_BYTES] for start in range(0, len(data), HASH_PIECE_BYTES)]
    if len(pieces) > 1:
        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
            digests = list(pool.map(lambda piece: hashlib.sha256(piece).digest(), pieces))
    else:
        digests = [hashlib.sha256(piece).digest() for piece in pieces]
    geometry = json.dumps([array.dtype.str, list(array.shape), volume.spacing.tolist(), volume.origin.tolist(),
                           volume.direction.reshape(-1).tolist()]).encode("utf-8")
    return hashlib.sha256(geometry + b"".join(digests)).hexdigest()


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
