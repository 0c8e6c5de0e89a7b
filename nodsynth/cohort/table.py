"""``cohort.csv``: one row per planned nodule (what the plan wrote and the case jobs read back)."""
from __future__ import annotations

import os

import numpy as np

from ..io.atomic import write_csv_atomic
from ..io.tables import parse_float, read_rows
from ..errors import InputError

COLUMNS = ("case_id", "nodule_id", "source_ct", "source_labelmap", "subtype", "diameter_mm", "location",
           "coordX", "coordY", "coordZ", "shape_source", "histogram_source", "label", "donor_patient_id",
           "engine", "seed")
"""``coordX/Y/Z``: the centre the nodule's shape was placed at (LPS mm); ``diameter_mm``: equivalent sphere."""


def cohort_row(case_id: str, nodule_id: int, source_ct: str, source_labelmap: str, subtype: str, diameter_mm: float,
               location: str, centre_lps: np.ndarray, shape_source: str, histogram_source: str, label: str,
               donor_patient_id: str, engine: str, seed: int) -> dict:
    """One row, numbers written as every cohort table writes them (diameter 0.01 mm, centre 0.001 mm)."""
    return dict(zip(COLUMNS, (case_id, nodule_id, source_ct, source_labelmap, subtype, f"{diameter_mm:.2f}", location,
                              *(f"{v:.3f}" for v in centre_lps), shape_source, histogram_source, label,
                              donor_patient_id, engine, seed)))


def write_cohort(path: str | os.PathLike, rows: list[dict]) -> None:
    """``cohort.csv`` (atomically)."""
    write_csv_atomic(path, rows, COLUMNS)


def read_cohort(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``cohort.csv`` (strings, as written)."""
    return [row for _, row in read_rows(path, COLUMNS, "cohort table")]


def case_rows(rows: list[dict], case_id: str) -> list[dict]:
    """The rows of one case, in nodule order; :class:`InputError` when the case has none."""
    chosen = sorted((r for r in rows if r["case_id"] == case_id), key=lambda r: int(r["nodule_id"]))
    if not chosen:
        raise InputError(f"the cohort table has no nodule of case {case_id!r}")
    return chosen


def centre_lps(row: dict) -> np.ndarray:
    where = f"case {row['case_id']} nodule {row['nodule_id']}"
    return np.array([parse_float(row[c], where, c) for c in ("coordX", "coordY", "coordZ")], dtype=np.float64)

