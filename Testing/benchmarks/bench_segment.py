"""Click-segmentation benchmark on the LIDC nodule VOIs (issue 2).

    python Testing/benchmarks/bench_segment.py --vois ../shared/data/lidc_vois --json out.json

Clicks each nodule at its ``nodules.csv`` centre (no box) with the default method and runs the
``pins`` protocol (box = the csv bounding box) in the same pass; reports Dice against the expert
mask overall, for ground-glass (Texture "Non-Solid/GGO") and small (< 6 mm) nodules, and the
latencies, with the ratios ours / PiNS of the median and p95 latency (same run). Also prints Dice
on the two whole-slice slabs (``--slabs``) against the 2-of-4 masks.

Counts the nodules the "no nodule at this point" rule refuses (the mask stands out from the lung 2-5 mm
around it by less than ``MIN_CONTRAST_HU``; issue 20: at most 1 %), lists them, and gives the Dice over
the rest beside the Dice over all.

``--per-nodule`` writes each nodule's Dice, latencies and a SHA-1 of its mask; ``--compare-masks``
with such a file from an earlier run counts the masks that changed and lists their Dice before/after.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's nodsynth, not an installed one

from nodsynth.io.atomic import write_text_atomic
from nodsynth.errors import NodsynthError
from nodsynth.segment import segment_nodule
from nodsynth.io.volume_files import read_volume

SLAB_CASES = ("LIDC-IDRI-0001", "LIDC-IDRI-0002")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary arrays (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def mask_sha1(mask: np.ndarray) -> str:
    """SHA-1 of a binary mask's shape and bits: equal digests, equal masks."""
    return hashlib.sha1(str(mask.shape).encode() + np.packbits(mask.astype(bool)).tobytes()).hexdigest()


def bbox_size_mm(row: dict) -> tuple[float, float, float]:
    """PiNS box (w, h, d in mm) from the csv's LPS bounding box."""
    return tuple(abs(float(row[f"bboxHigh{a}"]) - float(row[f"bboxLow{a}"])) for a in "XYZ")  # type: ignore[return-value]


def evaluate_row(folder: Path, row: dict, method: str, with_pins: bool = True) -> dict:
    ct = read_volume(folder / "image" / row["file"])
    truth = read_volume(folder / "nodule_mask" / row["file"]).array > 0
    point = [float(row[f"coord{a}"]) for a in "XYZ"]
    box = np.minimum(bbox_size_mm(row), np.asarray(ct.size_ijk) * ct.spacing)
    out = {"file": row["file"], "texture": row["Texture"], "diameter_mm": float(row["diameter_mm"]), "error": "",
           "contrast_hu": float("nan"), "low_contrast": False}
    runs = [("", {"method": method})]
    if with_pins:
        runs.append(("pins_", {"method": "pins", "box_size_mm": np.maximum(box, ct.spacing)}))
    for prefix, kwargs in runs:
        t0 = time.perf_counter()
        try:
            result = segment_nodule(ct, point, **kwargs)
            mask = result.mask.array
            if not prefix:
                out["contrast_hu"] = float("nan") if result.contrast_hu is None else result.contrast_hu
                out["low_contrast"] = result.low_contrast
        except NodsynthError as exc:  # e.g. the csv centre lies outside the crop: counted as Dice 0
            mask, out["error"] = np.zeros_like(truth), str(exc)
        out[f"{prefix}latency_ms"] = (time.perf_counter() - t0) * 1e3
        out[f"{prefix}dice"] = dice(mask, truth)
        if not prefix:
            out["mask_sha1"] = mask_sha1(mask)
    return out


def summarise(results: list[dict]) -> dict:
    def mean(key, rows):
        return float(np.mean([r.get(key, np.nan) for r in rows])) if rows else float("nan")

    ggo = [r for r in results if r["texture"] == "Non-Solid/GGO"]
    small = [r for r in results if r["diameter_mm"] < 6]
    lat = np.array([r["latency_ms"] for r in results])
    pins_lat = np.array([r.get("pins_latency_ms", np.nan) for r in results])
    kept = [r for r in results if not r["low_contrast"]]
    refused = [r for r in results if r["low_contrast"]]
    return {"n": len(results), "n_errors": sum(bool(r["error"]) for r in results), "dice_mean": mean("dice", results), "dice_median": float(np.median([r["dice"] for r in results])),
            "n_refused_low_contrast": len(refused), "refused_fraction": len(refused) / len(results),
            "refused": [{k: r[k] for k in ("file", "texture", "diameter_mm", "contrast_hu", "dice")} for r in refused],
            "dice_mean_kept": mean("dice", kept), "n_kept": len(kept),
            "contrast_hu_p1": float(np.nanpercentile([r["contrast_hu"] for r in results], 1)),
            "dice_ggo": mean("dice", ggo), "n_ggo": len(ggo), "dice_small": mean("dice", small), "n_small": len(small),
            "latency_ms_median": float(np.median(lat)), "latency_ms_p95": float(np.percentile(lat, 95)),
            "pins_dice_mean": mean("pins_dice", results), "pins_dice_ggo": mean("pins_dice", ggo),
            "pins_dice_small": mean("pins_dice", small),
            "pins_latency_ms_median": float(np.median(pins_lat)), "pins_latency_ms_p95": float(np.percentile(pins_lat, 95)),
            "latency_ratio_median": float(np.median(lat) / np.median(pins_lat)),
            "latency_ratio_p95": float(np.percentile(lat, 95) / np.percentile(pins_lat, 95))}


def compare_masks(results: list[dict], earlier_csv: Path) -> dict:
    """Nodules whose mask differs from an earlier ``--per-nodule`` file's (by SHA-1), with Dice before/after."""
    with open(earlier_csv, newline="") as handle:
        earlier = {row["file"]: row for row in csv.DictReader(handle)}
    changed = [{"file": r["file"], "dice_before": float(earlier[r["file"]]["dice"]), "dice_after": r["dice"]}
               for r in results if r["file"] in earlier and earlier[r["file"]]["mask_sha1"] != r["mask_sha1"]]
    return {"n_compared": sum(r["file"] in earlier for r in results), "n_changed": len(changed), "changed": changed}


def latency_lines(summary: dict) -> str:
    """Ours and PiNS median / p95 latency with the ratios ours / PiNS."""
    return "\n".join(f"latency {name:6s} ours {summary[f'latency_ms_{key}']:8.2f} ms   PiNS "
                     f"{summary[f'pins_latency_ms_{key}']:8.2f} ms   ours/PiNS {summary[f'latency_ratio_{key}']:.3f}"
                     for name, key in (("median", "median"), ("p95", "p95")))


def slab_dice(slabs: Path, method: str) -> dict:
    """Dice of a click at the 2-of-4 mask's centroid on each whole-slice slab."""
    out = {}
    for case in SLAB_CASES:
        ct_path, truth_path = slabs / f"{case}_slab.nrrd", slabs / f"{case}_slab_nodule_2of4.nrrd"
        if not ct_path.is_file():
            continue
        ct, truth = read_volume(ct_path), read_volume(truth_path)
        kji = np.argwhere(truth.array > 0)
        # the click: the mask voxel closest to the mask's centroid
        centre = kji[np.argmin(((kji - kji.mean(axis=0)) ** 2).sum(axis=1))]
        point = ct.index_to_world(centre[::-1].astype(float))
        result = segment_nodule(ct, point, method=method)
        out[case] = dice(result.mask.array, truth.array > 0)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vois", type=Path, required=True, help="the lidc_vois folder (nodules.csv, image/, nodule_mask/)")
    parser.add_argument("--slabs", type=Path, default=None, help="the lidc_slabs folder (default: beside --vois)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the summary JSON")
    parser.add_argument("--method", default="kmeans")
    parser.add_argument("--limit", type=int, default=0, help="only the first N nodules (0 = all)")
    parser.add_argument("--half", choices=("even", "odd"), help="only even/odd csv rows (generalisation split)")
    parser.add_argument("--skip-pins", action="store_true", help="do not run the pins protocol (faster)")
    parser.add_argument("--per-nodule", type=Path, help="also write per-nodule results (CSV)")
    parser.add_argument("--compare-masks", type=Path, help="a --per-nodule CSV of an earlier run: count changed masks")
    args = parser.parse_args(argv)

    with open(args.vois / "nodules.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if args.half:
        rows = rows[(0 if args.half == "even" else 1)::2]
    if args.limit:
        rows = rows[:args.limit]
    results = [evaluate_row(args.vois, row, args.method, not args.skip_pins) for row in rows]
    summary = summarise(results)
    slabs = args.slabs or args.vois.parent / "lidc_slabs"
    if slabs.is_dir():
        summary["slab_dice"] = slab_dice(slabs, args.method)
    if args.compare_masks:
        summary["masks"] = compare_masks(results, args.compare_masks)
    write_text_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    if args.per_nodule:
        with open(args.per_nodule, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(results[0]))
            writer.writeheader()
            writer.writerows(results)
    print(json.dumps(summary, indent=2))
    if not args.skip_pins:
        print(latency_lines(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
