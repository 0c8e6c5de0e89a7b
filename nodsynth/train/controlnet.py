"""``nodsynth train controlnet``: train the NodMAISI ControlNet on (CT, label map) pairs.

MAISI-v2's autoencoder and rectified-flow U-Net stay frozen. Each step draws noise ``eps`` and a
timestep ``t`` with the configuration's ``RFlowScheduler`` (uniform sampling, timestep transform),
forms ``x_t = (1 - t/T) x0 + (t/T) eps`` from the CT latent ``x0`` (``z_mu x scale_factor``), runs the
ControlNet on ``(x_t, t, label bit-planes, CT class)`` and the U-Net with its residuals, and
minimises the L1 distance to the velocity target ``x0 - eps``, weighted ``tumor_weight`` (100) on
latent voxels whose nearest-downsampled label is the nodule (23). Adam, lr 1e-5 by default;
float16 autocast with gradient scaling on CUDA. Checkpoints use the ControlNet release format
(``{"controlnet_state_dict", ...}`` plus ``step`` and the optimizer state), so the engine loads
them directly and ``--resume`` continues from the saved step.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..labels import NODULE
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume, read_volume, require_same_grid

CHECKPOINT_NAME = "controlnet.pt"
DEFAULT_LR = 1e-5
DEFAULT_TUMOR_WEIGHT = 100.0


@dataclass
class TrainingOutcome:
    """What a training run did: the step reached, per-step losses of this run, the checkpoint written."""

    step: int
    losses: list[float]
    checkpoint: Path
    seconds: float
    start_step: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def nodule_patch(ct: Volume, labelmap: Volume, patch_voxels: int, multiple: int) -> tuple[Volume, Volume]:
    """Crops of ``patch_voxels`` per axis (rounded to ``multiple``) centred on the largest nodule (23), else the centre."""
    from scipy import ndimage

    require_same_grid(ct, labelmap, "CT", "label map")
    size = max(multiple, int(round(patch_voxels / multiple)) * multiple)
    components, count = ndimage.label(labelmap.array == NODULE)
    if count:
        largest = 1 + int(np.argmax(ndimage.sum_labels(np.ones_like(components), components, range(1, count + 1))))
        centre = np.argwhere(components == largest).mean(axis=0)
    else:
        centre = np.asarray(ct.shape_kji) / 2.0
    start = [min(max(int(round(c - size / 2)), 0), max(n - size, 0)) for c, n in zip(centre, ct.shape_kji)]
    stop = [min(s + size, n) for s, n in zip(start, ct.shape_kji)]
    return ct.crop(start, stop), labelmap.crop(start, stop)


def latent_loss_weights(labels_xyz: np.ndarray, latent_shape: Sequence[int], tumor_weight: float):
    """``[1, C, x, y, z]`` L1 weights: ``tumor_weight`` where the nearest-downsampled label is 23, else 1."""
    import torch
    import torch.nn.functional as F

    labels = torch.as_tensor(np.ascontiguousarray(labels_xyz), dtype=torch.float32)[None, None]
    small = F.interpolate(labels, size=tuple(latent_shape[2:]), mode="nearest")
    weights = torch.ones(tuple(latent_shape))
    weights[(small == NODULE).expand(tuple(latent_shape))] = float(tumor_weight)
    return weights


@dataclass
class _Example:
    latent: Any       # x0 = z_mu * scale_factor, [1, C, x, y, z]
    bitplanes: Any    # [1, 8, X, Y, Z]
    spacing: Any      # [1, 3], mm x 100
    weights: Any      # [1, C, x, y, z]


def _example(nets, ct: Volume, labelmap: Volume, tumor_weight: float, multiple: int) -> _Example:
    from ..engines.maisi import encode_ct, latent_downsample
    from ..engines.maisi.orientation import NetworkAxes
    from ..engines.nodmaisi.conditioning import label_bitplanes, labels_as_uint8, spacing_tensor

    require_same_grid(ct, labelmap, "CT", "label map")
    bad = [n for n in ct.shape_kji if n % multiple]
    if bad:
        raise InputError(f"training volumes need sizes that are multiples of {multiple} voxels, got k,j,i "
                         f"{list(ct.shape_kji)}; crop them or pass --patch")
    axes = NetworkAxes.of(ct)
    labels_xyz = np.ascontiguousarray(axes.to_network(labels_as_uint8(labelmap.array)))
    decode = nets.config["decode"]
    latent = encode_ct(nets.autoencoder, axes.to_network(ct.array).astype(np.float32), decode["window_latent"],
                       decode["overlap"], latent_downsample(nets.config))
    latent = latent.float() * nets.scale_factor
    return _Example(latent, label_bitplanes(labels_xyz, nets.device), spacing_tensor(axes.spacing_xyz(ct), nets.device),
                    latent_loss_weights(labels_xyz, latent.shape, tumor_weight).to(nets.device))


def _noise_and_timesteps(scheduler, latent, seed: int):
    """Noise and timesteps for one step, drawn from ``seed`` (repeatable, so a resumed run continues the same way)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noise = torch.randn(latent.shape, dtype=torch.float32)
        timesteps = scheduler.sample_timesteps(latent.cpu())
    return noise.to(latent.device), timesteps.to(latent.device)


def _frozen_networks(config, weights_dir, device):
    from ..engines.maisi import MaisiNetworks, load_autoencoder, load_config, load_diffusion_unet
    from ..engines.maisi.checkpoints import controlnet_from_unet, load_controlnet
    from ..weights import find_weights

    cfg = load_config(config)
    # a ControlNet to start from may be MAISI-v2's baseline: fine-tuning it is how NodMAISI's was made
    files = find_weights("nodmaisi", weights_dir, required_roles=("autoencoder", "diffusion_unet"), allow_fallback=True)
    autoencoder = load_autoencoder(files["autoencoder"], cfg, device)
    unet, scale_factor = load_diffusion_unet(files["diffusion_unet"], cfg, device)
    for module in (autoencoder, unet):
        module.eval().requires_grad_(False)
    start = files.get("controlnet")
    controlnet = load_controlnet(start, unet, cfg, device) if start else controlnet_from_unet(unet, cfg, device)
    return MaisiNetworks(autoencoder, unet, controlnet, cfg, next(unet.parameters()).device, scale_factor), start


def train_controlnet(pairs: Sequence[tuple[Volume, Volume]], out_dir: str | Path, steps: int,
                     config: str | Mapping[str, Any] = "maisi_v2", weights_dir: Optional[str] = None,
                     device: Optional[str] = None, lr: float = DEFAULT_LR, tumor_weight: float = DEFAULT_TUMOR_WEIGHT,
                     seed: int = 0, fixed_batch: bool = False, resume: bool = False, save_every: int = 100,
                     patch_voxels: Optional[int] = None, progress: Optional[ProgressFn] = None,
                     cancel: Optional[CancelToken] = None) -> TrainingOutcome:
    """Train until ``steps`` total steps (counting resumed ones); write ``out_dir/controlnet.pt`` atomically.

    ``fixed_batch`` reuses the first step's noise and timesteps every step (an over-fitting check).
    ``weights_dir`` holds the frozen ``autoencoder`` and ``diffusion_unet`` (and optionally a ControlNet
    to start from); ``resume`` continues from ``out_dir/controlnet.pt`` including the optimizer state.
    """
    import torch

    from ..engines.maisi import autocast_context, latent_downsample, unet_size_multiple
    from ..engines.maisi.checkpoints import load_state_strict, read_checkpoint, save_controlnet
    from ..engines.nodmaisi.conditioning import modality_tensor
    from ..engines.nodmaisi.sampling import make_scheduler

    if not pairs:
        raise InputError("no training pairs (CT + label map) given")
    if steps < 1 or lr <= 0 or tumor_weight <= 0:
        raise InputError(f"steps, lr and tumor weight must be positive, got {steps}, {lr}, {tumor_weight}")
    report = progress or no_progress
    out = Path(out_dir)
    checkpoint_path = out / CHECKPOINT_NAME
    if resume and not checkpoint_path.is_file():
        raise InputError(f"--resume: no checkpoint to resume from at {checkpoint_path}")
    began = time.perf_counter()
    nets, started_from = _frozen_networks(config, weights_dir, device)
    multiple = latent_downsample(nets.config) * unet_size_multiple(nets.config)
    if patch_voxels:
        pairs = [nodule_patch(ct, lab, patch_voxels, multiple) for ct, lab in pairs]
    examples = [_example(nets, ct, lab, tumor_weight, multiple) for ct, lab in pairs]
    controlnet = nets.controlnet.train()
    optimizer = torch.optim.Adam(controlnet.parameters(), lr=lr)
    cuda = nets.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    start_step = 0
    if resume:
        saved = read_checkpoint(checkpoint_path, nets.device)
        load_state_strict(controlnet, saved["controlnet_state_dict"], f"ControlNet checkpoint {checkpoint_path}")
        if "optimizer_state_dict" in saved:
            optimizer.load_state_dict(saved["optimizer_state_dict"])
        start_step = int(saved.get("step", 0))
    scheduler = make_scheduler(nets.config)
    modality = modality_tensor(nets.device)
    losses: list[float] = []

    def save(step: int, loss: float) -> None:
        save_controlnet(controlnet, checkpoint_path, step=step, loss=loss, lr=lr, config=nets.config.get("name"),
                        optimizer_state_dict=optimizer.state_dict())

    for step in range(start_step, int(steps)):
        check_cancel(cancel)
        example = examples[step % len(examples)]
        noise, timesteps = _noise_and_timesteps(scheduler, example.latent,
                                                seed if fixed_batch else seed * 1_000_003 + step)
        noisy = scheduler.add_noise(original_samples=example.latent, noise=noise, timesteps=timesteps)
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(nets.device):
            down, mid = controlnet(x=noisy, timesteps=timesteps, controlnet_cond=example.bitplanes,
                                   class_labels=modality)
            velocity = nets.diffusion_unet(x=noisy, timesteps=timesteps, spacing_tensor=example.spacing,
                                           class_labels=modality, down_block_additional_residuals=down,
                                           mid_block_additional_residual=mid)
        target = example.latent - noise
        loss = ((velocity.float() - target).abs() * example.weights).mean()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        report((step + 1) / steps, f"step {step + 1}/{steps} loss {losses[-1]:.4f}")
        if (step + 1) % max(int(save_every), 1) == 0:
            save(step + 1, losses[-1])
    final_step = max(int(steps), start_step)
    if losses or not checkpoint_path.is_file():
        save(final_step, losses[-1] if losses else float("nan"))
    controlnet.eval()
    return TrainingOutcome(final_step, losses, checkpoint_path, time.perf_counter() - began, start_step,
                           {"started_from": str(started_from) if started_from else "U-Net copy",
                            "examples": len(examples), "latent_shapes": [list(e.latent.shape) for e in examples]})


# ------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--pair", nargs=2, action="append", metavar=("CT", "LABELMAP"), default=[],
                      help="a CT and its MAISI label map (nodule = 23); repeat for more")
    data.add_argument("--manifest", help="CSV (columns ct,labelmap) or JSON list of {ct, labelmap}; paths relative to it")
    data.add_argument("--demo", action="store_true", help="train on the embedded demo patient (smoke runs)")
    parser.add_argument("--out", required=True, help="folder for controlnet.pt (the checkpoint; also resumed from)")
    parser.add_argument("--weights", metavar="DIR", help="folder with the frozen autoencoder and diffusion U-Net")
    parser.add_argument("--config", default="maisi_v2", help="network configuration: maisi_v2 (default), maisi_tiny or a JSON file")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--steps", type=int, default=1000, help="total training steps (default 1000)")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate (default {DEFAULT_LR})")
    parser.add_argument("--tumor-weight", type=float, default=DEFAULT_TUMOR_WEIGHT,
                        help="L1 weight of latent voxels labelled nodule (default 100)")
    parser.add_argument("--patch", type=int, metavar="VOXELS", help="train on cubes of this edge around the nodules")
    parser.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-batch", action="store_true", help="same noise and timesteps every step (over-fitting check)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/controlnet.pt")


def _manifest_pairs(path: Path) -> list[tuple[Path, Path]]:
    import csv

    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    try:
        return [(path.parent / r["ct"], path.parent / r["labelmap"]) for r in rows]
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: every entry needs 'ct' and 'labelmap'") from exc


def _load_pairs(args: argparse.Namespace) -> list[tuple[Volume, Volume]]:
    files = [(Path(c), Path(l)) for c, l in args.pair]
    if args.manifest:
        files += _manifest_pairs(Path(args.manifest))
    pairs = [(read_volume(c), read_volume(l)) for c, l in files]
    if args.demo:
        from ..phantom import make_demo_patient

        patient = make_demo_patient()
        pairs.append((patient.ct, patient.labelmap))
    if not pairs:
        raise InputError("give training data with --pair CT LABELMAP, --manifest FILE or --demo")
    return pairs


def run(args: argparse.Namespace) -> int:
    from ..cli.common import progress_bar

    outcome = train_controlnet(_load_pairs(args), args.out, args.steps, args.config, args.weights, args.device,
                               args.lr, args.tumor_weight, args.seed, args.fixed_batch, args.resume,
                               args.save_every, args.patch, progress_bar("train controlnet"))
    first = f"{outcome.losses[0]:.4f}" if outcome.losses else "-"
    last = f"{outcome.losses[-1]:.4f}" if outcome.losses else "-"
    print(f"trained steps {outcome.start_step}..{outcome.step} in {outcome.seconds:.1f} s; loss {first} -> {last}; "
          f"checkpoint {outcome.checkpoint}")
    return 0
