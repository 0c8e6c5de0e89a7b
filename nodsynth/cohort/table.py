"""``cohort.csv``: one row per planned nodule (what the plan wrote and the case jobs read back)."""
from __future__ import annotations

import os

import numpy as np

from ..casetables import parse_float, read_rows
from ..errors import InputError

COLUMNS = ("case_id", "nodule_id", "source_ct", "source_labelmap", "subtype", "diameter_mm", "location",
           "coordX", "coordY", "coordZ", "shape_source", "histogram_source", "label", "donor_patient_id",
           "engine", "seed")
"""``coordX/Y/Z``: the centre the nodule's shape was placed at (LPS mm); ``diameter_mm``: equivalent sphere."""


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

