"""Benchmark nodule resizing on real label maps: exact distance method vs the reference erosion.

    python Testing/benchmarks/bench_augment.py --labelmaps ../shared/data/dlcs_labelmaps \
        --percents 75,50,25 --json out.json

For every label map (``*.nii*`` / ``*.nrrd`` in the folder) and percent, all nodules are resized
with ``method="distance"`` and with ``method="erosion"`` (the reference); the time per map covers
the resize including the lobe refill (reading and writing files excluded). The error is
``achieved - target`` in percentage points of the original volume, over nodules of at least
``--min-voxels`` voxels.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from nodsynth.augment import resize_nodule
from nodsynth.labelmap import load_labelmap
from nodsynth.io.volume_files import VOLUME_SUFFIXES

TARGET_MAX_ABS_ERROR_PTS = 1.0
TARGET_SECONDS_PER_MAP = 1.5
TARGET_SPEEDUP = 10.0


def timed_resize(labelmap, percent: float, method: str):
    start = time.perf_counter()
    result = resize_nodule(labelmap, "all", percent, method=method)
    return result, time.perf_counter() - start


def summarise(errors: list[float], seconds: list[float]) -> dict:
    return {"max_abs_error_pts": max(abs(e) for e in errors) if errors else None,
            "mean_abs_error_pts": statistics.fmean(abs(e) for e in errors) if errors else None,
            "seconds_per_map_median": statistics.median(seconds),
            "seconds_per_map_max": max(seconds)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labelmaps", type=Path, required=True, help="folder of MAISI label maps")
    parser.add_argument("--percents", default="75,50,25", help="comma-separated target percents")
    parser.add_argument("--min-voxels", type=int, default=50, help="nodules smaller than this are not scored")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.labelmaps.iterdir() if p.name.lower().endswith(VOLUME_SUFFIXES))
    if not paths:
        print(f"no label maps in {args.labelmaps}", file=sys.stderr)
        return 2
    percents = [float(p) for p in args.percents.split(",") if p.strip()]
    errors = {"distance": [], "erosion": []}
    seconds = {"distance": [], "erosion": []}
    nodules, cases = 0, []
    for path in paths:
        labelmap = load_labelmap(path)
        for percent in percents:
            for method in ("distance", "erosion"):
                result, spent = timed_resize(labelmap, percent, method)
                seconds[method].append(spent)
                scored = [s for s in result.nodules if s.voxels_before >= args.min_voxels]
                errors[method].extend(s.error_points for s in scored)
                cases.append({"map": path.name, "percent": percent, "method": method, "seconds": round(spent, 4),
                              "nodules": [{"id": s.nodule_id, "voxels_before": s.voxels_before,
                                           "voxels_after": s.voxels_after,
                                           "achieved_percent": round(s.achieved_percent, 3)} for s in result.nodules]})
                print(f"{path.name} {percent:g}% {method:<8} {spent:7.3f} s  achieved "
                      + ", ".join(f"{s.achieved_percent:.2f}%" for s in result.nodules), flush=True)
        nodules += sum(1 for s in result.nodules if s.voxels_before >= args.min_voxels)
    ours, reference = summarise(errors["distance"], seconds["distance"]), summarise(errors["erosion"], seconds["erosion"])
    speedup = reference["seconds_per_map_median"] / ours["seconds_per_map_median"]
    report = {"n_maps": len(paths), "n_nodules": nodules, "percents": percents, "min_voxels": args.min_voxels,
              **ours, **{f"reference_{k}": v for k, v in reference.items()},
              "speedup_median": speedup,
              "targets": {"max_abs_error_pts": ours["max_abs_error_pts"] <= TARGET_MAX_ABS_ERROR_PTS,
                          "seconds_per_map_median": ours["seconds_per_map_median"] <= TARGET_SECONDS_PER_MAP,
                          "speedup": speedup >= TARGET_SPEEDUP},
              "cases": cases}
    print(json.dumps({k: v for k, v in report.items() if k != "cases"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
