"""Inputs for the cohort tests and benchmark: slabs of demo patients (CT and MAISI label map, 1.25 x 1.25 x 2 mm),
and helpers that plan a spec, run its jobs and measure every made case against the plan."""
from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

SLAB_START_KJI, SLAB_STOP_KJI = (40, 0, 0), (100, 256, 256)
SPEC = {"engine": "classic", "counts": {"part-solid": {"6-10": 3, "10-20": 2}, "ground-glass": {"10-20": 3}},
        "subpleural_fraction": 0.3, "nodules_per_ct": [1, 3], "clearance_mm": 5, "pleura_clearance_mm": 3, "seed": 0}
"""The issue's example spec (sources added per test)."""


@functools.lru_cache(maxsize=8)
def demo_patient(seed: int):
    from nodsynth.phantom import make_demo_patient

    return make_demo_patient(seed)


def write_sources(folder: Path, seeds=(0, 1), slab: bool = True) -> Path:
    """``folder/cts/demo<seed>.nii.gz`` and ``folder/maps/demo<seed>.nii.gz`` for each demo patient seed."""
    from nodsynth.io.volume_files import write_volume

    for seed in seeds:
        patient = demo_patient(seed)
        for kind, volume in (("cts", patient.ct), ("maps", patient.labelmap)):
            if slab:
                volume = volume.crop(SLAB_START_KJI, SLAB_STOP_KJI)
            write_volume(volume, folder / kind / f"demo{seed}.nii.gz")
    return folder


def write_spec(folder: Path, **changes) -> Path:
    spec = {"sources": {"ct": "cts/*.nii.gz", "labelmap": "maps/*.nii.gz"}, **SPEC, **changes}
    path = folder / f"spec_{len(list(folder.glob('spec_*.json')))}.json"
    path.write_text(json.dumps(spec))
    return path


def run_cases(manifest: Path, ops=("cohort_case", "cohort_edit"), **options) -> Path:
    """Run the manifest's jobs of ``ops`` (inline, with ``run_manifest`` ``options``) through a manifest holding
    only those rows."""
    from nodsynth.batch import run_manifest

    rows = [line for line in manifest.read_text().splitlines() if json.loads(line)["op"] in ops]
    subset = manifest.with_name("subset.jsonl")
    subset.write_text("".join(r + "\n" for r in rows))
    summary = run_manifest(subset, executor="inline", **options)
    assert summary.ok, summary
    return subset


def measured(plan: Path, pleura_clearance_mm: float) -> list[dict]:
    """Every planned nodule measured on its case's ``ids`` output (see nodsynth.cohort.measure)."""
    from nodsynth.io.tables import manifest_path
    from nodsynth.cohort.measure import measure_case
    from nodsynth.cohort.table import case_rows, read_cohort
    from nodsynth.io.volume_files import read_volume

    table = plan / "cohort.csv"
    rows = read_cohort(table)
    records = []
    for case in sorted({r["case_id"] for r in rows}):
        mine = case_rows(rows, case)
        sources = [manifest_path(table, mine[0][c]) for c in ("source_ct", "source_labelmap")]
        ct, labelmap = (read_volume(p) if p else None for p in sources)
        ids = read_volume(plan / "cases" / case / "ids.nii.gz")
        records += [{**m, "subtype": r["subtype"]} for m, r in
                    zip(measure_case(mine, ids, None if labelmap is not None else ct, labelmap, pleura_clearance_mm),
                        mine)]
    return records


def bin_counts(records: list[dict], spec: dict) -> dict:
    """(subtype, bin) -> how many measured nodules' planned diameter falls in each of the spec's bins."""
    counts = Counter()
    for r in records:
        for text in spec["counts"][r["subtype"]]:
            lo, hi = (float(v) for v in text.split("-"))
            if lo <= r["diameter_mm"] < hi:
                counts[(r["subtype"], text)] += 1
    return dict(counts)


def violations(records: list[dict], clearance_mm: float) -> list[str]:
    """What breaks the issue's rules: outside the lung, wrong location, too close, diameter off by > 1 mm."""
    bad = []
    for r in records:
        name = f"{r['case_id']}#{r['nodule_id']}"
        if not r["inside_lung"]:
            bad.append(f"{name} outside the lung")
        if r["measured_location"] != r["location"]:
            bad.append(f"{name} planned {r['location']}, measured {r['measured_location']} ({r['pleura_mm']} mm)")
        if r["clearance_mm"] < clearance_mm:
            bad.append(f"{name} {r['clearance_mm']} mm from another nodule")
        if abs(r["measured_diameter_mm"] - r["diameter_mm"]) > 1.0:
            bad.append(f"{name} {r['measured_diameter_mm']} mm, planned {r['diameter_mm']} mm")
    return bad
