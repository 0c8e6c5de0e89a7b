"""Which CT series a folder holds: every DICOM file under it is read (headers only), CT images (by
Modality and SOP class) grouped by SeriesInstanceUID; SEG, SR and other objects beside them are ignored.

A path ``FOLDER::SERIES_INSTANCE_UID`` names one series of a folder that holds several.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ...errors import InputError
from ..volume_files import VOLUME_SUFFIXES

SERIES_SEPARATOR = "::"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def pydicom_module():
    """pydicom, or a one-line :class:`InputError` saying how to install it."""
    try:
        import pydicom
    except ImportError as exc:
        raise InputError("reading or writing DICOM needs pydicom: pip install 'nodsynth[dicom]'") from exc
    return pydicom


def split_series_path(path: str | os.PathLike) -> tuple[Path, Optional[str]]:
    """``FOLDER::UID`` -> ``(FOLDER, UID)``; a plain path -> ``(path, None)``."""
    text = str(path)
    if SERIES_SEPARATOR in text:
        folder, uid = text.rsplit(SERIES_SEPARATOR, 1)
        return Path(folder), uid.strip()
    return Path(text), None


def dicom_kind(path: str | os.PathLike) -> Optional[str]:
    """``"series"`` for a folder or a ``FOLDER::UID`` (:func:`~.read.read_ct_series` reads it), ``"file"``
    for a DICOM file (:func:`~.seg_read.read_segmentation`), ``None`` otherwise."""
    folder, uid = split_series_path(path)
    if uid is not None or folder.is_dir():
        return "series"
    if folder.is_file() and not folder.name.lower().endswith(VOLUME_SUFFIXES):
        with open(folder, "rb") as handle:
            if handle.read(132)[128:] == b"DICM":
                return "file"
    return None


def _headers(folder: Path):
    """The headers (no pixel data) of every DICOM file under ``folder``, with their paths."""
    pydicom = pydicom_module()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            try:
                header = pydicom.dcmread(path, stop_before_pixels=True)
            except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError):
                continue
            yield path, header


def ct_series(folder: Path) -> dict[str, list[tuple[Path, Any]]]:
    """SeriesInstanceUID -> the files and headers of each CT image series under ``folder``."""
    found: dict[str, list[tuple[Path, Any]]] = {}
    for path, header in _headers(folder):
        if header.get("Modality") == "CT" and str(header.get("SOPClassUID", "")) == CT_IMAGE_STORAGE:
            found.setdefault(str(header.get("SeriesInstanceUID", "")), []).append((path, header))
    return found


def choose_series(path: str | os.PathLike) -> list[tuple[Path, Any]]:
    """The files and headers of the one CT series ``path`` names (a folder holding one, or ``FOLDER::UID``)."""
    folder, uid = split_series_path(path)
    if not folder.is_dir():
        raise InputError(f"DICOM folder not found: {folder}")
    found = ct_series(folder)
    if uid is not None:
        if uid not in found:
            listed = ", ".join(sorted(found)) or "none"
            raise InputError(f"{folder} holds no CT series with SeriesInstanceUID {uid} (CT series there: {listed})")
        return found[uid]
    if not found:
        raise InputError(f"{folder} holds no CT image series (Modality CT, CT Image Storage); SEG, SR, multi-frame "
                         "Enhanced CT and other objects are not read as a CT")
    if len(found) > 1:
        listed = "; ".join(f"{u} ({len(f)} slices)" for u, f in sorted(found.items()))
        raise InputError(f"{folder} holds {len(found)} CT series: {listed}; name one as "
                         f"{folder}{SERIES_SEPARATOR}SERIES_INSTANCE_UID")
    return next(iter(found.values()))
