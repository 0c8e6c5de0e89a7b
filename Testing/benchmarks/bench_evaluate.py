"""2.5D feature extraction cost on CPU: seconds and peak memory per 512 x 512 x 256 CT with a
ResNet-50-sized network (MONAI ``resnet50``, 2-D, random weights, 23.5 M parameters).

The CT is real: the LIDC-IDRI-0001 slab of ``../shared/data/lidc_slabs`` (512 x 512 x 16) stacked
16 times along z to 256 slices, written once as a NIfTI file in a temporary folder. Each
measurement runs in its own process, so the peak resident memory (``ru_maxrss``) is its own:

* ``ours_ct``: the project's per-file path, stage by stage (hash, read + HU check, RAS / pad / crop /
  clip), then ``--sample`` central slices of each plane through the network ``--batch-size`` at a
  time; ``seconds_per_ct`` adds the stages to the measured seconds per slice of each plane times
  its full count (256 axial slices of 512 x 512, 512 + 512 of 512 x 256). ``--sample 0`` runs
  every slice and the figure is then measured, not extrapolated (the JSON says which);
* ``ours_plane`` and ``published_plane`` (the same-run reference): ``--slices`` central axial
  slices of the prepared CT through the project's batched path and through the published script's
  ``get_features_2p5d`` (all slices in one forward pass, as the script runs it): seconds per slice,
  peak memory and their ratios.

Timings on a shared machine are noisy; only the same-run ratios compare.

    python Testing/benchmarks/bench_evaluate.py --json out.json [--batch-size 16] [--slices 16] [--sample 16]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

SHAPE_XYZ = (512, 512, 256)
SLAB = HERE.parent.parent.parent / "shared" / "data" / "lidc_slabs" / "LIDC-IDRI-0001_slab.nrrd"


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def network():
    import torch
    from monai.networks.nets import resnet50

    torch.manual_seed(0)
    return resnet50(spatial_dims=2, n_input_channels=3, feed_forward=False).eval()


def write_ct(folder: Path) -> Path:
    """The benchmark CT (see the module docstring)."""
    from nodsynth.volume import Volume
    from nodsynth.io.volume_files import read_volume, write_volume

    slab = read_volume(SLAB)
    stacked = np.concatenate([slab.array] * (SHAPE_XYZ[2] // slab.shape_kji[0]), axis=0)
    volume = Volume(stacked, slab.spacing, slab.origin, slab.direction)
    return write_volume(volume, folder / "ct_512x512x256.nii.gz")


def prepared(path: Path) -> np.ndarray:
    from nodsynth.evaluate.ct_prep import PrepSettings, prepare_ct
    from nodsynth.io.volume_files import read_volume

    return prepare_ct(read_volume(path), PrepSettings(SHAPE_XYZ))


def ours_ct(net, path: Path, batch_size: int, sample: int) -> dict:
    """The ``ours_ct`` measurement (see the module docstring)."""
    from nodsynth.evaluate.ct_prep import PrepSettings, prepare_ct
    from nodsynth.evaluate.features_2p5d import FeatureOptions, plane_features
    from nodsynth.evaluate.planes import PLANES, SLICE_AXIS, around_centre, plane_stack
    from nodsynth.segment.checks import require_ct_in_hu
    from nodsynth.io.volume_files import read_volume
    from nodsynth.weights import sha256_of

    stamps, cpu_start = [time.perf_counter()], time.process_time()
    sha256_of(path)
    stamps.append(time.perf_counter())
    volume = read_volume(path)
    require_ct_in_hu(volume)
    stamps.append(time.perf_counter())
    array = prepare_ct(volume, PrepSettings(SHAPE_XYZ))
    del volume
    stamps.append(time.perf_counter())
    total_cpu = time.process_time() - cpu_start
    out = {"hash_seconds": stamps[1] - stamps[0], "read_seconds": stamps[2] - stamps[1],
           "prepare_seconds": stamps[3] - stamps[2], "planes": {}}
    total = stamps[3] - stamps[0]
    for plane in PLANES:
        count = SHAPE_XYZ[SLICE_AXIS[plane]]
        start, stop = around_centre(count, sample or count)
        began, cpu = time.perf_counter(), time.process_time()
        features = plane_features(plane_stack(array, plane, start, stop), net, "cpu", FeatureOptions(False, batch_size))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        out["planes"][plane] = {"slices_run": int(len(features)), "seconds": seconds, "cpu_seconds": cpu,
                                "seconds_per_slice": seconds / len(features), "slices_per_ct": count}
        total += seconds / len(features) * count
        total_cpu += cpu / len(features) * count
    out.update(seconds_per_ct=total, cpu_seconds_per_ct=total_cpu, extrapolated=bool(sample),
               peak_rss_mib=peak_rss_mib(), slices=sum(p["slices_run"] for p in out["planes"].values()))
    out["seconds"] = sum(p["seconds"] for p in out["planes"].values())
    out["cpu_seconds"] = sum(p["cpu_seconds"] for p in out["planes"].values())
    out["seconds_per_slice"] = out["seconds"] / out["slices"]
    return out


def run_mode(mode: str, path: Path, batch_size: int, slices: int) -> dict:
    """One measurement in this process (called in a child process)."""
    import torch

    from nodsynth.evaluate.features_2p5d import FeatureOptions, plane_features
    from nodsynth.evaluate.planes import around_centre, plane_stack

    net = network()
    if mode == "ours_ct":
        return ours_ct(net, path, batch_size, slices)
    array = prepared(path)
    start_z, stop_z = around_centre(SHAPE_XYZ[2], slices)
    start, cpu = time.perf_counter(), time.process_time()
    if mode == "ours_plane":
        features = plane_features(plane_stack(array, "xy", start_z, stop_z), net, "cpu", FeatureOptions(False, batch_size))
    else:
        from nomaisi_anchor import load_fid_script

        script = load_fid_script()
        ratio = slices / SHAPE_XYZ[2]
        image = torch.from_numpy(array)[None, None]
        features = script.get_features_2p5d(image, net, center_slices=True, center_slices_ratio=ratio, xy_only=True)[0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "slices": int(len(features)),
            "seconds_per_slice": seconds / len(features), "peak_rss_mib": peak_rss_mib()}


def child(mode: str, path: Path, batch_size: int, slices: int) -> dict:
    """Run one measurement in a fresh process and print its line."""
    command = [sys.executable, __file__, "--child", mode, "--ct", str(path), "--batch-size", str(batch_size),
               "--slices", str(slices), "--json", os.devnull]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{mode:16s} {result['slices']:5d} slices  {result['seconds']:8.1f} s  "
          f"{result['seconds_per_slice']:.3f} s/slice  (CPU {result.get('cpu_seconds', 0):.1f} s)  peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output JSON file")
    parser.add_argument("--batch-size", type=int, default=16, help="slices per forward pass of the project (default 16)")
    parser.add_argument("--slices", type=int, default=16, help="axial slices of the plane comparison (default 16)")
    parser.add_argument("--sample", type=int, default=16,
                        help="central slices per plane timed for the per-CT figure (0: all; default 16)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--ct", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child, args.ct, args.batch_size, args.slices)))
        return 0
    if not SLAB.is_file():
        print(f"benchmark CT source missing: {SLAB} (a fresh clone has no ../shared/data)", file=sys.stderr)
        return 1
    import torch

    with tempfile.TemporaryDirectory() as folder:
        path = write_ct(Path(folder))
        results = {"ct_shape_xyz": list(SHAPE_XYZ), "network": "MONAI resnet50 (2-D, random weights)",
                   "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
                   "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"}
        for mode in ("ours_plane", "published_plane", "ours_ct"):
            results[mode] = child(mode, path, args.batch_size, args.sample if mode == "ours_ct" else args.slices)
    plane, published = results["ours_plane"], results["published_plane"]
    results["plane_seconds_ratio_ours_over_published"] = plane["seconds_per_slice"] / published["seconds_per_slice"]
    results["plane_cpu_ratio_ours_over_published"] = plane["cpu_seconds"] / published["cpu_seconds"]
    results["plane_peak_rss_ratio_ours_over_published"] = plane["peak_rss_mib"] / published["peak_rss_mib"]
    print(f"plane: ours / published = {results['plane_seconds_ratio_ours_over_published']:.2f} x wall time, "
          f"{results['plane_cpu_ratio_ours_over_published']:.2f} x process CPU time, "
          f"{results['plane_peak_rss_ratio_ours_over_published']:.2f} x peak memory")
    ct = results["ours_ct"]
    how = "extrapolated from the slices run" if ct["extrapolated"] else "measured"
    print(f"seconds per 512x512x256 CT (three planes, CPU, {how}): {ct['seconds_per_ct']:.1f} wall, "
          f"{ct['cpu_seconds_per_ct']:.1f} process CPU "
          f"(hash {ct['hash_seconds']:.1f}, read {ct['read_seconds']:.1f}, prepare {ct['prepare_seconds']:.1f}); "
          f"peak RSS {ct['peak_rss_mib']:.0f} MiB")
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
