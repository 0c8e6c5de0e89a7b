"""The ``classification`` table read by ``nodsynth downstream``: one row per nodule.

Columns ``case_id, nodule_id, patient_id, ct, coordX, coordY, coordZ, label`` and optionally
``subtype, diameter_mm, synthetic, donor_patient_id``; ``ct`` is a path relative to the CSV's folder,
the centre is in LPS mm. ``label`` is a class index (0, 1, ...).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..io.tables import existing_file, parse_float, read_rows
from ..errors import InputError

REQUIRED_COLUMNS = ("case_id", "nodule_id", "patient_id", "ct", "coordX", "coordY", "coordZ", "label")
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes"), ("", "0", "false", "no")


@dataclass(frozen=True)
class Nodule:
    """One row of a classification table."""

    case_id: str
    nodule_id: str
    patient_id: str
    ct: Path
    centre_lps: tuple[float, float, float]
    label: int
    subtype: str = ""
    diameter_mm: Optional[float] = None
    synthetic: bool = False
    donor_patient_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.case_id, self.nodule_id

    def patients(self) -> set[str]:
        """The patients whose data this nodule carries (its CT's and its donor's)."""
        return {p for p in (self.patient_id, self.donor_patient_id) if p}


def _flag(text: str, where: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise InputError(f"{where}: synthetic must be true or false, got {text!r}")


def _label(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(f"{where}: label must be a class index 0, 1, ..., got {text!r}")
    return value


def _nodule(path: Path, line: int, row: dict) -> Nodule:
    where = f"{path} line {line}"
    for column in ("case_id", "nodule_id", "patient_id", "ct"):
        if not row[column]:
            raise InputError(f"{where}: {column} is empty")
    centre = tuple(parse_float(row[c], where, c) for c in ("coordX", "coordY", "coordZ"))
    if any(c is None for c in centre):
        raise InputError(f"{where}: coordX, coordY and coordZ (LPS mm) are all needed")
    return Nodule(case_id=row["case_id"], nodule_id=row["nodule_id"], patient_id=row["patient_id"],
                  ct=existing_file(path, line, "ct", row["ct"]), centre_lps=centre,
                  label=_label(row["label"], where), subtype=row.get("subtype", ""),
                  diameter_mm=parse_float(row.get("diameter_mm", ""), where, "diameter_mm"),
                  synthetic=_flag(row.get("synthetic", ""), where), donor_patient_id=row.get("donor_patient_id", ""))


def read_nodules(path: str | os.PathLike, synthetic: bool, what: str) -> list[Nodule]:
    """The nodules of a classification table; every row must be synthetic (``synthetic``) or every row real.

    A table of synthetic nodules may leave the ``synthetic`` column out (all rows are then synthetic).
    """
    path = Path(path)
    nodules = []
    for line, row in read_rows(path, REQUIRED_COLUMNS, what):
        nodule = _nodule(path, line, row)
        if synthetic and not row.get("synthetic"):
            nodule = Nodule(**{**nodule.__dict__, "synthetic": True})
        if nodule.synthetic != synthetic:
            raise InputError(f"{path} line {line}: a {'real' if synthetic else 'synthetic'} nodule in the {what}; "
                             f"give real nodules with --real and synthetic ones with --synthetic")
        nodules.append(nodule)
    _require_unique(path, nodules)
    return nodules


def _require_unique(path: Path, nodules: Sequence[Nodule]) -> None:
    seen = set()
    for nodule in nodules:
        if nodule.key in seen:
            raise InputError(f"{path}: case_id {nodule.case_id!r} nodule_id {nodule.nodule_id!r} appears twice")
        seen.add(nodule.key)
