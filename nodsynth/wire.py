"""The wire format of ``nodsynth serve``: engine requests and results as one compressed binary message.

Layout of a message (all integers little-endian)::

    offset  size  what
    0       8     magic b"NODSYNTH"
    8       2     wire version (uint16), currently WIRE_VERSION = 1
    10      4     header length H in bytes (uint32)
    14      H     header: UTF-8 JSON object (below)
    14+H    ...   the arrays' payloads, back to back, in the order the header lists them

Header::

    {"kind": "request" | "result",
     "operation": "twin" | "inpaint" | "edit",        # request only
     "engine": "classic",                              # engine name
     "parameters": {"seed": 0, "steps": 30, ...},      # the request's plain fields (request only)
     "seconds": 1.2, "info": {...},                    # result only
     "arrays": [{"name": "ct", "kind": "volume" | "array", "dtype": "<i2",
                 "shape": [k, j, i],                   # numpy shape (volumes are indexed k, j, i)
                 "spacing": [..3], "origin": [..3], "direction": [..9],   # volumes: LPS mm, i j k order
                 "codec": "shuffle-zlib", "chunks": [n1, n2, ...]}]}     # compressed chunk sizes

Payload codec ``shuffle-zlib``: the array's bytes in C order are byte-shuffled (all first bytes of
every element, then all second bytes, ...; this groups the slowly varying high bytes of CT values and
roughly halves what zlib has to store), cut into chunks of ``CHUNK_BYTES`` and each chunk compressed
with zlib independently (so chunks compress in parallel; a chunk that looks incompressible, such as
the noisy low bytes of CT values, is written as zlib "stored" blocks, level 0). Geometry travels as JSON numbers, which
Python writes and reads back exactly (shortest round-trip repr), so volumes round-trip bit-exactly.

A request maps one-to-one onto the dataclasses of :mod:`nodsynth.engines.base`: ``Volume`` fields
become ``volume`` arrays, numpy fields (``histogram``, ``initial_noise``) become ``array`` arrays and
every other field is a JSON parameter (tuples travel as lists and come back as tuples).
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .engines.base import (MAX_BYTES_PER_VOXEL, MAX_VOLUME_VOXELS, EditRequest, InpaintRequest, SynthesisResult,
                           TwinRequest)
from .errors import InputError
from .volume import Volume

MAGIC = b"NODSYNTH"
WIRE_VERSION = 1
CODEC = "shuffle-zlib"
CHUNK_BYTES = 4 << 20
"""Uncompressed bytes per independently compressed chunk (4 MiB)."""
SAMPLE_BYTES = 64 << 10
SAMPLE_PARTS = 16
"""A chunk's compressibility is estimated from SAMPLE_PARTS pieces at pseudo-random (seeded, so
deterministic) offsets, SAMPLE_BYTES in all: regular offsets would hit the same spot of every slice."""
STORE_RATIO = 0.8
"""A chunk whose sample compresses to more than this fraction is stored uncompressed: zlib
needs about a second per 64 MB of such noise-like bytes to save a fifth of them, which a link of
100 Mbit/s or faster sends quicker."""
MAX_HEADER_BYTES = 4 << 20
DEFAULT_MAX_RAW_BYTES = MAX_VOLUME_VOXELS * MAX_BYTES_PER_VOXEL
"""Cap on the decompressed size of all arrays of one message (2 GiB): the largest request the engines
accept. With the per-array cap of :data:`~nodsynth.engines.base.MAX_VOLUME_VOXELS` it is checked on the
header, before anything is allocated, so a zip bomb costs the receiver no more than a real request."""

_PREFIX = struct.Struct("<8sHI")
_DTYPES = {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"}
"""Element types a message may carry, as little-endian numpy type strings."""

REQUEST_TYPES: dict[str, type] = {"twin": TwinRequest, "inpaint": InpaintRequest, "edit": EditRequest}
"""operation name -> request dataclass."""


class WireError(InputError):
    """A message is not a valid nodsynth wire message (bad magic, unknown version, corrupt payload)."""


@dataclass
class WireRequest:
    """A decoded request message: which operation on which engine, and the request dataclass."""

    operation: str
    engine: str
    request: Any


# ------------------------------------------------------------------------------------------ arrays
def _wire_dtype(array: np.ndarray) -> np.dtype:
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype.str not in _DTYPES:
        raise InputError(f"cannot send arrays of type {array.dtype} (supported: bool, integers, float16/32/64)")
    return dtype


def _shuffle(array: np.ndarray) -> np.ndarray:
    """Bytes of ``array`` (C order) regrouped by byte position: shape ``(itemsize, n)`` uint8."""
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(-1, array.dtype.itemsize)
    planes = np.empty((array.dtype.itemsize, raw.shape[0]), np.uint8)
    for byte in range(array.dtype.itemsize):  # one plane at a time: much faster than a transposed copy
        planes[byte] = raw[:, byte]
    return planes


def _pool_size() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _deflate(piece: memoryview, level: int) -> bytes:
    """zlib-compress one chunk; noise-like chunks (e.g. the low bytes of CT values), for which a
    sample gains under 20 % (:data:`STORE_RATIO`), are stored (zlib level 0), many times faster."""
    part = SAMPLE_BYTES // SAMPLE_PARTS
    starts = np.random.default_rng(len(piece)).integers(0, max(len(piece) - part, 1), SAMPLE_PARTS)
    sample = b"".join(piece[start:start + part] for start in np.sort(starts))
    if len(zlib.compress(sample, level)) > STORE_RATIO * len(sample):
        level = 0
    return zlib.compress(piece, level)


def _compress(array: np.ndarray, level: int) -> list[bytes]:
    buffer = memoryview(_shuffle(array)).cast("B")
    pieces = [buffer[start:start + CHUNK_BYTES] for start in range(0, len(buffer), CHUNK_BYTES)]
    if len(pieces) <= 1:
        return [_deflate(piece, level) for piece in pieces]
    with ThreadPoolExecutor(_pool_size()) as pool:  # zlib releases the GIL
        return list(pool.map(lambda piece: _deflate(piece, level), pieces))


def _inflate(chunk: bytes, expected: int) -> bytes:
    """One chunk's bytes; never more than ``expected`` (the size the header states) is inflated."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(chunk, expected)
    except zlib.error as exc:
        raise WireError(f"corrupt array payload ({exc})") from exc
    if len(data) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise WireError("corrupt array payload (a chunk does not decompress to its stated size)")
    return data


def _decompress(chunks: list[bytes], dtype: np.dtype, count: int) -> np.ndarray:
    """Inverse of :func:`_compress`: ``count`` elements of ``dtype``. Each chunk is inflated and put in
    its place in the output at once (undoing the byte shuffle), so decoding holds the array plus one
    chunk per thread, never a second copy of the array."""
    out = np.empty(count, dtype)
    out_bytes = out.view(np.uint8).reshape(count, dtype.itemsize)
    nbytes = count * dtype.itemsize
    sizes = [min(CHUNK_BYTES, nbytes - start) for start in range(0, nbytes, CHUNK_BYTES)]
    if len(sizes) != len(chunks):
        raise WireError(f"array payload has {len(chunks)} chunks, its size needs {len(sizes)}")

    def place(index: int) -> None:
        data = np.frombuffer(_inflate(chunks[index], sizes[index]), np.uint8)
        position = index * CHUNK_BYTES  # in the shuffled bytes: plane (byte number) by plane
        while len(data):
            plane, element = divmod(position, count)
            n = min(len(data), count - element)
            out_bytes[element:element + n, plane] = data[:n]
            data, position = data[n:], position + n

    if len(chunks) <= 1:
        for index in range(len(chunks)):
            place(index)
    else:
        with ThreadPoolExecutor(_pool_size()) as pool:  # zlib releases the GIL
            list(pool.map(place, range(len(chunks))))
    return out


def _array_entry(name: str, value: Any, level: int) -> tuple[dict, list[bytes]]:
    """Header entry and compressed chunks of one Volume or numpy array."""
    if isinstance(value, Volume):
        array = value.array
        entry = {"name": name, "kind": "volume", "spacing": value.spacing.tolist(),
                 "origin": value.origin.tolist(), "direction": value.direction.reshape(-1).tolist()}
    else:
        array = _to_numpy(value)
        entry = {"name": name, "kind": "array"}
    dtype = _wire_dtype(array)
    array = array.astype(dtype, copy=False)
    chunks = _compress(array, level)
    entry.update(dtype=dtype.str, shape=list(array.shape), codec=CODEC, chunks=[len(c) for c in chunks])
    return entry, chunks


def _to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array or a (CPU or GPU) torch tensor."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise InputError(f"cannot send a {type(value).__name__} as an array")
    return value


def _entry_value(entry: dict, chunks: list[bytes]) -> Any:
    dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
    array = _decompress(chunks, dtype, int(np.prod(shape, dtype=np.int64))).reshape(shape)
    if entry["kind"] == "array":
        return array
    return Volume(array, entry["spacing"], entry["origin"], np.asarray(entry["direction"]).reshape(3, 3))


def _check_entry(entry: Any) -> int:
    """Validate one header array entry; return its uncompressed size in bytes."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise WireError("malformed array entry in the message header")
    name = entry["name"]
    if entry.get("kind") not in ("volume", "array") or entry.get("codec") != CODEC:
        raise WireError(f"array {name!r}: unknown kind {entry.get('kind')!r} or codec {entry.get('codec')!r}")
    if entry.get("dtype") not in _DTYPES:
        raise WireError(f"array {name!r}: unsupported element type {entry.get('dtype')!r}")
    shape, chunks = entry.get("shape"), entry.get("chunks")
    if (not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape)
            or not isinstance(chunks, list) or not all(isinstance(n, int) and n >= 0 for n in chunks)):
        raise WireError(f"array {name!r}: malformed shape or chunk list")
    if entry["kind"] == "volume":
        if len(shape) != 3:
            raise WireError(f"volume {name!r} must be 3-D, got shape {shape}")
        for key, size in (("spacing", 3), ("origin", 3), ("direction", 9)):
            values = entry.get(key)
            if not isinstance(values, list) or len(values) != size or not all(
                    isinstance(v, (int, float)) for v in values):
                raise WireError(f"volume {name!r}: {key} must be {size} numbers")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > MAX_VOLUME_VOXELS:
        raise WireError(f"array {name!r} has {voxels} elements ({' x '.join(map(str, shape))}), over the limit "
                        f"of {MAX_VOLUME_VOXELS} voxels, the largest volume the engines accept")
    return voxels * np.dtype(entry["dtype"]).itemsize


# ----------------------------------------------------------------------------------------- messages
def _pack(header: dict, named_arrays: Iterable[tuple[str, Any]], level: int) -> list[bytes]:
    """Message as a list of byte pieces (prefix+header first); join them or stream them as they are."""
    entries, payload = [], []
    for name, value in named_arrays:
        entry, chunks = _array_entry(name, value, level)
        entries.append(entry)
        payload.extend(chunks)
    header = dict(header, arrays=entries)
    head = json.dumps(header, separators=(",", ":"), allow_nan=False, default=_json_default).encode("utf-8")
    return [_PREFIX.pack(MAGIC, WIRE_VERSION, len(head)) + head] + payload


def _json_default(value: Any) -> Any:
    """JSON for numpy scalars and small arrays found in parameters or result info."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def read_header(data: bytes | memoryview) -> tuple[dict, int]:
    """Parse the prefix and JSON header; return the header and the payload's start offset.

    Raises :class:`WireError` for a non-nodsynth message or a wire version this build cannot read.
    """
    data = memoryview(data)
    if len(data) < _PREFIX.size or bytes(data[:8]) != MAGIC:
        raise WireError("not a nodsynth wire message (bad magic bytes)")
    _, version, head_len = _PREFIX.unpack(bytes(data[:_PREFIX.size]))
    if version != WIRE_VERSION:
        raise WireError(f"wire format version {version} is not supported: this nodsynth reads version "
                        f"{WIRE_VERSION}; install the same nodsynth version on client and server")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(data):
        raise WireError("truncated or oversized message header")
    try:
        header = json.loads(bytes(data[_PREFIX.size:_PREFIX.size + head_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"message header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("message header must be a JSON object with an 'arrays' list")
    return header, _PREFIX.size + head_len


def _unpack(data: bytes | memoryview, max_raw_bytes: int) -> tuple[dict, dict[str, Any]]:
    header, offset = read_header(data)
    data = memoryview(data)
    raw_total = sum(_check_entry(entry) for entry in header["arrays"])
    if raw_total > max_raw_bytes:
        raise WireError(f"message expands to {raw_total / 2**20:.0f} MiB, over the limit of "
                        f"{max_raw_bytes / 2**20:.0f} MiB")
    values: dict[str, Any] = {}
    for entry in header["arrays"]:
        chunks = []
        for size in entry["chunks"]:
            if offset + size > len(data):
                raise WireError(f"message is truncated inside array {entry['name']!r}")
            chunks.append(data[offset:offset + size])
            offset += size
        if entry["name"] in values:
            raise WireError(f"array {entry['name']!r} appears twice")
        values[entry["name"]] = _entry_value(entry, chunks)
    if offset != len(data):
        raise WireError(f"{len(data) - offset} unexpected bytes after the last array")
    return header, values


def _is_array_value(value: Any) -> bool:
    return isinstance(value, (Volume, np.ndarray)) or (hasattr(value, "detach") and hasattr(value, "cpu"))


def _from_json(value: Any) -> Any:
    """JSON lists back to the tuples the request dataclasses use."""
    return tuple(_from_json(v) for v in value) if isinstance(value, list) else value


def encode_request(operation: str, engine: str, request: Any, level: int = 1) -> list[bytes]:
    """A request dataclass -> message pieces (``b"".join`` them or stream them)."""
    expected = REQUEST_TYPES.get(operation)
    if expected is None or not isinstance(request, expected):
        raise InputError(f"operation {operation!r} needs a {getattr(expected, '__name__', 'known request')}, "
                         f"got {type(request).__name__}")
    params, arrays = {}, []
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if _is_array_value(value):
            arrays.append((f.name, value))
        else:
            params[f.name] = value
    header = {"kind": "request", "operation": operation, "engine": engine, "parameters": params}
    return _pack(header, arrays, level)


def decode_request(data: bytes | memoryview, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES) -> WireRequest:
    """Message -> :class:`WireRequest`; raises :class:`InputError` naming what is wrong."""
    header, values = _unpack(data, max_raw_bytes)
    if header.get("kind") != "request":
        raise WireError(f"expected a request message, got {header.get('kind')!r}")
    operation, engine = header.get("operation"), header.get("engine")
    if operation not in REQUEST_TYPES:
        raise InputError(f"unknown operation {operation!r}; use one of {', '.join(REQUEST_TYPES)}")
    if not isinstance(engine, str) or not engine:
        raise InputError("the request names no engine")
    params = header.get("parameters")
    if not isinstance(params, dict):
        raise WireError("request parameters must be a JSON object")
    request_type = REQUEST_TYPES[operation]
    known = {f.name for f in dataclasses.fields(request_type)}
    unknown = sorted((set(params) | set(values)) - known)
    if unknown:
        raise InputError(f"{operation} requests have no field(s) {', '.join(unknown)}; "
                         "client and server nodsynth versions may differ")
    kwargs = {name: _from_json(value) for name, value in params.items()}
    kwargs.update(values)
    try:
        request = request_type(**kwargs)
    except TypeError as exc:
        raise InputError(f"invalid {operation} request: {exc}") from exc
    return WireRequest(operation, engine, request)


def encode_result(result: SynthesisResult, level: int = 1) -> list[bytes]:
    """A :class:`SynthesisResult` -> message pieces."""
    header = {"kind": "result", "engine": result.engine, "seconds": float(result.seconds),
              "info": result.info}
    return _pack(header, result.volumes.items(), level)


def decode_result(data: bytes | memoryview, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES) -> SynthesisResult:
    """Message -> :class:`SynthesisResult` (volumes keep their names, e.g. ``"ct"``)."""
    header, values = _unpack(data, max_raw_bytes)
    if header.get("kind") != "result":
        raise WireError(f"expected a result message, got {header.get('kind')!r}")
    info = header.get("info") if isinstance(header.get("info"), dict) else {}
    return SynthesisResult(volumes=values, engine=str(header.get("engine", "")),
                           seconds=float(header.get("seconds", 0.0)), info=info)


def request_volumes(request: Any) -> dict[str, Volume]:
    """The Volume fields of a request dataclass that are set, by field name."""
    return {f.name: getattr(request, f.name) for f in dataclasses.fields(request)
            if isinstance(getattr(request, f.name), Volume)}


def join(pieces: Iterable[bytes]) -> bytes:
    """One bytes object from message pieces."""
    return b"".join(pieces)


def message_size(pieces: Iterable[bytes]) -> int:
    """Total bytes of a message given as pieces."""
    return sum(len(p) for p in pieces)

