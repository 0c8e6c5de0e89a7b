"""The review report of compared pairs: CSV tables, one JSON, and ``report.html`` with its images.

Written into a folder: ``nodules.csv`` (one row per nodule, :data:`~.compare.NODULE_COLUMNS`),
``regions.csv`` (per lobe and body), ``cases.csv`` (per pair, with the ROI-edit numbers),
``review.json`` (all of it), ``images/<case>_nodule<N>.png`` (the triplets) and ``report.html``:
sortable tables and each nodule's triplet, the images loaded from the files beside it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Sequence

from ..io.atomic import write_csv_atomic, write_text_atomic
from .compare import NODULE_COLUMNS, CaseComparison
from .fidelity import MIN_CONTRAST_HU, REPRODUCED_DICE
from .html import escape, page, table

REGION_COLUMNS = ("case_id", "region", "label", "voxels", "mean_hu_real", "std_hu_real", "mean_hu_synthetic",
                  "std_hu_synthetic", "mean_difference_hu", "jsd")
CASE_COLUMNS = ("case_id", "nodules", "reproduced", "bit_identical_fraction_outside", "psnr_db_box", "ssim_box")
IMAGE_DIR = "images"
NODULE_DIGITS = {**{c: 1 for c in ("x_lps_mm", "y_lps_mm", "z_lps_mm", "volume_mm3", "equivalent_diameter_mm",
                                   "mean_hu_real", "std_hu_real", "mean_hu_synthetic", "std_hu_synthetic",
                                   "contrast_hu")}, "dice": 3, "volume_ratio": 2}
"""Decimals of the HTML nodule table (mm and HU to 0.1; the CSV and JSON keep every digit); others 4."""
REGION_DIGITS = {c: 1 for c in ("mean_hu_real", "std_hu_real", "mean_hu_synthetic", "std_hu_synthetic",
                                "mean_difference_hu")}
NOT_DEFINED = "n/a"


def _jsd_text(jsd) -> str:
    return NOT_DEFINED if jsd is None else f"{jsd:.4f}"


def image_name(case_id: str, nodule: int) -> str:
    """Relative path of a nodule's triplet PNG (case ids made file-name safe)."""
    return f"{IMAGE_DIR}/{re.sub(r'[^A-Za-z0-9_.-]', '_', case_id)}_nodule{nodule}.png"


def report_html(cases: Sequence[CaseComparison], images: Mapping[tuple[str, int], str]) -> str:
    """The ``report.html`` text; ``images`` maps ``(case_id, nodule)`` to the triplet's relative path."""
    nodule_rows = [r for c in cases for r in c.nodule_rows()]
    region_rows = [{"case_id": c.case_id, **r} for c in cases for r in c.regions]
    shown = [{**r, "jsd": NOT_DEFINED if r["jsd"] is None else r["jsd"]} for r in nodule_rows]
    parts = [f'<p class="note">{len(cases)} pair(s), {len(nodule_rows)} nodule(s), '
             f'{sum(bool(r["reproduced"]) for r in nodule_rows)} reproduced (re-segmented Dice &ge; '
             f"{REPRODUCED_DICE:g} and at least {MIN_CONTRAST_HU:g} HU denser than the lung 2-5 mm around it). "
             "JSD: Jensen-Shannon divergence (0..ln 2) of the 40-bin HU histograms (-1000..400 HU), real vs "
             f"synthetic; {NOT_DEFINED} for an inserted nodule: the real CT has lung there, no nodule to compare. "
             "Click a column header to sort.</p>",
             "<h2>Nodules</h2>", table(NODULE_COLUMNS, shown, table_id="nodules", digits=NODULE_DIGITS)]
    if region_rows:
        parts += ["<h2>Lobes and body</h2>", table(REGION_COLUMNS, region_rows, table_id="regions", digits=REGION_DIGITS)]
    if any(c.edit for c in cases):
        parts += ["<h2>Pairs (ROI edits: bit-identical outside the changed region, PSNR / SSIM in its box)</h2>",
                  table(CASE_COLUMNS, [c.summary() for c in cases], table_id="cases")]
    figures = [f'<figure><img src="{escape(images[(r["case_id"], r["nodule"])])}" '
               f'alt="{escape(r["case_id"])} nodule {r["nodule"]}"><figcaption>{escape(r["case_id"])} nodule '
               f'{r["nodule"]}: Dice {r["dice"]:.3f}, JSD {_jsd_text(r["jsd"])} (rows axial / coronal / sagittal; '
               "real | synthetic | synthetic - real; green: conditioning mask, red: re-segmentation)</figcaption></figure>"
               for r in nodule_rows if (r["case_id"], r["nodule"]) in images]
    if figures:
        parts += ["<h2>Nodule images</h2>", "\n".join(figures)]
    return page("Real vs synthetic review", "\n".join(parts))


def write_report(folder: Path, cases: Sequence[CaseComparison], images: Mapping[tuple[str, int], str]) -> list[Path]:
    """Write the CSVs, ``review.json`` and ``report.html`` into ``folder`` (the images are already there)."""
    folder = Path(folder)
    nodule_rows = [r for c in cases for r in c.nodule_rows()]
    region_rows = [{"case_id": c.case_id, **r} for c in cases for r in c.regions]
    return [write_csv_atomic(folder / "nodules.csv", nodule_rows, NODULE_COLUMNS),
            write_csv_atomic(folder / "regions.csv", region_rows, REGION_COLUMNS),
            write_csv_atomic(folder / "cases.csv", [c.summary() for c in cases], CASE_COLUMNS),
            write_text_atomic(folder / "review.json", json.dumps(
                {"reproduced_dice": REPRODUCED_DICE, "reproduced_min_contrast_hu": MIN_CONTRAST_HU,
                 "cases": [c.to_dict() for c in cases]}, indent=1) + "\n"),
            write_text_atomic(folder / "report.html", report_html(cases, images))]
