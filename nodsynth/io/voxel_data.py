"""Is all of a volume file's voxel data there, and finite? Checked before SimpleITK reads the file.

SimpleITK zero-fills a truncated NIfTI (``.nii`` or a ``.nii.gz`` cut mid-stream) and reads NaN / Inf
in a NIfTI as 0, so neither can be seen in the array it returns. Here the header of a NIfTI-1/2,
MetaImage (``.mha`` / ``.mhd``) or NRRD (``.nrrd`` / ``.nhdr``) file gives where the voxel data lies,
its encoding and its size; the data is then streamed once (decompressed if need be) to count its
bytes and, for floating-point voxels, to find non-finite ones. A ``.nii`` / ``.nii.gz`` without a NIfTI
header is refused (SimpleITK would read it as Analyze 7.5, orientation lost); another header this
module does not understand is left to SimpleITK (:func:`voxel_layout` returns ``None``).
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import InputError

CHUNK_BYTES = 1 << 22
"""Bytes read from the file at a time."""


@dataclass(frozen=True)
class VoxelLayout:
    """Where a file's voxel data lies and what it should hold."""

    data_file: Path
    offset: int
    """Bytes to skip before the voxels (in the decompressed stream for a whole-file ``.nii.gz``)."""
    encoding: str
    """``raw`` or ``gzip`` (a gzip or zlib stream)."""
    whole_file_compressed: bool
    """True for ``.nii.gz``: the header is inside the compressed stream, so ``offset`` counts there."""
    dtype: np.dtype
    shape_kji: tuple[int, ...]
    components: int = 1

    @property
    def expected_bytes(self) -> int:
        return int(np.prod(self.shape_kji, dtype=np.int64)) * self.components * self.dtype.itemsize


# ------------------------------------------------------------------------------------------ NIfTI
_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8",
                 1280: "u8", 32: "c8", 1792: "c16"}
_NIFTI_COMPONENTS = {128: ("u1", 3), 2304: ("u1", 4)}  # RGB24, RGBA32


def _nifti_layout(path: Path) -> Optional[VoxelLayout]:
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"  # SimpleITK also reads an uncompressed file named .nii.gz
    head = _leading_bytes(path, 540, gzipped)
    for order in "<>":
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348 and head[344:347] == b"n+1":
            dims = struct.unpack(order + "8h", head[40:56])
            datatype = struct.unpack(order + "h", head[70:72])[0]
            spacing = struct.unpack(order + "8f", head[76:108])
            offset = struct.unpack(order + "f", head[108:112])[0]
            break
        if len(head) >= 540 and struct.unpack(order + "i", head[:4])[0] == 540 and head[4:7] == b"n+2":
            dims = struct.unpack(order + "8q", head[16:80])
            datatype = struct.unpack(order + "h", head[12:14])[0]
            spacing = struct.unpack(order + "8d", head[104:168])
            offset = struct.unpack(order + "q", head[168:176])[0]
            break
    else:
        if len(head) < 348:
            raise InputError(f"{path} is truncated: a NIfTI header is 348 bytes, {len(head):,} found")
        raise InputError(f"{path} is not a NIfTI file: its header has neither the NIfTI-1 nor the NIfTI-2 size and "
                         "magic (a corrupted header, or an Analyze 7.5 file, which is not read)")
    if datatype in _NIFTI_COMPONENTS:
        code, components = _NIFTI_COMPONENTS[datatype]
    elif datatype in _NIFTI_DTYPES:
        code, components = _NIFTI_DTYPES[datatype], 1
    else:
        return None
    if not 1 <= dims[0] <= 7 or any(d < 1 for d in dims[1:dims[0] + 1]) or not 348 <= offset < 2 ** 62:
        return None
    if not np.all(np.isfinite(spacing[1:min(dims[0], 3) + 1])):  # SimpleITK would take 1 mm
        raise InputError(f"{path}: the NIfTI header's voxel spacing (pixdim) is not finite: "
                         f"{[float(v) for v in spacing[1:min(dims[0], 3) + 1]]} mm")
    return VoxelLayout(path, int(offset), "gzip" if gzipped else "raw", gzipped, np.dtype(order + code),
                       tuple(int(d) for d in reversed(dims[1:dims[0] + 1])), components)


def _leading_bytes(path: Path, count: int, gzipped: bool) -> bytes:
    with open(path, "rb") as handle:
        if not gzipped:
            return handle.read(count)
        decompressor, head = zlib.decompressobj(47), b""
        while len(head) < count and not decompressor.eof:
            chunk = handle.read(4096)
            if not chunk:
                break
            try:
                head += decompressor.decompress(chunk, count - len(head))
            except zlib.error as exc:
                raise InputError(f"{path} is corrupt: its gzip data cannot be decompressed ({exc})") from exc
        return head


# --------------------------------------------------------------------------------- MetaImage / NRRD
_META_DTYPES = {"MET_UCHAR": "u1", "MET_CHAR": "i1", "MET_USHORT": "u2", "MET_SHORT": "i2", "MET_UINT": "u4",
                "MET_INT": "i4", "MET_ULONG": "u4", "MET_LONG": "i4", "MET_ULONG_LONG": "u8", "MET_LONG_LONG": "i8",
                "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}
_NRRD_DTYPES = {"u1": "uchar unsigned_char uint8 uint8_t", "i1": "signed_char int8 int8_t",
                "i2": "short short_int signed_short signed_short_int int16 int16_t",
                "u2": "ushort unsigned_short unsigned_short_int uint16 uint16_t",
                "i4": "int signed_int int32 int32_t", "u4": "uint unsigned_int uint32 uint32_t",
                "i8": "longlong long_long long_long_int signed_long_long signed_long_long_int int64 int64_t",
                "u8": "ulonglong unsigned_long_long unsigned_long_long_int uint64 uint64_t",
                "f4": "float", "f8": "double"}
_NRRD_CODE = {name.replace("_", " "): code for code, names in _NRRD_DTYPES.items() for name in names.split()}
_NRRD_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip"}
_HEADER_BYTES = 1 << 16


def _header_lines(path: Path, end: re.Pattern) -> Optional[tuple[list[str], int]]:
    """The text lines of a header up to and including the first line matching ``end`` (or to the end of
    a short file: a detached header), and the byte offset just after it."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    lines, position = [], 0
    for raw in head.splitlines(keepends=True):
        position += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        lines.append(line)
        if end.match(line):
            return lines, position
    return (lines, position) if len(head) < _HEADER_BYTES else None


def _meta_layout(path: Path) -> Optional[VoxelLayout]:
    found = _header_lines(path, re.compile(r"\s*ElementDataFile\s*="))
    if found is None:
        return None
    lines, position = found
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition("=") for line in lines) if _}
    try:
        dims = [int(v) for v in fields["dimsize"].split()]
        code = _META_DTYPES[fields["elementtype"].upper()]
        components = int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        return None
    msb = fields.get("binarydatabyteordermsb", fields.get("elementbyteordermsb", "False")).lower() == "true"
    encoding = "gzip" if fields.get("compresseddata", "False").lower() == "true" else "raw"
    data = fields.get("elementdatafile", "")
    if not data:
        return None
    if data.upper() == "LOCAL":
        data_file, offset = path, position
    elif " " in data or "%" in data or data.upper() == "LIST":
        return None
    else:
        data_file, offset = path.parent / data, int(fields.get("headersize", "0") or 0)
    if offset < 0 or components < 1 or not dims or any(d < 1 for d in dims):
        return None
    return VoxelLayout(data_file, offset, encoding, False, np.dtype((">" if msb else "<") + code),
                       tuple(reversed(dims)), components)


def _nrrd_layout(path: Path) -> Optional[VoxelLayout]:
    found = _header_lines(path, re.compile(r"^$"))
    if found is None or not found[0][0].startswith("NRRD"):
        return None
    lines, position = found
    fields = {k.strip().lower().replace(" ", ""): v.strip() for k, sep, v in (line.partition(": ") for line in lines)
              if sep and not k.startswith("#")}
    try:
        dims = [int(v) for v in fields["sizes"].split()]
        code = _NRRD_CODE[" ".join(fields["type"].lower().split())]
        encoding = _NRRD_ENCODINGS[fields["encoding"].lower()]
        byte_skip = int(fields.get("byteskip", "0"))
        line_skip = int(fields.get("lineskip", "0"))
    except (KeyError, ValueError):
        return None
    data = fields.get("datafile")
    if data is None:
        data_file, offset = path, position + byte_skip
    elif " " in data or "%" in data or data.upper().startswith("LIST"):
        return None
    else:
        data_file, offset = path.parent / data, byte_skip
    if line_skip != 0 or byte_skip < 0 or not dims or any(d < 1 for d in dims):
        return None
    order = ">" if fields.get("endian", "little").lower() == "big" else "<"
    return VoxelLayout(data_file, offset, encoding, False, np.dtype(order + code), tuple(reversed(dims)))


def voxel_layout(path: str | os.PathLike) -> Optional[VoxelLayout]:
    """The voxel layout from a volume file's header; ``None`` for a header this module does not read."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _nifti_layout(path)
    if name.endswith((".mha", ".mhd")):
        return _meta_layout(path)
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd_layout(path)
    return None


# ------------------------------------------------------------------------------------ the stream
class _Truncated(Exception):
    """The compressed stream ends before its end-of-stream marker."""


def _decompressed(handle) -> Iterator[bytes]:
    """The decompressed bytes of a gzip / zlib stream (several members in a row too: bgzip), in pieces of
    at most :data:`CHUNK_BYTES`; :class:`_Truncated` when the input stops inside a member."""
    decompressor, data, inside = zlib.decompressobj(47), b"", False  # 47: a gzip or a zlib header
    while True:
        if not data:
            data = handle.read(CHUNK_BYTES)
            if not data:
                if inside:  # output zlib still holds for input it has taken
                    yield decompressor.flush()
                    inside = not decompressor.eof
                break
        if decompressor.eof:  # a further member follows the one that ended
            decompressor = zlib.decompressobj(47)
        inside = True
        yield decompressor.decompress(data, CHUNK_BYTES)
        data = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
        inside = not decompressor.eof
    if inside:
        raise _Truncated


def _data_stream(layout: VoxelLayout) -> Iterator[bytes]:
    """The voxel bytes (and whatever follows them), decompressed; :class:`_Truncated` when a compressed
    stream stops early, :class:`InputError` when it cannot be decompressed."""
    with open(layout.data_file, "rb") as handle:
        if not layout.whole_file_compressed:
            handle.seek(layout.offset)
        if layout.encoding == "raw":
            yield from iter(lambda: handle.read(CHUNK_BYTES), b"")
            return
        try:
            yield from _decompressed(handle)
        except zlib.error as exc:
            raise InputError(f"{layout.data_file} is corrupt: its compressed voxel data cannot be decompressed "
                             f"({exc})") from exc


def nonfinite_message(where: str, count: int, low_ijk: Sequence[int], high_ijk: Sequence[int]) -> str:
    """The one-line refusal of a volume holding ``count`` NaN/infinite voxels in an i,j,k index box."""
    box = (f"at voxel index i,j,k = {list(low_ijk)}" if list(low_ijk) == list(high_ijk)
           else f"within voxel index i,j,k = {list(low_ijk)}..{list(high_ijk)}")
    return (f"{where} holds {count:,} NaN or infinite voxel(s) {box}; a CT, label map or mask must hold "
            "finite numbers")


class _NonFinite:
    """Running count and i,j,k bounding box of the non-finite voxels of a stream."""

    def __init__(self, shape_kji: tuple[int, ...], components: int) -> None:
        self.shape_kji, self.components = shape_kji, components
        self.count, self.low, self.high = 0, None, None

    def add(self, values: np.ndarray, first_element: int) -> None:
        """``values``: one row per element (a complex element has two parts), starting at ``first_element``."""
        finite = np.isfinite(values)
        bad = np.flatnonzero(~(finite[:, 0] if finite.shape[1] == 1 else finite.all(axis=1)))
        if not bad.size:
            return
        self.count += int(bad.size)
        kji = np.array(np.unravel_index((bad + first_element) // self.components, self.shape_kji))
        low, high = kji.min(axis=1)[::-1], kji.max(axis=1)[::-1]
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)


def _element_parts(dtype: np.dtype) -> np.dtype:
    """The real dtype one element is made of (a complex number is two floats)."""
    return np.dtype(f"{dtype.str[0]}f{dtype.itemsize // 2}") if dtype.kind == "c" else dtype


def _gzip_size_matches(layout: VoxelLayout) -> bool:
    """Whether a gzip stream's trailer (its last 4 bytes: the decompressed size modulo 2**32) gives the size
    the header promises. A stream cut short ends in compressed data instead, which matches by chance with
    odds of 2**-32; a mismatch (also a zlib stream or several members) means reading the whole stream."""
    start = 0 if layout.whole_file_compressed else layout.offset
    with open(layout.data_file, "rb") as handle:
        handle.seek(start)
        if handle.read(2) != b"\x1f\x8b" or handle.seek(0, os.SEEK_END) < start + 18:
            return False
        handle.seek(-4, os.SEEK_END)
        size = struct.unpack("<I", handle.read(4))[0]
    total = layout.expected_bytes + (layout.offset if layout.whole_file_compressed else 0)
    return size == total % 2 ** 32


def _scan(layout: VoxelLayout) -> tuple[int, bool, _NonFinite]:
    """(voxel bytes found, up to the expected size; whether a compressed stream stopped early; the
    non-finite voxels). Integer voxels are not read: a raw file's size or a gzip stream's trailer tells
    whether they are all there (the stream is decompressed when it does not)."""
    expected = layout.expected_bytes
    nonfinite = _NonFinite(layout.shape_kji, layout.components)
    if layout.encoding == "raw" and layout.dtype.kind not in "fc":
        return min(max(layout.data_file.stat().st_size - layout.offset, 0), expected), False, nonfinite
    if layout.dtype.kind not in "fc" and _gzip_size_matches(layout):
        return expected, False, nonfinite
    itemsize, parts = layout.dtype.itemsize, _element_parts(layout.dtype)
    skip = layout.offset if layout.whole_file_compressed else 0
    found, pending = 0, b""
    try:
        for chunk in _data_stream(layout):
            if skip:
                chunk, skip = chunk[skip:], max(skip - len(chunk), 0)
            chunk = chunk[:expected - found]
            if layout.dtype.kind in "fc" and chunk:
                first_element = (found - len(pending)) // itemsize
                pending += chunk
                whole = len(pending) // itemsize * itemsize
                nonfinite.add(np.frombuffer(pending[:whole], parts).reshape(-1, itemsize // parts.itemsize),
                              first_element)
                pending = pending[whole:]
            found += len(chunk)
    except _Truncated:
        return found, True, nonfinite
    return found, False, nonfinite


def check_voxel_data(path: str | os.PathLike) -> None:
    """Raise :class:`InputError` when a volume file holds less voxel data than its header promises (a
    truncated or cut-short compressed file) or holds NaN / infinite voxels. A no-op for a header
    :func:`voxel_layout` does not read (SimpleITK then has the last word)."""
    try:
        layout = voxel_layout(path)
    except OSError:
        return
    if layout is None:
        return
    if not layout.data_file.is_file():
        raise InputError(f"{path}: its voxel data file {layout.data_file} is missing")
    found, stream_cut, nonfinite = _scan(layout)
    if found < layout.expected_bytes or stream_cut:
        cut = f" (the {layout.encoding} stream ends early)" if stream_cut else ""
        name = str(path) if layout.data_file == Path(path) else f"{path}: its data file {layout.data_file}"
        raise InputError(f"{name} is truncated: {layout.expected_bytes:,} bytes of voxel data expected, "
                         f"{found:,} found{cut}")
    if nonfinite.count:
        raise InputError(nonfinite_message(str(path), nonfinite.count, nonfinite.low.tolist(),
                                           nonfinite.high.tolist()))
