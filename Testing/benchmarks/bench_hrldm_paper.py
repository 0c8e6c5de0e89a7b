"""HR-LDM paper mode vs ROI mode, same run: wall time and peak memory of an inpaint and of one training step
on a 128^3 crop of the demo patient (``nodsynth demo``'s phantom) around a placed 10 mm nodule.

Each measurement runs in its own process reading the crop from files, so its peak memory is its own:
the process's peak resident set (CPU; ``added_mib`` = the peak above the high-water mark once the
networks and the crop were loaded) or ``torch.cuda.max_memory_allocated`` (GPU). Random weights (speed does not depend on the
values); the full-size networks (``hrldm`` / ``hrldm_paper`` on MAISI-v2) by default, ``--tiny`` for
``hrldm_tiny`` / ``hrldm_paper_tiny``.

* ``inpaint``: DDIM with ``--steps`` steps (encode, denoise, decode; ROI: its latent ROI and blend;
  paper: the whole crop's latent, every step re-noising the background);
* ``train_prepare``: making the training example (encode the 64^3 patch / the whole crop);
* ``train_step``: one optimizer step of Algorithm 1 at the mode's default batch (ROI 2, paper 1).

    python Testing/benchmarks/bench_hrldm_paper.py --json out.json [--tiny] [--steps 10] [--threads N] [--device cpu]
    prlimit --as=12884901888 python Testing/benchmarks/bench_hrldm_paper.py --steps 5 --tasks train_step  # memory cap

A measurement that fails (e.g. out of memory under a cap) is recorded with its error; the others go on.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {("roi", False): "hrldm", ("paper", False): "hrldm_paper",
           ("roi", True): "hrldm_tiny", ("paper", True): "hrldm_paper_tiny"}
CROP = 128


def crop_case():
    """``(ct, mask)``: a 128^3 crop of the demo patient around a 10 mm nodule placed in the inner lung."""
    import numpy as np

    from nodsynth.phantom import make_demo_patient
    from nodsynth.place import placement_regions, resolve_lung, sample_centroids
    from nodsynth.shapes import place_shape, procedural_shape

    patient = make_demo_patient(0)
    lung, existing = resolve_lung(labelmap=patient.labelmap)
    centre = sample_centroids(placement_regions(lung, 10.0, nodules=existing), "inner", 1, seed=0)[0]
    mask = place_shape(procedural_shape(1.2, 0.3, 0.1, seed=0), patient.ct, centre, 10.0)
    start = np.clip(np.array(patient.ct.world_to_kji(centre)) - CROP // 2, 0, np.array(patient.ct.shape_kji) - CROP)
    return patient.ct.crop(start, start + CROP), mask.crop(start, start + CROP)


def measure(mode: str, task: str, tiny: bool, steps: int, device_name: str, folder: Path) -> dict:
    """One measurement in this process: ``{"seconds", "peak_mib", ...}``."""
    import torch

    from nodsynth.engines import InpaintRequest
    from nodsynth.engines.hrldm import HRLDMEngine, HRLDMNet, load_hrldm_config
    from nodsynth.engines.maisi import build_autoencoder, resolve_device
    from nodsynth.presets import preset_histogram
    from nodsynth.train.hrldm import HRLDMTrainer, collate, make_sample
    from nodsynth.train.hrldm_paper import make_whole_sample
    from nodsynth.io.volume_files import read_volume

    device = resolve_device(device_name)
    config = load_hrldm_config(CONFIGS[(mode, tiny)])
    torch.manual_seed(0)
    network = HRLDMNet(config).to(device)
    autoencoder = build_autoencoder(config["autoencoder_config"], device).eval()
    ct, mask = read_volume(folder / "ct.nii.gz"), read_volume(folder / "mask.nii.gz")
    histogram = preset_histogram("part-solid")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = {}
    start = time.perf_counter()
    if task == "inpaint":
        engine = HRLDMEngine.from_networks(network, autoencoder, config)
        result = engine.inpaint(InpaintRequest(ct, mask, "part-solid", histogram, steps=steps, sampler="ddim", seed=0))
        info = {k: result.info[k] for k in ("latent_roi_size", "latent_size", "changed_voxels") if k in result.info}
    else:
        make = make_whole_sample if mode == "paper" else make_sample
        sample = make(ct, mask, "part-solid", autoencoder, config, histogram)
        info["latent_size"] = list(sample.latent.shape[1:])
        if task == "train_step":
            batch = 1 if mode == "paper" else 2
            trainer = HRLDMTrainer(network, autoencoder, config, 1.0, config["training"]["lambda_hist"], 1e-5, 10, device)
            generator = torch.Generator().manual_seed(0)
            timesteps = torch.randint(0, 1000, (batch,), generator=generator).to(device)
            noise = torch.randn((batch, *sample.latent.shape), generator=generator).to(device)
            start = time.perf_counter()  # the step alone
            trainer.step(collate([sample] * batch, device), timesteps, noise)
            info["batch"] = batch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = added = torch.cuda.max_memory_allocated(device) / 2**20
        kind = "GPU allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        added, kind = peak - baseline, "CPU resident above the loaded process"
    return {"mode": mode, "task": task, "seconds": round(seconds, 3), "peak_mib": round(peak, 1),
            "added_mib": round(added, 1), "peak_kind": kind,
            "config": config["name"], **info}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--tiny", action="store_true", help="tiny networks (hrldm_tiny / hrldm_paper_tiny)")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps of the inpaint (default 10)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--tasks", default="inpaint,train_prepare,train_step")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "TASK", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.tiny, args.steps, args.device, Path(args.one[2]))))
        return 0
    import tempfile

    from nodsynth.io.volume_files import write_volume

    folder = Path(tempfile.mkdtemp(prefix="bench_hrldm_paper_"))
    ct, mask = crop_case()
    write_volume(ct, folder / "ct.nii.gz")
    write_volume(mask, folder / "mask.nii.gz")
    common = [sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps), "--device", args.device] \
        + (["--tiny"] if args.tiny else []) + (["--threads", str(args.threads)] if args.threads else [])
    rows = []
    for task in args.tasks.split(","):
        pair = {}
        for mode in ("roi", "paper"):
            done = subprocess.run(common + ["--one", mode, task, str(folder)], capture_output=True, text=True, check=False)
            if done.returncode != 0:  # e.g. out of memory under prlimit --as: recorded, the other figures go on
                last = (done.stderr.strip().splitlines() or [f"killed by signal {-done.returncode} (the kernel's "
                                                              "out-of-memory killer sends 9)"])[-1]
                pair[mode] = {"mode": mode, "task": task, "error": last[-300:]}
            else:
                pair[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(pair[mode]))
        if any("error" in pair[m] for m in pair):
            rows.append({"task": task, **pair})
            print(f"{task}: " + "; ".join(f"{m} failed: {pair[m]['error']}" for m in pair if "error" in pair[m]))
            continue
        rows.append({"task": task, "roi": pair["roi"], "paper": pair["paper"],
                     "time_ratio_paper_over_roi": round(pair["paper"]["seconds"] / pair["roi"]["seconds"], 2),
                     "memory_ratio_paper_over_roi": round(pair["paper"]["peak_mib"] / pair["roi"]["peak_mib"], 2)})
        print(f"{task}: paper {pair['paper']['seconds']:.2f} s / +{pair['paper']['added_mib']:.0f} MiB, "
              f"roi {pair['roi']['seconds']:.2f} s / +{pair['roi']['added_mib']:.0f} MiB -> time x{rows[-1]['time_ratio_paper_over_roi']}, "
              f"peak memory x{rows[-1]['memory_ratio_paper_over_roi']} ({pair['roi']['peak_kind']}; peaks "
              f"{pair['paper']['peak_mib']:.0f} / {pair['roi']['peak_mib']:.0f} MiB)")
    report = {"machine": platform.platform(), "processor": platform.processor(), "device": args.device,
              "tiny": args.tiny, "crop_voxels": CROP, "ddim_steps": args.steps, "threads": args.threads, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
