"""Benchmark reading and writing DICOM CT series against SimpleITK in the same run.

    PYTHONPATH=.:Testing python Testing/benchmarks/bench_dicom.py --slices 256 --repeat 2

A 512 x 512 x N CT (the real LIDC slab's slices, repeated along z) is written by ``nodsynth dicom export``
(its writer, :func:`nodsynth.io.dicom.write.ct_slices`), then read by :func:`nodsynth.io.volume_files.read_volume`
(every header checked, the series chosen by Modality and SOP class) and by SimpleITK's
``ImageSeriesReader`` (GDCM; no checks). Prints seconds per series and the ratio to SimpleITK, and that
both give the same voxels.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from conftest import shared_path
from nodsynth.io.dicom.export import new_patient_and_study
from nodsynth.io.dicom.write import SeriesHeader, ct_slices, save_slices
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume


def best_of(repeat: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import SimpleITK as sitk
    from pydicom.uid import generate_uid

    slab = read_volume(shared_path("lidc_slabs") / "LIDC-IDRI-0001_slab.nrrd")
    array = np.resize(slab.array, (args.slices, *slab.shape_kji[1:]))
    ct = Volume(array, slab.spacing, slab.origin, slab.direction)
    patient, study = new_patient_and_study()
    header = SeriesHeader(patient=patient, study=study, frame_of_reference_uid=generate_uid(),
                          series_instance_uid=generate_uid())
    with tempfile.TemporaryDirectory() as folder:
        written, _ = best_of(1, lambda: save_slices(ct_slices(ct, header), Path(folder)))
        ours, read = best_of(args.repeat, lambda: read_volume(folder))

        def with_sitk():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
            return Volume.from_sitk(reader.Execute())

        reference, judge = best_of(args.repeat, with_sitk)
    same = np.array_equal(read.array, judge.array) and np.allclose(read.origin, judge.origin, atol=1e-4)
    print(f"512 x 512 x {args.slices} CT series: write {written:.2f} s; read {ours:.2f} s (nodsynth) vs "
          f"{reference:.2f} s (SimpleITK) = {ours / reference:.2f}x; same voxels and geometry: {same}")


if __name__ == "__main__":
    main()
