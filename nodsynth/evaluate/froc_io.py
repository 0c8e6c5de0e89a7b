"""The LUNA16 files of a FROC evaluation, read and checked.

* annotations: ``seriesuid,coordX,coordY,coordZ,diameter_mm`` (LPS mm), one row per nodule;
* excluded findings (LUNA16's ``annotations_excluded.csv``, optional): the same columns; a
  negative diameter means 10 mm, as LUNA16's evaluation reads it;
* detections: ``seriesuid,coordX,coordY,coordZ,probability`` (LPS mm);
* scans: one series UID per line (LUNA16's series list; a first line ``seriesuid`` is a header).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io.tables import read_text
from ..errors import InputError

COORD_COLUMNS = ("coordX", "coordY", "coordZ")
EXCLUDED_DEFAULT_DIAMETER_MM = 10.0


@dataclass(frozen=True)
class Findings:
    """Rows of one file: scan of each row, centres ``(n, 3)`` LPS mm and one value per row
    (diameter in mm or probability)."""

    scans: tuple[str, ...]
    centres: np.ndarray
    values: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.scans)


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {what} is {text} (NaN or infinite)")
    return value


def read_findings(path: str | os.PathLike, value_column: str, excluded: bool = False) -> Findings:
    """Rows of an annotation (``diameter_mm``) or detection (``probability``) CSV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    reader = csv.DictReader(read_text(path, "findings table").splitlines())
    needed = ("seriesuid",) + COORD_COLUMNS + (value_column,)
    missing = [c for c in needed if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(needed)}")
    scans, centres, values = [], [], []
    for line, row in enumerate(reader, start=2):
        where = f"{path}:{line}"
        scan = (row["seriesuid"] or "").strip()
        if not scan:
            raise InputError(f"{where}: empty seriesuid")
        centres.append([_number(row[c] or "", c, where) for c in COORD_COLUMNS])
        value = _number(row[value_column] or "", value_column, where)
        if value_column == "diameter_mm" and value <= 0:
            if not excluded:
                raise InputError(f"{where}: diameter_mm must be positive, got {value}")
            value = EXCLUDED_DEFAULT_DIAMETER_MM
        scans.append(scan)
        values.append(value)
    return Findings(tuple(scans), np.asarray(centres, dtype=np.float64).reshape(-1, 3),
                    np.asarray(values, dtype=np.float64), str(path))


def read_scan_list(path: str | os.PathLike) -> list[str]:
    """Series UIDs, one per line (first field of a CSV line); duplicates are an error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"the scan list {path} does not exist")
    scans = [line.split(",")[0].strip() for line in read_text(path, "scan list").splitlines()]
    scans = [s for s in scans if s]
    if scans and scans[0] == "seriesuid":
        scans = scans[1:]
    if not scans:
        raise InputError(f"the scan list {path} names no scan")
    seen: set[str] = set()
    for scan in scans:
        if scan in seen:
            raise InputError(f"the scan list {path} names {scan} more than once")
        seen.add(scan)
    return scans


def evaluated_scans(scan_list: Optional[Sequence[str]], files: Sequence[Findings]) -> list[str]:
    """The scans evaluated: ``scan_list`` (every file's scans must be in it) or every scan named in a file."""
    if scan_list is None:
        return sorted({s for f in files for s in f.scans})
    known = set(scan_list)
    for findings in files:
        for line, scan in enumerate(findings.scans, start=2):
            if scan not in known:
                raise InputError(f"{findings.source}:{line}: scan {scan} is not in the --scans list")
    return list(scan_list)
