"""HR-LDM training: one forward pass per example (``--micro-batch 1``, the default) vs the whole batch in one
pass, in one process: seconds per optimizer step, and how far apart the two runs' weight updates end.

Why the default is 1: the examples a process puts in one pass depend on the world size (a global batch of
2 is one pass of 2 in one process, one pass of 1 in each of two), and a batched convolution rounds
differently from single ones (3e-6 relative on the first step's gradient, tiny configuration, 3 LIDC
nodules). Adam divides each gradient by its running magnitude, so small gradients carry that rounding
into full-size steps: after 3 steps the updates were 2.46e-3 apart (cosine 0.999997) in
test_train_ddp.py's setting. With one example per pass every world size computes the same
per-example gradients and the updates agree exactly. This measures what that costs.

Same network initialisation, data (LIDC nodules from ../shared/data) and keyed noise for both; ``--threads``
torch threads (default 1); the fastest of ``--repeats`` timings of ``--steps`` steps each.

    python Testing/benchmarks/bench_hrldm_micro_batch.py [--config hrldm_tiny] [--batch-size 2] [--steps 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(config_name: str, batch_size: int, micro_batch: int, steps: int, repeats: int) -> tuple[float, dict, dict]:
    """Seconds per step (fastest repeat), the initial and the final network state."""
    import torch

    from nodsynth.engines.hrldm import HRLDMNet, load_hrldm_config
    from nodsynth.engines.maisi import build_autoencoder
    from nodsynth.presets import read_voi_table
    from nodsynth.train import hrldm
    from nodsynth.train.keyed import seeded_init

    config = load_hrldm_config(config_name)
    with seeded_init(0):
        autoencoder = build_autoencoder(config["autoencoder_config"], "cpu").eval()
    nodules = read_voi_table(ROOT.parent / "shared" / "data" / "lidc_vois")[:batch_size]
    samples = hrldm.load_samples([{"image": n.image, "mask": n.mask, "subtype": n.subtype} for n in nodules],
                                 autoencoder, config)
    scale = hrldm.latent_scale_factor(torch.stack([s.latent for s in samples]))
    best, final, initial = float("inf"), {}, {}
    for _ in range(repeats):
        with seeded_init(0):
            network = HRLDMNet(config)
        initial = {k: v.clone() for k, v in network.state_dict().items()}
        trainer = hrldm.HRLDMTrainer(network, autoencoder, config, scale, config["training"]["lambda_hist"], 1e-3,
                                     steps, torch.device("cpu"))
        began = time.perf_counter()
        for step in range(steps):
            draws = [hrldm.example_draw(0, step, i, samples[i].latent.shape, 1000) for i in range(batch_size)]
            trainer.step(hrldm.collate(samples, torch.device("cpu")), torch.cat([t for t, _ in draws]),
                         torch.cat([n for _, n in draws]), batch_size, micro_batch)
        best = min(best, (time.perf_counter() - began) / steps)
        final = {k: v.clone() for k, v in network.state_dict().items()}
    return best, initial, final


def _agreement(initial: dict, one: dict, two: dict) -> tuple[float, float]:
    import torch

    keys = [k for k, v in initial.items() if v.is_floating_point()]
    first = torch.cat([(one[k].double() - initial[k].double()).flatten() for k in keys])
    second = torch.cat([(two[k].double() - initial[k].double()).flatten() for k in keys])
    return float(torch.nn.functional.cosine_similarity(first, second, dim=0)), float((first - second).norm() / first.norm())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="hrldm_tiny", help="hrldm_tiny (default) or hrldm (the full network)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    if not (ROOT.parent / "shared" / "data" / "lidc_vois" / "nodules.csv").is_file():
        raise SystemExit("needs ../shared/data/lidc_vois (the LIDC nodules)")
    import torch

    torch.set_num_threads(args.threads)
    single, initial, one = _run(args.config, args.batch_size, 1, args.steps, args.repeats)
    batched, _, whole = _run(args.config, args.batch_size, args.batch_size, args.steps, args.repeats)
    cosine, distance = _agreement(initial, one, whole)
    print(f"train hrldm ({args.config}, batch {args.batch_size}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.2f}): {single:.3f} s/step one example per pass, {batched:.3f} s/step one pass of "
          f"{args.batch_size}; per-example / batched = {single / batched:.2f}x time")
    print(f"updates after {args.steps} steps, per-example vs batched passes: cosine {cosine:.9f}, "
          f"relative distance {distance:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": args.config, "batch_size": args.batch_size,
                                               "seconds_per_step": {"micro_batch_1": single, "one_pass": batched},
                                               "ratio": single / batched, "cosine": cosine, "distance": distance,
                                               "load_average": os.getloadavg()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
