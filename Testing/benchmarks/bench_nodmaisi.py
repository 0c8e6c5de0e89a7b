"""NodMAISI timings on this machine with the full-size MAISI-v2 networks (random weights).

Prints per-step and decode seconds for the ROI path (a 128^3-voxel box = 32^3 latent) and for a
whole 256 x 256 x 128 volume (64 x 64 x 32 latent), and writes JSON with

* ``roi_edit_seconds``: one ROI edit (``NodMAISIEngine.edit`` growing a nodule of the demo patient:
  encode the 128^3 box, embed its label bit-planes, sample, decode the blended part, blend) run with
  ``--steps`` steps and extrapolated to ``--total-steps`` (30) with the measured per-step time
  (target <= 180 s);
* ``full_volume_estimated_seconds``: regenerating a whole 512 x 512 x 256 volume at the same
  number of steps, estimated from the 256 x 256 x 128 measurements (per-step and embedding cost
  scale with the voxel count, the decode with the number of sliding-window tiles; target >= 10 x
  ``roi_edit_seconds``).

Only ``--steps`` (default 2) sampling steps are run per path and the per-step time is the median
of the steps after the first; the JSON says so. A decode tile of the whole volume is timed once
and multiplied by the tile count. Run on a quiet machine for reportable figures.

    python Testing/benchmarks/bench_nodmaisi.py --json out.json [--steps 2] [--skip-full]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from nodsynth.engines import EditRequest
from nodsynth.engines.maisi import build_networks, decode_latent, randomize_zero_parameters
from nodsynth.engines.maisi.codec import decode_window, window_count
from nodsynth.engines.nodmaisi.conditioning import label_bitplanes, spacing_tensor
from nodsynth.engines.nodmaisi.sampling import embedded_condition, make_scheduler, sample_latent, seeded_noise
from nodsynth.engines.maisi.orientation import NetworkAxes
from nodsynth.engines.nodmaisi import NodMAISIEngine
from nodsynth.phantom import make_demo_patient

ROI_VOXELS = 128


def timed_sampling(nets, labels_xyz: np.ndarray, spacing_xyz, steps: int) -> dict:
    """Embedding seconds and per-step seconds of ``steps`` sampling steps on ``labels_xyz``."""
    bits = label_bitplanes(labels_xyz)
    start = time.perf_counter()
    with torch.no_grad(), embedded_condition(nets.controlnet, bits):
        embed_seconds = time.perf_counter() - start
    stamps = [time.perf_counter()]
    latent_shape = (1, 4) + tuple(n // 4 for n in labels_xyz.shape)
    sample_latent(nets.controlnet, nets.diffusion_unet, make_scheduler(nets.config), seeded_noise(latent_shape, 0),
                  bits, spacing_tensor(spacing_xyz), steps, progress=lambda f, m: stamps.append(time.perf_counter()))
    step_seconds = np.diff(stamps).tolist()
    # sample_latent embeds again before its first step: subtract that from the first step
    step_seconds[0] -= embed_seconds
    per_step = statistics.median(step_seconds[1:]) if len(step_seconds) > 1 else step_seconds[0]
    return {"latent_shape": list(latent_shape), "embed_seconds": embed_seconds,
            "measured_step_seconds": step_seconds, "per_step_seconds": per_step}


def grown_nodule(labels_kji: np.ndarray) -> np.ndarray:
    """The label map with its first nodule (23) grown by 2 voxels into the body: the edit benchmarked."""
    from scipy import ndimage

    components, _ = ndimage.label(labels_kji == 23)
    grown = ndimage.binary_dilation(components == 1, iterations=2) & (labels_kji != 0)
    edited = labels_kji.copy()
    edited[grown] = 23
    return edited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output JSON file")
    parser.add_argument("--steps", type=int, default=2, help="sampling steps actually run per path (default 2)")
    parser.add_argument("--total-steps", type=int, default=30, help="steps of a real run (default 30)")
    parser.add_argument("--skip-full", action="store_true", help="only the ROI path")
    args = parser.parse_args()

    torch.manual_seed(0)
    t0 = time.perf_counter()
    nets = build_networks("maisi_v2", "cpu")
    for seed, module in enumerate((nets.autoencoder, nets.diffusion_unet, nets.controlnet)):
        randomize_zero_parameters(module, seed)
    print(f"built full-size networks in {time.perf_counter() - t0:.1f} s", flush=True)
    patient = make_demo_patient()
    axes = NetworkAxes.of(patient.labelmap)
    labels_xyz = np.ascontiguousarray(axes.to_network(patient.labelmap.array))
    spacing_xyz = axes.spacing_xyz(patient.labelmap)
    window = decode_window(nets.config, nets.device)  # the window the engine decodes with on this device
    overlap = nets.config["decode"]["overlap"]

    # ---------------------------------------------------------------- ROI path (the engine's edit)
    engine = NodMAISIEngine(networks=nets, roi_box_voxels=ROI_VOXELS)
    edited = patient.labelmap.with_array(grown_nodule(patient.labelmap.array))
    stamps: list[tuple[float, str]] = []
    t = time.perf_counter()
    edit = engine.edit(EditRequest(patient.ct, patient.labelmap, edited, steps=args.steps),
                       progress=lambda f, m: stamps.append((time.perf_counter(), m)))
    measured_total = time.perf_counter() - t
    info = edit.info
    step_times = [s for s, m in stamps if m.startswith("step ")]
    step_seconds = np.diff(step_times).tolist()
    per_step = statistics.median(step_seconds) if step_seconds else info["sampling_seconds"] / args.steps
    roi_edit = measured_total + (args.total_steps - args.steps) * per_step
    box = [b - a for a, b in zip(info["box_start_kji"], info["box_stop_kji"])]
    print(f"ROI box {box} voxels: encode {info['encode_seconds']:.1f} s; embed + {args.steps} steps "
          f"{info['sampling_seconds']:.1f} s; per step {per_step:.1f} s; decode {info['decode_seconds']:.1f} s "
          f"(latent window {info['decoded_latent_window']})", flush=True)
    print(f"roi_edit_seconds ({args.total_steps} steps): {roi_edit:.1f} s", flush=True)
    result = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "load_average_1min": os.getloadavg()[0]},
        "networks": "maisi_v2 full size, random weights, float32 CPU",
        "method": (f"{args.steps} sampling steps run per path; per-step = median of the measured steps "
                   f"(after the first for the whole volume); totals extrapolated to {args.total_steps} steps"),
        "roi": {"box_voxels_kji": box, "measured_seconds": measured_total, "measured_steps": args.steps,
                "per_step_seconds": per_step, "measured_step_seconds": step_seconds, **{
                    k: info[k] for k in ("encode_seconds", "sampling_seconds", "decode_seconds",
                                         "decoded_latent_window", "changed_voxels")}},
        "roi_edit_seconds": roi_edit,
        "roi_edit_repeat_seconds": roi_edit - info["encode_seconds"],
        "roi_edit_repeat_note": "derived: a further edit of the same scan and box reuses the cached encoded box",
    }

    # ---------------------------------------------------------------- whole 256 x 256 x 128
    if not args.skip_full:
        full = timed_sampling(nets, labels_xyz, spacing_xyz, args.steps)
        print(f"256x256x128 embed: {full['embed_seconds']:.1f} s; per step ({full['latent_shape'][2:]} latent): "
              f"{full['per_step_seconds']:.1f} s", flush=True)
        latent_size = full["latent_shape"][2:]
        tiles = window_count(latent_size, window, overlap)
        t = time.perf_counter()
        decode_latent(nets.autoencoder, torch.randn((1, 4) + tuple(window)), 1.0, window, overlap)
        tile_seconds = time.perf_counter() - t
        decode_256 = tiles * tile_seconds
        print(f"256x256x128 decode: {tiles} tiles x {tile_seconds:.1f} s = {decode_256:.1f} s (tile timed once)", flush=True)
        scale = 8.0  # 512x512x256 has 8x the voxels of 256x256x128
        tiles_512 = window_count([2 * n for n in latent_size], window, overlap)
        estimate = scale * full["embed_seconds"] + args.total_steps * scale * full["per_step_seconds"] + tiles_512 * tile_seconds
        result["volume_256x256x128"] = {**full, "decode_tiles": tiles, "decode_tile_seconds": tile_seconds,
                                        "decode_seconds_estimated": decode_256,
                                        "twin_seconds_estimated": full["embed_seconds"]
                                        + args.total_steps * full["per_step_seconds"] + decode_256}
        result["volume_512x512x256"] = {"decode_tiles": tiles_512, "method": "embedding and per-step x 8 (voxel count); decode = tiles x tile seconds"}
        result["full_volume_estimated_seconds"] = estimate
        result["full_over_roi"] = estimate / roi_edit
        print(f"full_volume_estimated_seconds (512x512x256, {args.total_steps} steps): {estimate:.0f} s "
              f"= {estimate / roi_edit:.1f} x roi_edit_seconds", flush=True)
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
