"""The nodule lists of ``nodsynth evaluate nodules``: one row per nodule-centred crop.

Columns: ``ct`` (or PiNS' ``ct_nifti_file``): the CT file; the nodule centre as ``coordX, coordY,
coordZ`` (LPS mm) or a ``mask`` file (its centroid is the centre); optional ``subtype``. Relative
paths are relative to the CSV's folder.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..io.tables import read_text
from ..errors import InputError

CT_COLUMNS = ("ct", "ct_nifti_file")
CENTRE_COLUMNS = ("coordX", "coordY", "coordZ")


@dataclass(frozen=True)
class NoduleSample:
    """One crop to take: its CT, its centre (LPS mm) or a mask giving it, its subtype, its CSV line."""

    ct: Path
    centre_lps: Optional[tuple[float, float, float]]
    mask: Optional[Path]
    subtype: Optional[str]
    line: int


def _centre(row: dict, where: str) -> Optional[tuple[float, float, float]]:
    texts = [(row.get(c) or "").strip() for c in CENTRE_COLUMNS]
    if not any(texts):
        return None
    try:
        values = tuple(float(t) for t in texts)
    except ValueError:
        raise InputError(f"{where}: the nodule centre {','.join(texts)} is not three numbers (LPS mm)") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{where}: the nodule centre {','.join(texts)} is not finite (NaN or infinite coordinates)")
    return values  # type: ignore[return-value]


def _existing(base: Path, text: str, what: str, where: str) -> Path:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"{where}: the {what} file {path} does not exist")
    return path


def read_nodule_csv(path: str | os.PathLike, side: str) -> list[NoduleSample]:
    """The rows of a nodule CSV; :class:`InputError` names the file and line of any bad row."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{side}: the nodule list {path} does not exist")
    reader = csv.DictReader(read_text(path, "nodule list").splitlines())
    columns = reader.fieldnames or []
    ct_column = next((c for c in CT_COLUMNS if c in columns), None)
    if ct_column is None or not (set(CENTRE_COLUMNS) <= set(columns) or "mask" in columns):
        raise InputError(f"{path}: needs a 'ct' column and either coordX,coordY,coordZ (LPS mm) or 'mask'; "
                         f"found {columns}")
    samples = []
    for line, row in enumerate(reader, start=2):
        where = f"{path}:{line}"
        centre = _centre(row, where)
        mask_text = (row.get("mask") or "").strip()
        if centre is None and not mask_text:
            raise InputError(f"{where}: give the nodule centre (coordX,coordY,coordZ) or a mask")
        samples.append(NoduleSample(
            ct=_existing(path.parent, (row.get(ct_column) or "").strip(), "CT", where), centre_lps=centre,
            mask=None if centre is not None else _existing(path.parent, mask_text, "mask", where),
            subtype=(row.get("subtype") or "").strip() or None, line=line))
    if not samples:
        raise InputError(f"{side}: the nodule list {path} has no rows")
    return samples
