"""Classification tables (the cohort ``classification`` export's columns) made from the real LIDC VOIs, for the
downstream tests and benchmark: real nodules (malignancy 1-2 -> 0, 4-5 -> 1, 3 dropped) and synthetic ones
made model-free (a real VOI's nodule re-rendered with another patient's nodule HU histogram, that donor's label)."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest

LIDC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lidc_vois"
COLUMNS = ["case_id", "nodule_id", "patient_id", "ct", "coordX", "coordY", "coordZ", "label", "subtype",
           "diameter_mm", "synthetic", "donor_patient_id"]
SUBTYPE_OF_TEXTURE = {"Solid": "solid", "Solid/Mixed": "solid", "Part Solid/Mixed": "part-solid",
                      "Non-Solid/Mixed": "ground-glass", "Non-Solid/GGO": "ground-glass"}


def lidc_rows() -> list[dict]:
    """The binary-malignancy LIDC nodules (3 dropped), sorted by file; skips when the data is absent."""
    table = LIDC / "nodules.csv"
    if not table.is_file():
        pytest.skip(f"real LIDC VOIs not found at {LIDC}")
    rows = []
    with open(table, newline="") as f:
        for r in csv.DictReader(f):
            malignancy = int(r["Malignancy_value"])
            if malignancy != 3:
                rows.append({**r, "label": int(malignancy >= 4)})
    return sorted(rows, key=lambda r: r["file"])


def write_table(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def real_row(table_dir: Path, r: dict) -> dict:
    return {"case_id": r["file"].replace(".nii.gz", ""), "nodule_id": r["nodule_id"], "patient_id": r["patient_id"],
            "ct": os.path.relpath(LIDC / "image" / r["file"], table_dir), "coordX": r["coordX"], "coordY": r["coordY"],
            "coordZ": r["coordZ"], "label": r["label"], "subtype": SUBTYPE_OF_TEXTURE.get(r["Texture"], ""),
            "diameter_mm": r["diameter_mm"], "synthetic": "false", "donor_patient_id": ""}


def synthetic_rows(table_dir: Path, sources: Sequence[dict], donors: Sequence[dict], seed: int = 0,
                   subtypes: Sequence[str] = ()) -> list[dict]:
    """One model-free synthetic nodule per source: its VOI's nodule re-rendered (classic engine) with a donor's
    nodule HU histogram; the donor (another patient, drawn seeded) gives the label and, unless ``subtypes`` are
    given (used in turn), the subtype."""
    from nodsynth.engines.base import InpaintRequest
    from nodsynth.histogram import hu_histogram
    from nodsynth.render.insert import insert_nodule
    from nodsynth.io.volume_files import read_volume, write_volume

    rng = np.random.default_rng(seed)
    rows = []
    for n, source in enumerate(sources):
        candidates = [d for d in donors if d["patient_id"] != source["patient_id"]]
        donor = candidates[rng.integers(len(candidates))]
        donor_ct, donor_mask = (read_volume(LIDC / k / donor["file"]) for k in ("image", "nodule_mask"))
        histogram = hu_histogram(np.asarray(donor_ct.array)[np.asarray(donor_mask.array) > 0])
        ct, mask = (read_volume(LIDC / k / source["file"]) for k in ("image", "nodule_mask"))
        subtype = subtypes[n % len(subtypes)] if subtypes else SUBTYPE_OF_TEXTURE.get(donor["Texture"], "solid")
        result = insert_nodule(InpaintRequest(ct, mask, subtype, histogram=histogram, seed=seed + n))
        out = table_dir / "synthetic" / f"syn{n:04d}.nii.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_volume(result.volumes["ct"], out)
        rows.append({**real_row(table_dir, source), "case_id": f"syn{n:04d}", "nodule_id": "1",
                     "ct": os.path.relpath(out, table_dir), "label": donor["label"], "subtype": subtype,
                     "synthetic": "true", "donor_patient_id": donor["patient_id"]})
    return rows


def patient_subset(rows: Sequence[dict], patients: int, seed: int = 0, both_labels: bool = True) -> list[dict]:
    """The rows of ``patients`` patients drawn seeded (alternating labels so both classes appear)."""
    by_patient: dict[str, list] = {}
    for r in rows:
        by_patient.setdefault(r["patient_id"], []).append(r)
    names = sorted(by_patient)
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    if both_labels:
        ones = [p for p in names if by_patient[p][0]["label"] == 1]
        zeros = [p for p in names if by_patient[p][0]["label"] == 0]
        paired = [p for pair in zip(ones, zeros) for p in pair]
        names = paired + [p for p in names if p not in set(paired)]
    return [r for p in names[:patients] for r in by_patient[p]]


def tables(folder: Path, patients: int, synthetic_from: Optional[float] = 0.6, seed: int = 0,
           subtypes: Sequence[str] = ()) -> tuple[Path, Optional[Path]]:
    """``(real.csv, synthetic.csv or None)`` in ``folder``: ``patients`` LIDC patients; synthetic nodules made
    from the nodules of the first ``synthetic_from`` share of the patients (so others remain for the test)."""
    rows = patient_subset(lidc_rows(), patients, seed)
    real = write_table(folder / "real.csv", [real_row(folder, r) for r in rows])
    if not synthetic_from:
        return real, None
    linked = sorted({r["patient_id"] for r in rows})[:int(round(synthetic_from * patients))]
    sources = [r for r in rows if r["patient_id"] in linked]
    return real, write_table(folder / "synthetic.csv", synthetic_rows(folder, sources, sources, seed, subtypes))
