"""The wire format of ``nodsynth serve``: engine requests and results as one compressed binary message.

Layout of a message (all integers little-endian)::

    offset  size  what
    0       8     magic b"NODSYNTH"
    8       2     wire version (uint16), currently WIRE_VERSION = 3
    10      4     header length H in bytes (uint32)
    14      H     header: UTF-8 JSON object (below)
    14+H    ...   the arrays' payloads, back to back, in the order the header lists them: each array's
                  chunks, each chunk as its length in bytes (uint32) and its bytes

Header::

    {"kind": "request" | "result",
     "operation": "twin" | "inpaint" | "edit",        # request only
     "engine": "classic",                              # engine name
     "parameters": {"seed": 0, "steps": 30, ...},      # the request's plain fields (request only)
     "result_codec": "shuffle-zstd",                   # request only: the codec the result is asked in
     "seconds": 1.2, "info": {...},                    # result only
     "arrays": [{"name": "ct", "kind": "volume" | "array", "dtype": "<i2",
                 "shape": [k, j, i],                   # numpy shape (volumes are indexed k, j, i)
                 "spacing": [..3], "origin": [..3], "direction": [..9],   # volumes: LPS mm, i j k order
                 "hash": "<64 hex>",                   # volumes, optional: content_hash of the volume
                 "codec": "shuffle-zlib", "chunks": n},    # number of chunks (one per CHUNK_BYTES)
                {"name": "ct", "kind": "ref", "hash": "<64 hex>"},       # a volume the server holds: no payload
                {"name": "ct", "kind": "patch", "base": "ct", "hash": "<64 hex>",  # see below
                 "volume_shape": [k, j, i], "boxes": [[k0, k1, j0, j1, i0, i1], ...], "spacing": ...,
                 "dtype": "<i2", "shape": [n], "codec": ..., "chunks": n}]}

A ``ref`` names a volume by its :func:`content_hash` (of the decoded array and its geometry, not of any
file): the server answers ``409`` with the hashes it does not hold, and the client sends those whole.
A ``patch`` is a result volume on the grid of the request volume ``base``, which the client holds: the
result's voxels inside ``boxes`` (half-open voxel index ranges), flattened box after box in C order,
form its payload (an ``n``-element array); every voxel outside the boxes equals ``base``'s. The client
rebuilds the volume and checks that its content hash equals ``hash`` (the server's). In a request, a
``patch``'s ``base`` is the content hash of a volume the server holds (a result the client rebuilt
from that base, edited again after the server dropped it): the server answers ``409`` naming the
base if it does not hold it, else rebuilds the volume and checks ``hash`` alike.

Codecs (chosen per message by the sender, see :data:`CODECS`): ``shuffle-zlib``, ``shuffle-zstd``
(the same byte shuffle, each chunk compressed with zstandard; needs the ``zstandard`` package) and
``none`` (the raw bytes in chunks: fastest where the link is faster than the compressor).

Payload codec ``shuffle-zlib``: the array's bytes in C order are byte-shuffled (all first bytes of
every element, then all second bytes, ...; this groups the slowly varying high bytes of CT values and
roughly halves what zlib has to store), cut into chunks of ``CHUNK_BYTES`` and each chunk compressed
with zlib independently (so chunks compress in parallel; a chunk that looks incompressible, such as
the noisy low bytes of CT values, is written as zlib "stored" blocks, level 0). Geometry travels as JSON numbers, which
Python writes and reads back exactly (shortest round-trip repr), so volumes round-trip bit-exactly.

Each chunk carries its own length, so a sender streams a message while it compresses it: the header
(which needs no compressed size) goes first, and the chunks follow as worker threads finish them
(:class:`Message`). Messages of another wire version are refused with a message naming both versions
(version 1 had no refs, patches or codecs other than ``shuffle-zlib``; version 2 listed every chunk's
compressed size in the header, so a message was compressed whole before its first byte was sent).

A request maps one-to-one onto the dataclasses of :mod:`nodsynth.engines.base`: ``Volume`` fields
become ``volume`` arrays, numpy fields (``histogram``, ``initial_noise``) become ``array`` arrays and
every other field is a JSON parameter (tuples travel as lists and come back as tuples).
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from ..engines.base import (MAX_BYTES_PER_VOXEL, MAX_VOLUME_VOXELS, EditRequest, InpaintRequest, SynthesisResult,
    TwinRequest)
from .changed_boxes import box_voxels, changed_boxes, put_boxes, take_boxes, valid_box
from .content_hash import content_hash, is_content_hash, little_endian
from ..errors import InputError
from ..volume import Volume

try:  # optional: the shuffle-zstd codec
    import zstandard
except ImportError:  # pragma: no cover - depends on the installation
    zstandard = None

MAGIC = b"NODSYNTH"
WIRE_VERSION = 3
CODECS = ("shuffle-zlib", "shuffle-zstd", "none")
"""Payload codecs this build can read and write (``shuffle-zstd`` only where ``zstandard`` imports)."""
DEFAULT_CODEC = "shuffle-zlib"
HASH_CHUNK_BYTES = 16 << 20
"""Bytes per piece of :func:`content_hash` (hashed in parallel; the pieces' digests are hashed again)."""
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
_FRAME = struct.Struct("<I")
"""A chunk's length, before its bytes."""
READ_AHEAD_PER_THREAD = 2
"""Chunks compressed ahead of the one being sent, per compressing thread."""
_DTYPES = {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"}
"""Element types a message may carry, as little-endian numpy type strings."""

REQUEST_TYPES: dict[str, type] = {"twin": TwinRequest, "inpaint": InpaintRequest, "edit": EditRequest}
"""operation name -> request dataclass."""


class WireError(InputError):
    """A message is not a valid nodsynth wire message (bad magic, unknown version, corrupt payload)."""


class PatchMismatch(WireError):
    """A result rebuilt from a patch does not have the content hash the server sent."""


@dataclass
class WireRequest:
    """A decoded request message: which operation on which engine, and the request dataclass."""

    operation: str
    engine: str
    request: Any
    hashes: dict[str, str] = dataclasses.field(default_factory=dict)  # content hashes sent, by field name
    refs: frozenset[str] = frozenset()  # the fields that came as refs (resolved by the server's cache)
    result_codec: str = DEFAULT_CODEC  # the codec the client asks the result in


# ------------------------------------------------------------------------------------------ arrays
def _wire_dtype(array: np.ndarray) -> np.dtype:
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype.str not in _DTYPES:
        raise InputError(f"cannot send arrays of type {array.dtype} (supported: bool, integers, float16/32/64)")
    return dtype


def available_codecs() -> list[str]:
    """The codecs of :data:`CODECS` this installation can read and write."""
    return [codec for codec in CODECS if codec != "shuffle-zstd" or zstandard is not None]


def _shuffled(elements: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bytes ``start:stop`` of the byte-shuffled stream of ``elements`` (shape ``(n, itemsize)`` uint8):
    all first bytes of every element, then all second bytes, ... (one chunk's worth, made by the
    thread that compresses it)."""
    count, parts = elements.shape[0], []
    while start < stop:
        plane, element = divmod(start, count)
        n = min(stop - start, count - element)
        parts.append(elements[element:element + n, plane])
        start += n
    return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0])


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


def _zstd_compress(piece: memoryview, level: int) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(piece)


def compression_rate(codec: str) -> float:
    """Bytes per second this machine compresses CT-like int16 voxels in ``codec`` now (its load
    included): :data:`CHUNK_BYTES` per compressing thread of a seeded smooth-plus-noise sample, timed."""
    _require_codec(codec)
    rng = np.random.default_rng(0)
    count = _pool_size() * CHUNK_BYTES // 2
    sample = (np.cumsum(rng.integers(-2, 3, count)) % 1600 - 1000 + rng.normal(0.0, 10.0, count)).astype(np.int16)
    start = time.perf_counter()
    for _ in _compress(sample, 1, codec):
        pass
    return sample.nbytes / max(time.perf_counter() - start, 1e-6)


def _require_codec(codec: str) -> None:
    if codec not in available_codecs():
        raise WireError(f"codec {codec!r} is not available here; this installation offers "
                        + ", ".join(available_codecs()) + (" (pip install zstandard)" if codec == "shuffle-zstd" else ""))


def _compress(array: np.ndarray, level: int, codec: str) -> Iterator[bytes]:
    """The array's payload chunks in ``codec``, produced as they are asked for (``none``: views of the
    array's own bytes, no copy; else compressed by a pool of threads, :data:`READ_AHEAD_PER_THREAD`
    chunks per thread ahead of the caller: zlib and zstandard release the GIL)."""
    _require_codec(codec)
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    bounds = [(start, min(start + CHUNK_BYTES, raw.size)) for start in range(0, raw.size, CHUNK_BYTES)]
    if codec == "none":
        view = memoryview(raw)
        yield from (view[start:stop] for start, stop in bounds)
        return
    elements = raw.reshape(-1, array.dtype.itemsize)
    squeeze = _deflate if codec == "shuffle-zlib" else _zstd_compress

    def make(bound: tuple[int, int]) -> bytes:
        return squeeze(memoryview(_shuffled(elements, *bound)), level)

    with ThreadPoolExecutor(_pool_size()) as pool:
        ahead: deque = deque()
        for bound in bounds:
            ahead.append(pool.submit(make, bound))
            if len(ahead) > READ_AHEAD_PER_THREAD * _pool_size():
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def chunk_count(nbytes: int) -> int:
    """Chunks of an array payload of ``nbytes`` uncompressed bytes."""
    return -(-nbytes // CHUNK_BYTES)


def _inflate(chunk: bytes, expected: int, codec: str) -> bytes:
    """One chunk's bytes; never more than ``expected`` (the size the header states) is inflated."""
    if codec == "none":
        if len(chunk) != expected:
            raise WireError("corrupt array payload (a raw chunk is not of its stated size)")
        return chunk
    if codec == "shuffle-zstd":
        try:
            if zstandard.frame_content_size(chunk) != expected:
                raise WireError("corrupt array payload (a chunk does not decompress to its stated size)")
            return zstandard.ZstdDecompressor().decompress(chunk, max_output_size=expected)
        except zstandard.ZstdError as exc:
            raise WireError(f"corrupt array payload ({exc})") from exc
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(chunk, expected)
    except zlib.error as exc:
        raise WireError(f"corrupt array payload ({exc})") from exc
    if len(data) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise WireError("corrupt array payload (a chunk does not decompress to its stated size)")
    return data


class _Assembly:
    """One array's elements, filled chunk by chunk in any order: each chunk is inflated and put in its
    place at once (undoing the byte shuffle), so decoding holds the array plus one chunk per thread,
    never a second copy of the array."""

    def __init__(self, entry: dict) -> None:
        """For a checked header entry (:func:`_check_entry`): its elements' type, count, codec and chunks."""
        dtype, self.codec = np.dtype(entry["dtype"]), entry["codec"]
        self.count = int(np.prod(tuple(entry["shape"]), dtype=np.int64))
        self.out = np.empty(self.count, dtype)
        nbytes = self.count * dtype.itemsize
        self.sizes = [min(CHUNK_BYTES, nbytes - start) for start in range(0, nbytes, CHUNK_BYTES)]
        if len(self.sizes) != entry["chunks"]:
            raise WireError(f"array payload has {entry['chunks']} chunks, its size needs {len(self.sizes)}")

    def place(self, index: int, chunk: bytes) -> None:
        data = np.frombuffer(_inflate(chunk, self.sizes[index], self.codec), np.uint8)
        out_bytes = self.out.view(np.uint8).reshape(self.count, self.out.dtype.itemsize)
        position = index * CHUNK_BYTES
        if self.codec == "none":  # raw bytes in C order
            out_bytes.reshape(-1)[position:position + len(data)] = data
            return
        while len(data):  # in the shuffled bytes: plane (byte number) by plane
            plane, element = divmod(position, self.count)
            n = min(len(data), self.count - element)
            out_bytes[element:element + n, plane] = data[:n]
            data, position = data[n:], position + n


def _geometry(volume: Volume) -> dict:
    return {"spacing": volume.spacing.tolist(), "origin": volume.origin.tolist(),
            "direction": volume.direction.reshape(-1).tolist()}


Chunks = Callable[[], Iterator[bytes]]
"""Produces an array's payload chunks (again at every call)."""


def _payload_entry(entry: dict, array: np.ndarray, level: int, codec: str) -> tuple[dict, Chunks]:
    """``entry`` completed with the array's type, shape, codec and chunk count; and its chunks."""
    _require_codec(codec)
    dtype = _wire_dtype(array)
    array = array.astype(dtype, copy=False)
    entry.update(dtype=dtype.str, shape=list(array.shape), codec=codec, chunks=chunk_count(array.nbytes))
    return entry, lambda: _compress(array, level, codec)


def _array_entry(name: str, value: Any, level: int, codec: str, hashes: dict[str, str],
                 refs: frozenset[str]) -> tuple[dict, Chunks]:
    """Header entry and payload chunks of one Volume (whole, or a ``ref`` when ``name`` is in ``refs``)
    or numpy array."""
    if isinstance(value, Volume) and name in refs:
        return {"name": name, "kind": "ref", "hash": hashes[name]}, lambda: iter(())
    if isinstance(value, Volume):
        entry = dict(name=name, kind="volume", **_geometry(value))
        if name in hashes:
            entry["hash"] = hashes[name]
        return _payload_entry(entry, value.array, level, codec)
    return _payload_entry({"name": name, "kind": "array"}, _to_numpy(value), level, codec)


def _patch_entry(name: str, base_name: str, base: Volume, result: Volume, digest: str, level: int,
                 codec: str, boxes: Optional[list] = None) -> Optional[tuple[dict, Chunks]]:
    """A ``patch`` entry of ``result`` against the request volume ``base`` (``boxes``: their
    :func:`changed_boxes`, when known); ``None`` when it would not be smaller than the whole volume
    (another grid or type, or most of the volume changed)."""
    if (base.array.shape != result.array.shape or base.array.dtype != result.array.dtype
            or _geometry(base) != _geometry(result)):
        return None
    boxes = changed_boxes(base.array, result.array) if boxes is None else boxes
    if box_voxels(boxes) * 2 > result.array.size:
        return None
    entry = dict(name=name, kind="patch", base=base_name, hash=digest, volume_shape=list(result.array.shape),
                 boxes=[list(box) for box in boxes], **_geometry(result))
    return _payload_entry(entry, take_boxes(result.array, boxes), level, codec)


@dataclass(frozen=True)
class Change:
    """How a volume differs from a base volume known by content hash: its voxels in ``boxes``
    (flattened box after box, as a ``patch`` carries them); every other voxel is the base's."""

    base: str
    boxes: list
    values: np.ndarray


def _change_entry(name: str, volume: Volume, digest: str, change: Change, level: int,
                  codec: str) -> tuple[dict, Chunks]:
    """A request ``patch`` entry: ``volume`` as its change from the volume whose content hash is ``change.base``."""
    entry = dict(name=name, kind="patch", base=change.base, hash=digest, volume_shape=list(volume.array.shape),
                 boxes=[list(box) for box in change.boxes], **_geometry(volume))
    return _payload_entry(entry, change.values, level, codec)


def _to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array or a (CPU or GPU) torch tensor."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise InputError(f"cannot send a {type(value).__name__} as an array")
    return value


@dataclass
class _Patch:
    """A decoded ``patch`` entry, rebuilt into a volume by :func:`decode_result` from its base."""

    entry: dict
    values: np.ndarray


def _entry_value(entry: dict, chunks: list[bytes]) -> Any:
    """The value of an array entry from its payload chunks, the inverse of :func:`_compress` (:class:`_Assembly`)."""
    assembly = _Assembly(entry)
    if len(chunks) <= 1:
        for index, chunk in enumerate(chunks):
            assembly.place(index, chunk)
    else:
        with ThreadPoolExecutor(_pool_size()) as pool:  # zlib and zstandard release the GIL
            list(pool.map(assembly.place, range(len(chunks)), chunks))
    return _entry_of(entry, assembly.out)


def _entry_of(entry: dict, elements: np.ndarray) -> Any:
    """The value of a decoded array entry: its elements shaped, a patch, or a volume with its geometry."""
    array = elements.reshape(tuple(entry["shape"]))
    if entry["kind"] == "array":
        return array
    if entry["kind"] == "patch":
        return _Patch(entry, array)
    return Volume(array, entry["spacing"], entry["origin"], np.asarray(entry["direction"]).reshape(3, 3))


def _check_geometry(name: str, entry: dict) -> None:
    for key, size in (("spacing", 3), ("origin", 3), ("direction", 9)):
        values = entry.get(key)
        if not isinstance(values, list) or len(values) != size or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise WireError(f"volume {name!r}: {key} must be {size} numbers")


def _check_shape(name: str, shape: Any, dims: Optional[int] = None) -> int:
    """Validate a shape list; return its number of elements."""
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise WireError(f"array {name!r}: malformed shape {shape!r}")
    if dims is not None and len(shape) != dims:
        raise WireError(f"volume {name!r} must be {dims}-D, got shape {shape}")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > MAX_VOLUME_VOXELS:
        raise WireError(f"array {name!r} has {voxels} elements ({' x '.join(map(str, shape))}), over the limit "
                        f"of {MAX_VOLUME_VOXELS} voxels, the largest volume the engines accept")
    return voxels


def _check_entry(entry: Any) -> int:
    """Validate one header array entry; return the bytes it decodes to (a patch: also its rebuilt volume)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise WireError("malformed array entry in the message header")
    name, kind = entry["name"], entry.get("kind")
    if kind == "ref":
        if not is_content_hash(entry.get("hash")):
            raise WireError(f"volume {name!r}: a ref needs a 64-hex-digit content hash")
        return 0
    if kind not in ("volume", "array", "patch") or entry.get("codec") not in CODECS:
        raise WireError(f"array {name!r}: unknown kind {kind!r} or codec {entry.get('codec')!r} "
                        f"(this nodsynth reads {', '.join(CODECS)})")
    _require_codec(entry["codec"])
    if entry.get("dtype") not in _DTYPES:
        raise WireError(f"array {name!r}: unsupported element type {entry.get('dtype')!r}")
    chunks = entry.get("chunks")
    if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 0:
        raise WireError(f"array {name!r}: malformed chunk count")
    if "hash" in entry and not is_content_hash(entry["hash"]):
        raise WireError(f"volume {name!r}: malformed content hash")
    itemsize = np.dtype(entry["dtype"]).itemsize
    voxels = _check_shape(name, entry.get("shape"), 3 if kind == "volume" else None)
    if kind == "array":
        return voxels * itemsize
    _check_geometry(name, entry)
    if kind == "volume":
        return voxels * itemsize
    full = _check_shape(name, entry.get("volume_shape"), 3)
    boxes = entry.get("boxes")
    if (not isinstance(entry.get("base"), str) or "hash" not in entry or not isinstance(boxes, list)
            or not all(valid_box(box, entry["volume_shape"]) for box in boxes)
            or entry["shape"] != [box_voxels(boxes)]):
        raise WireError(f"patch {name!r}: needs a base name, a content hash and boxes inside the volume "
                        "that hold exactly its values")
    return (voxels + full) * itemsize


# ----------------------------------------------------------------------------------------- messages
class Message:
    """A message as byte pieces, made as they are iterated: the prefix and header, then each chunk's
    length and bytes, compressed ahead in threads while the caller writes or sends the earlier ones
    (iterating again makes them again). ``b"".join`` it, or stream it."""

    def __init__(self, head: bytes, payloads: list[Chunks], chunks: int) -> None:
        self.head, self._payloads = head, payloads
        self.pieces = 1 + 2 * chunks
        """How many pieces an iteration yields (for progress)."""

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        for payload in self._payloads:
            for chunk in payload():
                yield _FRAME.pack(len(chunk))
                yield chunk


def _pack(header: dict, entries_and_chunks: Iterable[tuple[dict, Chunks]]) -> Message:
    entries, payloads = [], []
    for entry, chunks in entries_and_chunks:
        entries.append(entry)
        payloads.append(chunks)
    header = dict(header, arrays=entries)
    head = json.dumps(header, separators=(",", ":"), allow_nan=False, default=_json_default).encode("utf-8")
    return Message(_PREFIX.pack(MAGIC, WIRE_VERSION, len(head)) + head, payloads,
                   sum(entry.get("chunks", 0) for entry in entries))


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
        older = "the sender's nodsynth is older than this one" if version < WIRE_VERSION else \
            "the sender's nodsynth is newer than this one"
        raise WireError(f"wire format version {version} is not supported: this nodsynth reads version "
                        f"{WIRE_VERSION} ({older}); install the same nodsynth version on client and server")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(data):
        raise WireError("truncated or oversized message header")
    try:
        header = json.loads(bytes(data[_PREFIX.size:_PREFIX.size + head_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"message header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("message header must be a JSON object with an 'arrays' list")
    return header, _PREFIX.size + head_len


def ref_hashes(header: dict) -> list[str]:
    """The content hashes of the volumes a request names without sending them (checked), in order: its
    ``ref`` entries and the bases of its ``patch`` entries."""
    named = [entry for entry in header["arrays"] if isinstance(entry, dict) and entry.get("kind") in ("ref", "patch")]
    for entry in named:
        _check_entry(entry)
    return [entry["hash"] if entry["kind"] == "ref" else entry["base"] for entry in named]


def _check_raw_total(header: dict, max_raw_bytes: int) -> None:
    """Validate the header's entries; refuse a message whose arrays decode to over ``max_raw_bytes``."""
    raw_total = sum(_check_entry(entry) for entry in header["arrays"])
    if raw_total > max_raw_bytes:
        raise WireError(f"message expands to {raw_total / 2**20:.0f} MiB, over the limit of "
                        f"{max_raw_bytes / 2**20:.0f} MiB")


def _entry_values(header: dict, resolve: Optional[Callable[[str], Volume]],
                  value_of: Callable[[int, dict], Any]) -> dict[str, Any]:
    """The message's values by name, in order: ``ref`` entries become ``resolve(hash)``, the others
    ``value_of(index, entry)``."""
    values: dict[str, Any] = {}
    for index, entry in enumerate(header["arrays"]):
        if entry["name"] in values:
            raise WireError(f"array {entry['name']!r} appears twice")
        if entry["kind"] == "ref":
            if resolve is None:
                raise WireError(f"volume {entry['name']!r} is a ref, which this message may not hold")
            values[entry["name"]] = resolve(entry["hash"])
        else:
            values[entry["name"]] = value_of(index, entry)
    return values


def _unpack(data: bytes | memoryview, max_raw_bytes: int,
            resolve: Optional[Callable[[str], Volume]] = None) -> tuple[dict, dict[str, Any]]:
    """Header and values by name; ``ref`` entries become ``resolve(hash)``."""
    header, offset = read_header(data)
    data = memoryview(data)
    _check_raw_total(header, max_raw_bytes)
    position = [offset]

    def read(_index: int, entry: dict) -> Any:
        chunks = []
        for _ in range(entry["chunks"]):
            start = position[0]
            if start + _FRAME.size > len(data):
                raise WireError(f"message is truncated inside array {entry['name']!r}")
            size = _FRAME.unpack(data[start:start + _FRAME.size])[0]
            start += _FRAME.size
            if start + size > len(data):
                raise WireError(f"message is truncated inside array {entry['name']!r}")
            chunks.append(data[start:start + size])
            position[0] = start + size
        return _entry_value(entry, chunks)

    values = _entry_values(header, resolve, read)
    if position[0] != len(data):
        raise WireError(f"{len(data) - position[0]} unexpected bytes after the last array")
    return header, values


class StreamReader:
    """A message decoded while its bytes arrive: :meth:`feed` each piece as it comes (a complete chunk is
    inflated into its array by a thread pool at once, so decoding overlaps the transfer), then
    :meth:`request` gives what :func:`decode_request` gives for the whole message; :meth:`close` when
    abandoning it. The header is checked as soon as it is in (:attr:`header`), before anything is
    allocated, and the arrays' total size against ``max_raw_bytes``."""

    def __init__(self, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES) -> None:
        self.max_raw_bytes = int(max_raw_bytes)
        self.header: Optional[dict] = None
        self._pending = bytearray()
        self._frames: deque = deque()  # (entry index, chunk index) still to come
        self._assemblies: dict[int, _Assembly] = {}
        self._pool = ThreadPoolExecutor(_pool_size())
        self._placed: list = []

    def feed(self, data: bytes) -> None:
        self._pending += data
        while self._take_header() if self.header is None else self._take_frame():
            pass

    def _take_header(self) -> bool:
        if len(self._pending) < _PREFIX.size:
            return False
        magic, version, head_len = _PREFIX.unpack(bytes(self._pending[:_PREFIX.size]))
        complete = len(self._pending) >= _PREFIX.size + head_len
        if not complete and magic == MAGIC and version == WIRE_VERSION and head_len <= MAX_HEADER_BYTES:
            return False
        header, offset = read_header(self._pending)  # raises for what is wrong
        _check_raw_total(header, self.max_raw_bytes)
        for index, entry in enumerate(header["arrays"]):
            if entry["kind"] != "ref":
                self._assemblies[index] = _Assembly(entry)
                self._frames.extend((index, chunk) for chunk in range(entry["chunks"]))
        del self._pending[:offset]
        self.header = header
        return True

    def _take_frame(self) -> bool:
        if not self._frames or len(self._pending) < _FRAME.size:
            return False
        size = _FRAME.unpack(bytes(self._pending[:_FRAME.size]))[0]
        if len(self._pending) < _FRAME.size + size:
            return False
        index, chunk = self._frames.popleft()
        data = bytes(self._pending[_FRAME.size:_FRAME.size + size])
        del self._pending[:_FRAME.size + size]
        self._placed.append(self._pool.submit(self._assemblies[index].place, chunk, data))
        return True

    def complete_header(self) -> dict:
        """The message's header; :class:`WireError` if the bytes fed so far do not hold it."""
        if self.header is None:
            if len(self._pending) < _PREFIX.size:
                raise WireError("message is truncated inside its header")
            read_header(self._pending)  # raises, naming what is wrong
        return self.header

    def request(self, resolve: Optional[Callable[[str], Volume]] = None) -> WireRequest:
        """The decoded request, once every byte was fed (``resolve`` as for :func:`decode_request`)."""
        try:
            header = self.complete_header()
            if self._frames:
                raise WireError(f"message is truncated inside array {header['arrays'][self._frames[0][0]]['name']!r}")
            if self._pending:
                raise WireError(f"{len(self._pending)} unexpected bytes after the last array")
            for placed in self._placed:
                placed.result()
            values = _entry_values(header, resolve, lambda index, entry: _entry_of(entry, self._assemblies[index].out))
            return _request_of(header, values, resolve)
        finally:
            self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _is_array_value(value: Any) -> bool:
    return isinstance(value, (Volume, np.ndarray)) or (hasattr(value, "detach") and hasattr(value, "cpu"))


def _from_json(value: Any) -> Any:
    """JSON lists back to the tuples the request dataclasses use."""
    return tuple(_from_json(v) for v in value) if isinstance(value, list) else value


def encode_request(operation: str, engine: str, request: Any, level: int = 1, codec: str = DEFAULT_CODEC,
                   hashes: Optional[dict[str, str]] = None, refs: Iterable[str] = (),
                   result_codec: Optional[str] = None, patches: Optional[dict[str, Change]] = None) -> Message:
    """A request dataclass -> message pieces (``b"".join`` them or stream them), its arrays in ``codec``;
    the result is asked for in ``result_codec`` (default: ``codec``).

    ``hashes``: content hashes of (some of) the request's volumes by field name, sent with them;
    the volumes named in ``refs`` (which need a hash) are sent as ``ref`` entries, without voxels;
    those in ``patches`` (which need a hash too) as a ``patch`` of their :class:`Change` from a base
    volume the server holds (it rebuilds them and checks their hash)."""
    expected = REQUEST_TYPES.get(operation)
    if expected is None or not isinstance(request, expected):
        raise InputError(f"operation {operation!r} needs a {getattr(expected, '__name__', 'known request')}, "
                         f"got {type(request).__name__}")
    hashes, refs = dict(hashes or {}), frozenset(refs)
    patches = patches or {}
    if not refs | set(patches) <= set(hashes):
        raise InputError(f"volumes {sorted(refs | set(patches) - set(hashes))} are sent as refs or patches but "
                         "have no content hash")
    params, entries = {}, []
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if f.name in patches and f.name not in refs:
            entries.append(_change_entry(f.name, value, hashes[f.name], patches[f.name], level, codec))
        elif _is_array_value(value):
            entries.append(_array_entry(f.name, value, level, codec, hashes, refs))
        else:
            params[f.name] = value
    header = {"kind": "request", "operation": operation, "engine": engine, "parameters": params,
              "result_codec": result_codec or codec}
    return _pack(header, entries)


def decode_request(data: bytes | memoryview, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
                   resolve: Optional[Callable[[str], Volume]] = None) -> WireRequest:
    """Message -> :class:`WireRequest`; raises :class:`InputError` naming what is wrong.

    ``resolve(hash)`` gives the volume of a ``ref`` entry (a server's cache; it raises for an unknown
    hash); without it a request holding refs is refused."""
    return _request_of(*_unpack(data, max_raw_bytes, resolve), resolve)


def _request_of(header: dict, values: dict[str, Any], resolve: Optional[Callable[[str], Volume]]) -> WireRequest:
    """The :class:`WireRequest` of an unpacked request message (:func:`decode_request`)."""
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
    for name, value in list(values.items()):  # a patch of a volume the server holds, named by its hash
        if isinstance(value, _Patch):
            base = value.entry["base"]
            if resolve is None or not is_content_hash(base):
                raise WireError(f"request volume {name!r} is a patch, which needs the content hash of a held base")
            values[name] = _rebuild(name, value, {base: resolve(base)})
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
    hashes = {e["name"]: e["hash"] for e in header["arrays"] if e["kind"] in ("volume", "ref", "patch") and "hash" in e}
    refs = frozenset(e["name"] for e in header["arrays"] if e["kind"] == "ref")
    result_codec = header.get("result_codec", DEFAULT_CODEC)
    if result_codec not in available_codecs():
        raise InputError(f"result codec {result_codec!r} is not available on the server; it offers "
                         + ", ".join(available_codecs()))
    return WireRequest(operation, engine, request, hashes, refs, result_codec)


def encode_result(result: SynthesisResult, level: int = 1, codec: str = DEFAULT_CODEC,
                  bases: Optional[dict[str, Volume]] = None,
                  hashes: Optional[dict[str, str]] = None, boxes: Optional[dict[str, list]] = None) -> Message:
    """A :class:`SynthesisResult` -> message pieces.

    A result volume with a content hash in ``hashes`` and a same-named volume in ``bases`` (the
    request's volumes, which the client holds) on the same grid travels as a ``patch`` of its changed
    boxes (given in ``boxes`` by name, or found here), unless those cover more than half of it; every
    other volume travels whole."""
    bases, hashes, boxes = bases or {}, hashes or {}, boxes or {}
    entries = []
    for name, volume in result.volumes.items():
        patch = None
        if name in bases and name in hashes:
            patch = _patch_entry(name, name, bases[name], volume, hashes[name], level, codec, boxes.get(name))
        entries.append(patch or _array_entry(name, volume, level, codec, {}, frozenset()))
    header = {"kind": "result", "engine": result.engine, "seconds": float(result.seconds), "info": result.info}
    return _pack(header, entries)


def _rebuild(name: str, patch: _Patch, bases: dict[str, Volume],
             prepared: Optional[tuple[np.ndarray, str]] = None) -> Volume:
    """The full volume of a patch, from its base in ``bases`` (a result's: the request volume of that name,
    which the client holds; a request's: the volume of that content hash, which the server holds); its
    content hash checked. ``prepared``: :func:`base_copy` of the base, made beforehand: the patch is put into
    that copy, and only the pieces its boxes touch are hashed again (:func:`content_hash` ``like``)."""
    entry = patch.entry
    base = bases.get(entry["base"])
    if base is None:
        raise WireError(f"{name!r} is a patch of {entry['base']!r}, which the request did not send")
    base_array = little_endian(base.array)
    if (list(base_array.shape) != entry["volume_shape"] or base_array.dtype.str != entry["dtype"]
            or _geometry(base) != {key: entry[key] for key in ("spacing", "origin", "direction")}):
        raise WireError(f"{name!r}: the patch does not fit the grid or type of {entry['base']!r}")
    boxes = [tuple(box) for box in entry["boxes"]]
    copy, copy_hash = prepared if prepared is not None else (None, None)
    volume = base.with_array(put_boxes(base_array, boxes, patch.values, copy))
    if content_hash(volume, like=copy_hash, boxes=boxes) != entry["hash"]:
        raise PatchMismatch(f"{name!r} rebuilt here from {entry['base']!r} differs from the sender's (content "
                            "hash mismatch): the input changed after it was hashed, or the sender's copy of "
                            "the base is not this one")
    return volume


def decode_result(data: bytes | memoryview, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
                  bases: Optional[dict[str, Volume]] = None,
                  hashes_out: Optional[dict[str, str]] = None,
                  changes_out: Optional[dict[str, tuple[list, np.ndarray]]] = None,
                  base_copies: Optional[dict[str, tuple[np.ndarray, str]]] = None) -> SynthesisResult:
    """Message -> :class:`SynthesisResult` (volumes keep their names, e.g. ``"ct"``).

    Patches are rebuilt from ``bases`` (the request's volumes by field name) and checked against the
    server's content hash (:class:`PatchMismatch` if they differ); the checked hashes of rebuilt
    volumes are put in ``hashes_out``, their boxes and the voxels in them in ``changes_out``, when given.
    ``base_copies`` (by field name): :func:`base_copy` of bases, made while the server worked; a patch of
    one is rebuilt into that copy and checked by hashing only the pieces its boxes touch."""
    header, values = _unpack(data, max_raw_bytes)
    if header.get("kind") != "result":
        raise WireError(f"expected a result message, got {header.get('kind')!r}")
    for name, value in list(values.items()):
        if isinstance(value, _Patch):
            values[name] = _rebuild(name, value, bases or {}, (base_copies or {}).get(value.entry["base"]))
            if hashes_out is not None:
                hashes_out[name] = value.entry["hash"]
            if changes_out is not None:
                changes_out[name] = ([tuple(box) for box in value.entry["boxes"]], value.values)
    info = header.get("info") if isinstance(header.get("info"), dict) else {}
    return SynthesisResult(volumes=values, engine=str(header.get("engine", "")),
                           seconds=float(header.get("seconds", 0.0)), info=info)


def base_copy(volume: Volume) -> tuple[np.ndarray, str]:
    """A copy of the volume's voxels (little-endian, C order) and its content hash, computed from the copy:
    a patch of the volume is rebuilt into it (``decode_result`` ``base_copies``). The hash is the copy's own,
    so an input changed in place since it was hashed for the request still fails the result's check."""
    array = little_endian(volume.array)
    copy = array.copy() if array is volume.array else array
    return copy, content_hash(volume.with_array(copy))


def encode_volume(volume: Volume, digest: str) -> Message:
    """One volume and its content hash as a message (kind ``volume``, codec ``none``): a cache file."""
    return _pack({"kind": "volume"}, [_array_entry("volume", volume, 0, "none", {"volume": digest}, frozenset())])


def decode_volume(data: bytes | memoryview) -> tuple[Volume, str]:
    """Inverse of :func:`encode_volume`: the volume and the hash it was stored with (not re-checked)."""
    header, values = _unpack(data, DEFAULT_MAX_RAW_BYTES)
    entry = header["arrays"][0] if len(header["arrays"]) == 1 else {}
    if header.get("kind") != "volume" or entry.get("kind") != "volume" or "hash" not in entry:
        raise WireError("not a stored volume message")
    return values["volume"], entry["hash"]


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
