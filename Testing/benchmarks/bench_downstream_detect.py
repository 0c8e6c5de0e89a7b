"""Benchmark ``nodsynth downstream detect`` on the demo patient's CT (CPU), bundle of random weights.

    python Testing/benchmarks/bench_downstream_detect.py --work /tmp/detect_bench --threads 2 --json out.json

The bundle is the test's (``Testing/test_downstream_detect.py``: the published config, a randomly initialised
RetinaNet whose class prior is raised so it reports its 300 boxes per CT, as a trained one with findings does).
Timed, each as its own ``nodsynth downstream detect`` process (wall time of the whole command: start, weights,
reading, resampling, inference, CSV):

* ``crop_small``: a 60 mm cube of the demo CT around the solid nodule, ``--widen-factor 0.0625``, patch 64x64x32;
* ``crop_full``: the same crop at ``--widen-factor 1`` (the bundle's network), same patch;
* ``ct_small``: the whole demo CT (256 x 256 x 128 at 1.25 x 1.25 x 2 mm) at 0.0625, patch 192x192x96.

Reference: ``crop_small``. Printed: each time and its ratio to the reference; and the whole CT at full width
projected as ``ct_small + (crop_full - crop_small) x V_ct / V_crop`` (V: voxels after resampling to the bundle's
spacing; the width's extra cost grows with the voxels, the rest is in ``ct_small``); it is hours on a laptop CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))


def _bundle(folder: Path, widen: float) -> Path:
    import torch
    from test_downstream_detect import write_bundle

    from nodsynth.downstream.detect_bundle import read_bundle
    from nodsynth.downstream.detect_network import retinanet

    if (folder / "models" / "model.pt").is_file():
        return folder
    write_bundle(folder, {})
    torch.manual_seed(0)
    network = retinanet(read_bundle(folder), widen)
    with torch.no_grad():
        network.classification_head.cls_logits.bias.zero_()
    torch.save(network.state_dict(), folder / "models" / "model.pt")
    return folder


def _inputs(work: Path) -> tuple[Path, Path]:
    from nodsynth.cli.main import main
    from nodsynth.io.volume_files import read_volume, write_volume

    phantom = work / "demo" / "phantom"
    if not (phantom / "ct.nii.gz").is_file():
        assert main(["demo", "--out", str(work / "demo"), "--steps", "phantom"]) == 0
    ct = read_volume(phantom / "ct.nii.gz")
    solid = next(r for r in (phantom / "points.csv").read_text().splitlines()[1:] if r.startswith("solid,"))
    centre = ct.world_to_kji([float(v) for v in solid.split(",")[5:8]])
    half = np.rint(30.0 / ct.spacing[::-1]).astype(int)
    write_volume(ct.crop(np.subtract(centre, half), np.add(centre, half)), work / "crop.nii.gz")
    (work / "crop.csv").write_text("seriesuid,ct\ncrop,crop.nii.gz\n")
    (work / "ct.csv").write_text(f"seriesuid,ct\ndemo,{os.path.relpath(phantom / 'ct.nii.gz', work)}\n")
    return work / "crop.csv", work / "ct.csv"


def _resampled_voxels(cts: Path) -> float:
    """Voxels of the list's one CT at the bundle's spacing (the test's config)."""
    from test_downstream_detect import BUNDLE_CONFIG

    from nodsynth.io.volume_files import read_volume_grid

    spacing = next(t["pixdim"] for t in BUNDLE_CONFIG["preprocessing"]["transforms"] if t["_target_"] == "Spacingd")
    grid = read_volume_grid(cts.parent / cts.read_text().splitlines()[1].split(",")[1])
    return float(np.prod(np.asarray(grid.size_ijk) * grid.spacing / np.asarray(spacing)))


def _timed(work: Path, name: str, bundle: Path, cts: Path, widen: float, patch: str, threads: int) -> dict:
    out = work / f"{name}.csv"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nodsynth", "downstream", "detect", "--bundle", str(bundle), "--cts",
                    str(cts), "--out", str(out), "--widen-factor", str(widen), "--patch-voxels", patch,
                    "--threads", str(threads)], check=True)
    seconds = time.perf_counter() - start
    rows = len(out.read_text().splitlines()) - 1
    print(f"{name:11s} widen {widen:<7g} patch {patch:10s} {seconds:8.1f} s  {rows} detections", flush=True)
    return {"seconds": round(seconds, 2), "widen_factor": widen, "patch_voxels": patch, "detections": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-whole-ct", action="store_true", help="only the two crop runs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    crop, whole = _inputs(args.work)
    small, full = _bundle(args.work / "bundle_small", 0.0625), _bundle(args.work / "bundle_full", 1.0)
    results = {"crop_small": _timed(args.work, "crop_small", small, crop, 0.0625, "64,64,32", args.threads),
               "crop_full": _timed(args.work, "crop_full", full, crop, 1.0, "64,64,32", args.threads)}
    if not args.skip_whole_ct:
        results["ct_small"] = _timed(args.work, "ct_small", small, whole, 0.0625, "192,192,96", args.threads)
    reference = results["crop_small"]["seconds"]
    for name, entry in results.items():
        entry["ratio_to_crop_small"] = round(entry["seconds"] / reference, 2)
        print(f"{name:11s} {entry['ratio_to_crop_small']:7.2f} x crop_small")
    if "ct_small" in results:
        scale = _resampled_voxels(args.work / "ct.csv") / _resampled_voxels(crop)
        projected = results["ct_small"]["seconds"] + (results["crop_full"]["seconds"] - reference) * scale
        results["ct_full_projected_s"] = round(projected, 1)
        print(f"whole demo CT at full width, projected: {projected:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
