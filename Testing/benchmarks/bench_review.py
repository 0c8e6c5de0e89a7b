"""Review kit timings on 512 x 512 x 256 CTs: a 100-case two-phase study build, and one review report.

    python Testing/benchmarks/bench_review.py --json out.json [--cases 100] [--cts 4] [--full-spacing-mm 1.0]

The CTs are real LIDC-IDRI-0001 slab slices tiled onto the real DLCS_0001 label map's grid
(``bench_edit.whole_ct_pair``). Half of the ``--cts`` files are "real" (that CT), half "synthetic"
(the CT with model-free nodules inserted, one per synthetic case, subtypes and diameters spread
over HR-LDM's bins); the cases spread evenly over the files. The study is built with the
defaults of ``nodsynth turing build`` (64 mm cubes at the finest spacing, lung box at the coarsest
spacing unless ``--full-spacing-mm``), into a temporary folder removed afterwards.

References computed in the same run:

* study: reading every source CT once plus writing the same number of bytes the study writes
  (raw ``ndarray.tofile``) - the I/O floor of a study build;
* review report: reading the pair and label map plus writing the two CTs again (``write_volume``,
  compressed NIfTI as the inputs) - what any tool that touches the pair pays.

Reads ``../shared/data`` (or ``NODSYNTH_SHARED_DATA``).
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_edit import whole_ct_pair  # noqa: E402
from nodsynth.io.atomic import write_text_atomic
from nodsynth.engines.base import SUBTYPES, InpaintRequest  # noqa: E402
from nodsynth.engines.classic import ClassicEngine  # noqa: E402
from nodsynth.place import placement_regions, resolve_lung, sample_centroids  # noqa: E402
from nodsynth.presets import preset_histogram  # noqa: E402
from nodsynth.review.pairs import ReviewPair, review_pairs  # noqa: E402
from nodsynth.review.study import build_study  # noqa: E402
from nodsynth.review.study_inputs import read_study_inputs  # noqa: E402
from nodsynth.shapes import place_shape, procedural_shape  # noqa: E402
from nodsynth.io.volume_files import read_volume, write_volume

DIAMETERS_MM = (8.0, 14.0, 24.0)


def make_sources(folder: Path, cases: int, cts: int) -> tuple[Path, Path, dict]:
    """Write the CTs and the two manifests; returns their paths and how long the set-up took."""
    start = time.perf_counter()
    ct, labels = whole_ct_pair()
    write_volume(labels, folder / "labels.nii.gz")
    lung, existing = resolve_lung(labelmap=labels)
    regions = placement_regions(lung, max(DIAMETERS_MM), nodules=existing)
    per_ct = -(-cases // cts)
    centres = sample_centroids(regions, "inner", per_ct * cts, seed=0)
    manifests = {"real": [], "synthetic": []}
    for number in range(cts):
        truth = ("real", "synthetic")[number % 2]
        volume, rows = ct, []
        for k, centre in enumerate(centres[number * per_ct:(number + 1) * per_ct]):
            subtype, diameter = SUBTYPES[k % 3], DIAMETERS_MM[(k // 3) % 3]
            if truth == "synthetic":
                mask = place_shape(procedural_shape(seed=k), volume, centre, diameter)
                volume = ClassicEngine().inpaint(InpaintRequest(volume, mask, subtype, preset_histogram(subtype),
                                                                lung_mask=lung, seed=k)).ct
            rows.append([*(f"{v:.2f}" for v in centre), subtype, diameter])
        path = write_volume(volume, folder / f"{truth}_{number}.nii.gz")
        manifests[truth] += [[path.name, "labels.nii.gz", *row] for row in rows]
    paths = []
    for truth, rows in manifests.items():
        paths.append(folder / f"{truth}.csv")
        with open(paths[-1], "w", newline="") as handle:
            csv.writer(handle).writerows([["ct", "labelmap", "coordX", "coordY", "coordZ", "subtype", "diameter_mm"],
                                          *rows])
    return paths[0], paths[1], {"setup_seconds": time.perf_counter() - start, "shape_kji": list(ct.shape_kji)}


def study_reference(folder: Path, study: Path, ct_files: list[Path]) -> float:
    """Seconds to read every source CT once and write as many bytes as the study holds."""
    total = sum(p.stat().st_size for p in study.rglob("*") if p.is_file())
    start = time.perf_counter()
    for path in ct_files:
        read_volume(path)
    block = np.zeros(64 << 20, np.uint8)
    with open(folder / "reference.bin", "wb") as handle:
        for offset in range(0, total, block.size):
            block[:min(block.size, total - offset)].tofile(handle)
    seconds = time.perf_counter() - start
    (folder / "reference.bin").unlink()
    return seconds


def review_timing(folder: Path, real: Path) -> dict:
    """One review report of a 512 x 512 x 256 pair with label map, and the read+write reference."""
    ct, labels = read_volume(real), read_volume(folder / "labels.nii.gz")
    nodules = (np.rint(labels.array) == 23).astype(np.uint8)
    twin = ClassicEngine().inpaint(InpaintRequest(ct, labels.with_array(nodules), "solid", seed=1)).ct
    write_volume(twin, folder / "twin.nii.gz")
    start = time.perf_counter()
    cases = review_pairs([ReviewPair("dlcs", real, folder / "twin.nii.gz", folder / "labels.nii.gz")],
                         folder / "review")
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    for path in (real, folder / "twin.nii.gz", folder / "labels.nii.gz"):
        read_volume(path)
    write_volume(ct, folder / "copy_a.nii.gz")
    write_volume(twin, folder / "copy_b.nii.gz")
    reference = time.perf_counter() - start
    return {"review_report_seconds": seconds, "nodules": len(cases[0].nodules),
            "reference_read_write_seconds": reference, "ratio_to_reference": seconds / reference}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--cases", type=int, default=100, help="study cases (half real, half synthetic)")
    parser.add_argument("--cts", type=int, default=4, help="source CT files (half real, half synthetic)")
    parser.add_argument("--full-spacing-mm", type=float, help="full-context spacing (default: the CTs' own)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_review_") as tmp:
        folder = Path(tmp)
        real_csv, synthetic_csv, figures = make_sources(folder, args.cases, args.cts)
        real, synthetic = read_study_inputs(real_csv, "real"), read_study_inputs(synthetic_csv, "synthetic")
        half = args.cases // 2
        start = time.perf_counter()
        summary = build_study(real, synthetic, folder / "study", half, args.cases - half,
                              full_spacing_mm=args.full_spacing_mm)
        build_seconds = time.perf_counter() - start
        files = [p for p in (folder / "study").rglob("*") if p.is_file()]
        reference = study_reference(folder, folder / "study", sorted(folder.glob("*_[0-9]*.nii.gz")))
        figures.update({
            "cases": args.cases, "phases": summary["phases"], "source_cts": args.cts,
            "spacing_mm": summary["spacing_mm"], "study_files": len(files),
            "study_bytes": sum(p.stat().st_size for p in files), "build_seconds": build_seconds,
            "build_seconds_per_case": build_seconds / (args.cases * len(summary["phases"])),
            "reference_read_and_write_seconds": reference, "build_ratio_to_reference": build_seconds / reference})
        shutil.rmtree(folder / "study")
        figures.update(review_timing(folder, folder / "real_0.nii.gz"))
    write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
