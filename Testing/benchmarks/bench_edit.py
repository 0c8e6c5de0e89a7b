"""Model-free re-render after resizing every nodule of a whole CT at once (ClassicEngine.edit).

    python Testing/benchmarks/bench_edit.py --json out.json [--percent 25]

The CT is 512 x 512 x 256 int16 (real LIDC-IDRI-0001 slab slices stacked on the real DLCS_0001
label map's grid); every nodule of the map is resized to ``--percent`` and the CT re-rendered.
Reports the seconds, how each separate edit was textured (a real parenchyma patch or the
quantile-matched synthetic fallback), and - as the reference computed in the same run - the time of
``np.quantile`` with one quantile per voxel against :func:`nodsynth.render.edit.quantiles_of` on
200,000 samples for ``--quantile-voxels`` voxels, the step that used to dominate the fallback (numpy
partitions the samples once per distinct quantile).

Reads ``../shared/data`` (or ``NODSYNTH_SHARED_DATA``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import shared_path  # noqa: E402
from nodsynth.io.atomic import write_text_atomic
from nodsynth.augment import resize_nodule  # noqa: E402
from nodsynth.engines.base import EditRequest  # noqa: E402
from nodsynth.engines.classic import ClassicEngine  # noqa: E402
from nodsynth.labelmap import as_integer_labelmap  # noqa: E402
from nodsynth.render.edit import quantiles_of  # noqa: E402
from nodsynth.io.volume_files import read_volume


def whole_ct_pair():
    """(CT, label map): the DLCS_0001 map and LIDC-IDRI-0001 slab slices tiled onto its grid."""
    labels = as_integer_labelmap(read_volume(shared_path("dlcs_labelmaps", "DLCS_0001_seg_sh.nii.gz")))
    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd")).array
    reps = -(-labels.shape_kji[0] // slab.shape[0])
    return labels.with_array(np.tile(slab, (reps, 1, 1))[:labels.shape_kji[0]].astype(np.int16)), labels


def quantile_reference(voxels: int, seed: int = 0) -> dict:
    """Seconds of np.quantile (one quantile per voxel) and of quantiles_of, same inputs, same result."""
    rng = np.random.default_rng(seed)
    samples, fractions = rng.normal(-800.0, 60.0, 200_000), rng.uniform(size=voxels)
    start = time.perf_counter()
    reference = np.quantile(samples, fractions)
    numpy_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fast = quantiles_of(samples, fractions)
    fast_seconds = time.perf_counter() - start
    return {"voxels": voxels, "np_quantile_seconds": numpy_seconds, "quantiles_of_seconds": fast_seconds,
            "speedup": numpy_seconds / max(fast_seconds, 1e-9),
            "max_abs_difference_hu": float(np.max(np.abs(reference - fast)))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--percent", type=float, default=25.0, help="target volume of every nodule, %% of now")
    parser.add_argument("--quantile-voxels", type=int, default=2_000_000,
                        help="voxels (quantiles) of the np.quantile reference, drawn from 200,000 samples")
    args = parser.parse_args(argv)

    ct, labels = whole_ct_pair()
    edited = resize_nodule(labels, "all", args.percent).labelmap
    start = time.perf_counter()
    result = ClassicEngine().edit(EditRequest(ct, labels, edited, seed=0))
    seconds = time.perf_counter() - start
    groups = result.info.get("texture_groups", [])
    figures = {"shape_kji": list(ct.shape_kji), "percent": args.percent, "edit_seconds": seconds,
               "separate_edits": len(groups), "textures": [g["texture"] for g in groups],
               "changed_ct_voxels": result.info["changed_ct_voxels"],
               "quantile_reference": quantile_reference(args.quantile_voxels)}
    write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
