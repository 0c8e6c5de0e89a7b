"""Reading CSV tables of cases: manifests, keys, answer sheets, batch case lists (and JSON input files).

Every reader gets the rows with their line numbers, so an error names the file, the line and the
column. Paths in a manifest are taken relative to the manifest's own folder.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import InputError

REMOTE_PREFIXES = ("dicomweb://", "dicomweb+https://")
"""Path cells naming a series on a DICOMweb server (:mod:`nodsynth.io.dicom.pacs_cache`)."""


def read_text(path: str | os.PathLike, what: str) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); :class:`InputError` naming the file
    when it cannot be read or is not UTF-8 (a Latin-1 / Windows-1252 export, say)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at byte {exc.start:,}); "
                         f"save the {what} as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def csv_reader(path: str | os.PathLike, what: str) -> csv.DictReader:
    """A :class:`csv.DictReader` over a UTF-8 CSV file with a header (see :func:`read_text`)."""
    return csv.DictReader(io.StringIO(read_text(path, what), newline=""))


def csv_dicts(path: str | os.PathLike, what: str) -> list[dict]:
    """The rows of a UTF-8 CSV file with a header, as dicts."""
    return list(csv_reader(path, what))


def read_rows(path: str | os.PathLike, required: Sequence[str], what: str) -> list[tuple[int, dict]]:
    """``[(line_number, row_dict), ...]`` of a CSV with a header holding at least ``required``.

    Cells are stripped; empty cells become ``""``. Raises :class:`InputError` for a missing file,
    missing columns or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    reader = csv_reader(path, what)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{path}: the {what} lacks the column(s) {', '.join(missing)} "
                         f"(found: {', '.join(columns) or 'no header'})")
    rows = []
    for row in reader:
        if None in row:  # DictReader keeps the cells beyond the header under None
            raise InputError(f"{path} line {reader.line_num}: {len(columns) + len(row[None])} cells, but the "
                             f"header names {len(columns)} columns")
        if any((v or "").strip() for v in row.values()):
            rows.append((reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in row.items()}))
    if not rows:
        raise InputError(f"{path}: the {what} has no rows")
    return rows


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The decoded JSON file at ``path``; :class:`InputError` naming the ``what`` when it cannot be read or parsed."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


def path_in_folder(folder: Path, text: str) -> Path:
    """A path written in a file of ``folder`` (``~`` expanded; a relative one is relative to ``folder``), absolute;
    a series on a DICOMweb server (``dicomweb://...``, :mod:`nodsynth.io.dicom.pacs_cache`): its local cached folder."""
    if text.startswith(REMOTE_PREFIXES):
        from .dicom.pacs_cache import local_series

        return local_series(text)
    return Path(os.path.abspath(folder / os.path.expanduser(text)))


def manifest_path(manifest: Path, text: str) -> Optional[Path]:
    """A path cell of a manifest: relative to the manifest's folder (a ``dicomweb://`` series: its cached
    folder, see :func:`path_in_folder`); None for an empty cell."""
    if not text:
        return None
    if text.startswith(REMOTE_PREFIXES):
        return path_in_folder(manifest.parent, text)
    path = Path(text).expanduser()
    return path if path.is_absolute() else manifest.parent / path


def existing_file(manifest: Path, line: int, column: str, text: str) -> Optional[Path]:
    """:func:`manifest_path` of a cell that must name an existing file (or be empty)."""
    path = manifest_path(manifest, text)
    if path is not None and not path.is_file():
        raise InputError(f"{manifest} line {line}: {column} file not found: {path}")
    return path


def parse_float(text: str, where: str, column: str) -> Optional[float]:
    """A finite number from a cell (None when empty)."""
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"{where}: {column} must be a number, got {text!r}")
    return value
