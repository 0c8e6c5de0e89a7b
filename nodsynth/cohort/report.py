"""``cohort report``: a made cohort, planned vs measured per nodule, counts per bin, QC verdicts (CSV + HTML).

Per nodule, on the case's own ``ids`` mask and final CT: equivalent-sphere diameter, location and clearances
(:mod:`.measure`), mean and median HU, and the **re-estimated subtype**: the subtype whose LIDC mean histogram
(:func:`nodsynth.presets.preset_histogram`) is nearest (Jensen-Shannon) to the nodule's HU histogram.
Per bin: the planned count, and how many nodules of that subtype measure inside the bin.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.atomic import write_csv_atomic, write_text_atomic
from ..io.tables import read_json
from ..engines import SUBTYPES
from ..errors import InputError
from ..histogram import hu_histogram, jensen_shannon
from ..presets import preset_histogram
from ..review.html import escape, page, table
from ..io.volume_files import read_volume
from .made import MadeCase, made_cases
from .measure import measure_case
from .plan import PLAN_FILES

NODULE_COLUMNS = ("case_id", "nodule_id", "subtype", "estimated_subtype", "diameter_mm", "measured_diameter_mm",
                  "location", "measured_location", "pleura_mm", "clearance_mm", "inside_lung", "mean_hu", "median_hu",
                  "qc_passed")
BIN_COLUMNS = ("subtype", "bin_mm", "planned", "measured_in_bin")


def estimated_subtype(values_hu: np.ndarray) -> str:
    """The subtype whose mean LIDC histogram is nearest (Jensen-Shannon) to these voxels' HU histogram."""
    histogram = hu_histogram(np.asarray(values_hu, dtype=np.float64))
    return min(SUBTYPES, key=lambda s: jensen_shannon(histogram, preset_histogram(s)))


def case_records(case: MadeCase, pleura_clearance_mm: float) -> list[dict]:
    ids = read_volume(case.ids)
    ct = np.asarray(read_volume(case.ct).array)
    sources = [read_volume(case.provenance[k]) if case.provenance[k] else None for k in ("source_ct", "source_labelmap")]
    rows = [n.row for n in case.nodules]
    labels = np.asarray(ids.array)
    records = []
    for measured in measure_case(rows, ids, sources[0] if sources[1] is None else None, sources[1], pleura_clearance_mm):
        values = ct[labels == measured["nodule_id"]].astype(np.float64)
        records.append({**measured, "subtype": rows[measured["nodule_id"] - 1]["subtype"],
                        "estimated_subtype": estimated_subtype(values), "mean_hu": round(float(values.mean()), 1),
                        "median_hu": round(float(np.median(values)), 1), "qc_passed": case.provenance.get("qc_passed")})
    return records


def bin_rows(records: list[dict], bins: list[dict]) -> list[dict]:
    return [{"subtype": b["subtype"], "bin_mm": f"{b['lo_mm']:g}-{b['hi_mm']:g}", "planned": b["count"],
             "measured_in_bin": sum(r["subtype"] == b["subtype"] and b["lo_mm"] <= r["measured_diameter_mm"] < b["hi_mm"]
                                    for r in records)} for b in bins]


def write_report(folder: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, Path, list[dict]]:
    """``out/report.csv`` (one row per nodule), ``out/bins.csv`` and ``out/report.html``; returns the records."""
    folder, out = Path(folder), Path(out)
    facts = read_json(folder / PLAN_FILES[2], "cohort plan facts")
    if "recipe" in facts:
        raise InputError(f"{folder} is a cohort recipe (nodules shrunk from real ones, no bins or placement rules "
                         "to report against); read its cohort.csv, or export it with nodsynth cohort export")
    records = [r for case in made_cases(folder) for r in case_records(case, facts["pleura_clearance_mm"])]
    bins = bin_rows(records, facts["bins"])
    write_csv_atomic(out / "report.csv", [{c: r[c] for c in NODULE_COLUMNS} for r in records], NODULE_COLUMNS)
    write_csv_atomic(out / "bins.csv", bins, BIN_COLUMNS)
    agree = sum(r["estimated_subtype"] == r["subtype"] for r in records)
    summary = (f"<p>{len(records)} nodules; re-estimated subtype equals the planned one for {agree}; "
               f"QC: {escape(_qc_line(records))}. Diameters are equivalent-sphere diameters (mm); distances between "
               "voxel centres.</p>")
    body = (summary + "<h2>Counts per bin</h2>" + table(BIN_COLUMNS, bins) + "<h2>Nodules: planned vs measured</h2>"
            + table(NODULE_COLUMNS, records, digits={"mean_hu": 1, "median_hu": 1}))
    html_path = write_text_atomic(out / "report.html", page(f"Cohort report: {folder.name}", body))
    return out / "report.csv", html_path, records


def _qc_line(records: list[dict]) -> str:
    verdicts = [r["qc_passed"] for r in records]
    if all(v is None for v in verdicts):
        return "not checked (no QC statistics given to the twins)"
    return f"{sum(v is True for v in verdicts)} nodules in passing CTs, {sum(v is False for v in verdicts)} in failed-QC CTs"
