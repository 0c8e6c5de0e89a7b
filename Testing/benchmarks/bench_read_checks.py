"""Cost of the voxel-data checks of ``read_volume`` (truncation, NaN/Inf) on real files.

    PYTHONPATH=. python Testing/benchmarks/bench_read_checks.py [--data ../shared/data] [--repeat 3]

Reference: the same file read by SimpleITK into a :class:`~nodsynth.volume.Volume` without the checks, in the
same run. Prints the median times and their ratio per file (the real DLCS float32 label map, an LIDC slab
NRRD, an LIDC VOI).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import SimpleITK as sitk

from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

FILES = ("dlcs_labelmaps/DLCS_0001_seg_sh.nii.gz", "lidc_slabs/LIDC-IDRI-0001_slab.nrrd",
         "lidc_vois/image/LIDC-IDRI-0001_R_1.nii.gz")


def median_seconds(read, path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = [args.data / name for name in FILES]
    if not all(p.is_file() for p in paths):
        print(f"real data not available under {args.data}", file=sys.stderr)
        return 2
    for path in paths:
        reference = median_seconds(lambda p: Volume.from_sitk(sitk.ReadImage(str(p))), path, args.repeat)
        checked = median_seconds(read_volume, path, args.repeat)
        print(f"{path.name}: SimpleITK alone {reference * 1000:.0f} ms, read_volume with the checks "
              f"{checked * 1000:.0f} ms, ratio {checked / reference:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
