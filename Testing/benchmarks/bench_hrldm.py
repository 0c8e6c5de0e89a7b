"""HR-LDM timings on this machine with the full-size ``Resources/configs/hrldm.json`` network and the
MAISI-v2 autoencoder (random weights: speed does not depend on the values).

* ``step_seconds_roi32``: one denoising step (U-Net + histogram MLP forward, no gradient) on a 32^3 latent ROI;
* ``ddim50_roi_seconds``: a whole DDIM-50 inpaint of a 10 mm nodule in the demo patient (ROI encode,
  50 steps, decode, blend), with the latent ROI size it used.

    python Testing/benchmarks/bench_hrldm.py --json out.json [--threads N] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from nodsynth.engines import InpaintRequest
from nodsynth.engines.hrldm import HRLDMEngine, HRLDMNet, load_hrldm_config
from nodsynth.engines.maisi import build_autoencoder, resolve_device


def step_seconds(network: HRLDMNet, device: torch.device, latent: int = 32, repeats: int = 3) -> float:
    """Median seconds of one noise prediction on a ``latent``^3 ROI."""
    x = torch.randn(1, network.latent_channels, latent, latent, latent, device=device)
    mask = torch.zeros(1, network.mask_channels, latent, latent, latent, device=device)
    t, subtype, hist = torch.tensor([500], device=device), torch.tensor([1], device=device), torch.full((1, 40), 1 / 40, device=device)
    times = []
    with torch.no_grad():
        network(x, t, mask, subtype, hist)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            network(x, t, mask, subtype, hist)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def ddim50_seconds(engine: HRLDMEngine) -> tuple[float, dict]:
    from nodsynth.phantom import make_demo_patient
    from nodsynth.place import placement_regions, resolve_lung, sample_centroids
    from nodsynth.shapes import place_shape, procedural_shape

    patient = make_demo_patient(0)
    lung, existing = resolve_lung(labelmap=patient.labelmap)
    centre = sample_centroids(placement_regions(lung, 10.0, nodules=existing), "inner", 1, seed=0)[0]
    mask = place_shape(procedural_shape(1.2, 0.3, 0.1, seed=0), patient.ct, centre, 10.0)
    start = time.perf_counter()
    result = engine.inpaint(InpaintRequest(patient.ct, mask, "part-solid", steps=50, sampler="ddim", seed=0))
    return time.perf_counter() - start, result.info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the figures here")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--skip-ddim", action="store_true", help="only time one step")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = load_hrldm_config("hrldm")
    torch.manual_seed(0)
    network = HRLDMNet(config).to(device).eval()
    figures = {"config": config["name"], "device": str(device), "torch_threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine(),
               "unet_parameters": sum(p.numel() for p in network.parameters())}
    figures["step_seconds_roi32"] = round(step_seconds(network, device), 3)
    print(f"one denoising step, 32^3 latent ROI: {figures['step_seconds_roi32']:.2f} s", file=sys.stderr)
    if not args.skip_ddim:
        autoencoder = build_autoencoder(config["autoencoder_config"], device)
        engine = HRLDMEngine.from_networks(network, autoencoder, config, scale_factor=1.0)
        seconds, info = ddim50_seconds(engine)
        figures["ddim50_roi_seconds"] = round(seconds, 2)
        figures["ddim50_latent_roi"] = info["latent_roi_size"]
        print(f"DDIM-50 ROI inpaint (latent ROI {info['latent_roi_size']}): {seconds:.1f} s", file=sys.stderr)
    Path(args.json).write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
