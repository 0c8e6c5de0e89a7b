"""``nodsynth train controlnet``: train the NodMAISI ControlNet on (CT, label map) pairs, as published.

The recipe of NoMAISI's ``scripts/train_controlnet.py`` and the NodMAISI paper: MAISI-v2's autoencoder
and rectified-flow U-Net stay frozen; the ControlNet starts from a given ControlNet (e.g. MAISI-v2's
baseline) or a copy of the U-Net. Each example is a whole CT whose sizes are multiples of 128 voxels
(the configuration's ``training.volume_multiple_voxels``), encoded once (``z_mu x scale_factor``).

* per example: noise ``eps`` and a timestep ``t`` from the ``RFlowScheduler`` (uniform, with the
  timestep transform for the whole CT's latent size), ``x_t = (1 - t/T) x0 + (t/T) eps``; the ControlNet
  on ``(x_t, t, label bit-planes, CT class)``, the U-Net with its residuals, and the L1 distance to the
  velocity ``x0 - eps`` weighted ``tumor_weight`` (100) on the nodule (23) and 1 elsewhere, averaged;
* the nodule weight is 100 on every latent voxel whose 4 x 4 x 4 image block holds a nodule voxel.
  (The published script downsamples the labels nearest-neighbour, which drops nodules smaller than
  the latent grid: a one-voxel nodule would get no weight at all.)
* batches of ``batch_size`` examples (8, the paper's), accumulated over micro-batches of
  ``micro_batch`` (1: one whole CT at a time) into one optimizer step; the gradient equals that of the
  whole batch;
* AdamW (lr 1e-5, weight decay 0.01), ``PolynomialLR`` with power 2 down to 0 at ``schedule_steps``
  (default: ``steps``); float16 autocast with gradient scaling on CUDA.

``patch_voxels`` trains on cubes around the largest nodule instead of whole CTs (smoke runs, small
GPUs; not the published recipe), of a size the networks accept (a multiple of 32 voxels for MAISI-v2), from
CTs of any size; their timesteps still follow the whole CT's latent size.
Checkpoints use the ControlNet release format (``{"controlnet_state_dict", ...}`` plus ``step``,
optimizer and learning-rate state), so the engine loads them directly and ``--resume`` continues.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..io.tables import csv_dicts, read_json
from ..errors import InputError
from ..labels import NODULE
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume, require_same_grid
from ..io.volume_files import read_volume
from .distributed import DataParallel, data_parallel
from .keyed import VALIDATION_STEP, draw_seed, seeded_init
from .run_log import SAMPLE_SLICE_TAG, RunLog, axial_strip
from .run_log import add_argument as add_tensorboard_argument
from .validation import add_arguments as add_validation_arguments

CHECKPOINT_NAME = "controlnet.pt"
BEST_CHECKPOINT_NAME = "controlnet_best.pt"
"""The ControlNet of the lowest validation loss (with a validation set)."""
DEFAULT_LR = 1e-5
DEFAULT_TUMOR_WEIGHT = 100.0
DEFAULT_BATCH_SIZE = 8
"""The paper's batch; reached by gradient accumulation."""
DEFAULT_MICRO_BATCH = 1
LR_POLY_POWER = 2.0
"""``PolynomialLR(power=2.0)`` of the published trainer."""
DEFAULT_VOLUME_MULTIPLE = 128


@dataclass
class TrainingOutcome:
    """What a training run did: the step reached, per-step losses of this run, the checkpoint written."""

    step: int
    losses: list[float]
    checkpoint: Path
    seconds: float
    start_step: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def volume_multiple(config: Mapping[str, Any]) -> int:
    """Training volumes' sizes must be multiples of this (voxels)."""
    return int(config.get("training", {}).get("volume_multiple_voxels", DEFAULT_VOLUME_MULTIPLE))


def check_training_volume(ct: Volume, labelmap: Volume, multiple: int) -> None:
    """:class:`InputError` unless the pair shares a grid whose sizes are multiples of ``multiple`` voxels."""
    require_same_grid(ct, labelmap, "CT", "label map")
    if any(n % multiple for n in ct.shape_kji):
        raise InputError(f"training volumes need sizes that are multiples of {multiple} voxels (whole CTs as "
                         f"published), got k,j,i {list(ct.shape_kji)}; resample or crop them, or pass --patch")


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
    if any(b - a < size for a, b in zip(start, stop)):
        raise InputError(f"--patch: the CT (k,j,i {list(ct.shape_kji)}) is smaller than the {size}-voxel cube")
    return ct.crop(start, stop), labelmap.crop(start, stop)


def latent_loss_weights(labels_xyz: np.ndarray, latent_shape: Sequence[int], tumor_weight: float):
    """``[1, C, x, y, z]`` L1 weights: ``tumor_weight`` on latent voxels whose image block holds a nodule voxel, else 1."""
    import torch

    x, y, z = (int(n) for n in latent_shape[2:])
    fx, fy, fz = (int(n) // m for n, m in zip(labels_xyz.shape, (x, y, z)))
    blocks = np.asarray(labels_xyz)[: x * fx, : y * fy, : z * fz].reshape(x, fx, y, fy, z, fz)
    nodule = torch.as_tensor((blocks == NODULE).any(axis=(1, 3, 5)))
    weights = torch.ones(tuple(int(n) for n in latent_shape))
    weights[nodule[None, None].expand(tuple(int(n) for n in latent_shape))] = float(tumor_weight)
    return weights


@dataclass
class TrainingExample:
    """One encoded training volume (network axes)."""

    latent: Any       # x0 = z_mu * scale_factor, [1, C, x, y, z]
    bitplanes: Any    # [1, 8, X, Y, Z]
    spacing: Any      # [1, 3], mm x 100
    weights: Any      # [1, C, x, y, z]


@dataclass
class NoiseDraw:
    """The noise and timestep one example is trained with in one step."""

    noise: Any        # [1, C, x, y, z]
    timesteps: Any    # [1]


def training_examples(nets, pairs: Sequence[tuple[Volume, Volume]], tumor_weight: float) -> list[TrainingExample]:
    """Encode (CT, label map) pairs for training (tiled encode with the device's window)."""
    from ..engines.maisi import encode_ct, latent_downsample
    from ..engines.maisi.codec import decode_window
    from ..engines.maisi.orientation import NetworkAxes
    from ..engines.nodmaisi.conditioning import label_bitplanes, labels_as_uint8, spacing_tensor

    examples = []
    for ct, labelmap in pairs:
        require_same_grid(ct, labelmap, "CT", "label map")
        axes = NetworkAxes.of(ct)
        labels_xyz = np.ascontiguousarray(axes.to_network(labels_as_uint8(labelmap.array)))
        latent = encode_ct(nets.autoencoder, axes.to_network(ct.array).astype(np.float32),
                           decode_window(nets.config, nets.device), nets.config["decode"]["overlap"],
                           latent_downsample(nets.config))
        latent = latent.float() * nets.scale_factor
        examples.append(TrainingExample(latent, label_bitplanes(labels_xyz, nets.device),
                                        spacing_tensor(axes.spacing_xyz(ct), nets.device),
                                        latent_loss_weights(labels_xyz, latent.shape, tumor_weight).to(nets.device)))
    return examples


def embedding_examples(nets, paths: Sequence[Path], autoencoder_sha256: str, tumor_weight: float) -> list[TrainingExample]:
    """Training examples from ``nodsynth encode`` files (made by this autoencoder, with label maps)."""
    from ..engines.nodmaisi.conditioning import label_bitplanes, spacing_tensor
    from .encode import read_embedding

    examples = []
    for path in paths:
        saved = read_embedding(path)
        if saved["vae_sha256"] != autoencoder_sha256:
            raise InputError(f"{path} was encoded by another autoencoder (SHA-256 {saved['vae_sha256'][:12]}...) than "
                             f"the frozen one training uses ({autoencoder_sha256[:12]}...); encode again with it")
        if saved.get("labels") is None:
            raise InputError(f"{path} has no label map; encode it with --labelmaps")
        labels = saved["labels"].numpy()
        latent = saved["latent"].float().to(nets.device) * nets.scale_factor
        examples.append(TrainingExample(latent, label_bitplanes(labels, nets.device),
                                        spacing_tensor(saved["spacing_xyz_mm"], nets.device),
                                        latent_loss_weights(labels, latent.shape, tumor_weight).to(nets.device)))
    return examples


def draw_noise(scheduler, latent, seed: int, schedule_numel: Optional[int] = None) -> NoiseDraw:
    """Noise and a timestep for one example, from ``seed`` (repeatable, so a resumed run continues the same way).

    The timestep is uniform on 0..T, transformed (MONAI's ``timestep_transform``) for a latent of
    ``schedule_numel`` voxels (default: ``latent``'s own), as ``RFlowScheduler.sample_timesteps`` does.
    """
    import torch
    from monai.networks.schedulers.rectified_flow import timestep_transform

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(tuple(latent.shape), generator=generator, dtype=torch.float32)
    t = torch.rand((latent.shape[0],), generator=generator) * scheduler.num_train_timesteps
    if scheduler.use_discrete_timesteps:
        t = t.long()
    if scheduler.use_timestep_transform:
        numel = int(np.prod(latent.shape[2:])) if schedule_numel is None else int(schedule_numel)
        t = timestep_transform(t, input_img_size_numel=torch.tensor(numel), base_img_size_numel=scheduler.base_img_size_numel,
                               num_train_timesteps=scheduler.num_train_timesteps, spatial_dim=latent.ndim - 2)
    return NoiseDraw(noise.to(latent.device), t.to(latent.device))


def accumulate_gradients(nets, controlnet, examples: Sequence[TrainingExample], draws: Sequence[NoiseDraw],
                         micro_batch: int = DEFAULT_MICRO_BATCH, scaler=None, batch_size: Optional[int] = None) -> float:
    """Backpropagate the batch-mean weighted L1 loss of ``examples`` in micro-batches; returns their share of it.

    Each micro-batch's loss is scaled by its share of the batch of ``batch_size`` examples (default:
    ``examples`` are the whole batch; under data parallelism they are this rank's part of it), so the
    accumulated gradient, summed over ranks, equals the gradient of the whole batch in one pass
    (examples of one batch share a size). ``scaler``: a ``GradScaler`` (CUDA float16) or None.
    """
    from ..engines.nodmaisi.sampling import make_scheduler

    scheduler = make_scheduler(nets.config)
    total, count = 0.0, int(batch_size or len(examples))
    for first in range(0, len(examples), max(int(micro_batch), 1)):
        part = list(range(first, min(first + int(micro_batch), len(examples))))
        loss = part_loss(nets, controlnet, scheduler, [examples[i] for i in part], [draws[i] for i in part])
        loss = loss * (len(part) / count)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        total += float(loss.detach())
    return total


def predicted_velocity(nets, controlnet, scheduler, examples: Sequence[TrainingExample], draws: Sequence[NoiseDraw]):
    """The U-Net's velocity (with the ControlNet's residuals) for examples (of one size) in one pass, and ``x_t``."""
    import torch

    from ..engines.maisi import autocast_context
    from ..engines.nodmaisi.conditioning import modality_tensor

    latent = torch.cat([e.latent for e in examples])
    noise = torch.cat([d.noise for d in draws])
    timesteps = torch.cat([d.timesteps for d in draws])
    noisy = scheduler.add_noise(original_samples=latent, noise=noise, timesteps=timesteps)
    modality = modality_tensor(nets.device).expand(len(examples))
    with autocast_context(nets.device):
        down, mid = controlnet(x=noisy, timesteps=timesteps, controlnet_cond=torch.cat([e.bitplanes for e in examples]),
                               class_labels=modality)
        velocity = nets.diffusion_unet(x=noisy, timesteps=timesteps, spacing_tensor=torch.cat([e.spacing for e in examples]),
                                       class_labels=modality, down_block_additional_residuals=down,
                                       mid_block_additional_residual=mid)
    return velocity.float(), noisy


def part_loss(nets, controlnet, scheduler, examples: Sequence[TrainingExample], draws: Sequence[NoiseDraw]):
    """The weighted L1 velocity loss of examples (of one size) in one pass, averaged (a tensor)."""
    import torch

    velocity, _ = predicted_velocity(nets, controlnet, scheduler, examples, draws)
    latent, noise = torch.cat([e.latent for e in examples]), torch.cat([d.noise for d in draws])
    weights = torch.cat([e.weights for e in examples])
    return ((velocity - (latent - noise)).abs() * weights).mean()


def denoised_latent(nets, controlnet, scheduler, example: TrainingExample, draw: NoiseDraw):
    """The one-step estimate of the clean latent, ``x_t + (t/T) v``, and ``x_t`` (``[1, C, x, y, z]`` each)."""
    import torch

    with torch.no_grad():
        velocity, noisy = predicted_velocity(nets, controlnet, scheduler, [example], [draw])
    fraction = draw.timesteps.float().reshape(-1, 1, 1, 1, 1) / scheduler.num_train_timesteps
    return noisy + fraction * velocity, noisy


def validation_loss(nets, controlnet, scheduler, examples: Sequence[TrainingExample], schedule_numel: Sequence[int],
                    seed: int, parallel: DataParallel) -> float:
    """Mean loss over the validation examples, each with the same keyed noise at every validation."""
    import torch

    total = 0.0
    controlnet.eval()
    with torch.no_grad():
        for i in range(parallel.rank, len(examples), parallel.world_size):
            draw = draw_noise(scheduler, examples[i].latent, draw_seed(seed, VALIDATION_STEP, i), schedule_numel[i])
            total += float(part_loss(nets, controlnet, scheduler, [examples[i]], [draw]))
    controlnet.train()
    return parallel.sum(total, nets.device) / len(examples)


def prepare_pairs(pairs: Sequence[tuple[Volume, Volume]], config: Mapping[str, Any],
                  patch_voxels: Optional[int] = None) -> tuple[list[tuple[Volume, Volume]], list[int]]:
    """Checked whole CTs (or cubes around their nodules with ``patch_voxels``), and the latent voxels of each
    whole CT (its timestep schedule)."""
    from ..engines.maisi import latent_downsample, unet_size_multiple

    downsample = latent_downsample(config)
    whole_numel = [int(np.prod([n // downsample for n in ct.shape_kji])) for ct, _ in pairs]
    if patch_voxels:  # cubes only need sizes the networks accept; whole CTs follow the published recipe
        return [nodule_patch(ct, lab, patch_voxels, downsample * unet_size_multiple(config)) for ct, lab in pairs], whole_numel
    for ct, lab in pairs:
        check_training_volume(ct, lab, volume_multiple(config))
    return list(pairs), whole_numel


def encoded_examples(nets, pairs: Sequence[tuple[Volume, Volume]], whole_numel: Sequence[int], embeddings: Sequence[Path],
                     weights_dir, tumor_weight: float) -> tuple[list[TrainingExample], list[int]]:
    """Examples of prepared pairs (:func:`prepare_pairs`) then of embedding files, and their schedules' latent voxels."""
    whole_numel = list(whole_numel)
    examples = training_examples(nets, pairs, tumor_weight)
    if embeddings:
        from ..weights import find_weights, sha256_of

        autoencoder = find_weights("nodmaisi", weights_dir, required_roles=("autoencoder",), allow_fallback=True)["autoencoder"]
        encoded = embedding_examples(nets, embeddings, sha256_of(Path(autoencoder)), tumor_weight)
        examples += encoded
        whole_numel += [int(np.prod(e.latent.shape[2:])) for e in encoded]
    return examples, whole_numel


def frozen_networks(config, weights_dir, device, seed: int = 0):
    """The frozen autoencoder and U-Net, and the ControlNet to train (a given one, else a copy of the U-Net).

    The ControlNet's own layers (``controlnet_cond_embedding.*``, its output convolutions: those not
    copied from the U-Net) are initialised from ``seed``.
    """
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
    with seeded_init(seed):
        controlnet = load_controlnet(start, unet, cfg, device) if start else controlnet_from_unet(unet, cfg, device)
    return MaisiNetworks(autoencoder, unet, controlnet, cfg, next(unet.parameters()).device, scale_factor), start


def train_controlnet(pairs: Sequence[tuple[Volume, Volume]], out_dir: str | Path, steps: int,
                     config: str | Mapping[str, Any] = "maisi_v2", weights_dir: Optional[str] = None,
                     device: Optional[str] = None, lr: float = DEFAULT_LR, tumor_weight: float = DEFAULT_TUMOR_WEIGHT,
                     seed: int = 0, fixed_batch: bool = False, resume: bool = False, save_every: int = 100,
                     patch_voxels: Optional[int] = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     micro_batch: int = DEFAULT_MICRO_BATCH, schedule_steps: Optional[int] = None,
                     progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                     parallel: DataParallel = DataParallel(), embeddings: Sequence[Path] = (),
                     val_pairs: Sequence[tuple[Volume, Volume]] = (), val_embeddings: Sequence[Path] = (),
                     val_every: Optional[int] = None, tensorboard: bool = False) -> TrainingOutcome:
    """Train until ``steps`` total optimizer steps (counting resumed ones); write ``out_dir/controlnet.pt`` atomically.

    Example ``i`` of a step's batch trains with noise and a timestep drawn from ``(seed, step, i)``;
    ``parallel`` (see :mod:`nodsynth.train.distributed`) gives this process its share of the batch.
    ``embeddings``: files of ``nodsynth encode`` (whole CTs, already encoded), trained on after ``pairs``.
    ``val_pairs``/``val_embeddings``: the validation set; its loss (the same keyed noise every time) is
    computed every ``val_every`` steps (default ``save_every``) and at the end, and the ControlNet with
    the lowest one is kept in ``controlnet_best.pt`` (``controlnet.pt`` is the last). ``tensorboard``:
    a TensorBoard log in ``out_dir/tensorboard`` (:mod:`nodsynth.train.run_log`).

    ``fixed_batch`` reuses the first step's noise and timesteps every step (an over-fitting check).
    ``weights_dir`` holds the frozen ``autoencoder`` and ``diffusion_unet`` (and optionally a ControlNet
    to start from); ``resume`` continues from ``out_dir/controlnet.pt`` including the optimizer and
    learning-rate state. ``schedule_steps``: where the polynomial decay reaches 0 (default ``steps``).
    """
    import torch

    from ..engines.maisi import load_config
    from ..engines.maisi.checkpoints import load_state_strict, read_checkpoint, save_controlnet
    from ..engines.nodmaisi.sampling import make_scheduler

    if not pairs and not embeddings:
        raise InputError("no training pairs (CT + label map) or embeddings given")
    if embeddings and patch_voxels:
        raise InputError("--patch crops CTs; embeddings are whole encoded CTs: give one or the other")
    if steps < 1 or lr <= 0 or tumor_weight <= 0 or batch_size < 1 or micro_batch < 1:
        raise InputError(f"steps, lr, tumor weight, batch size and micro-batch must be positive, got {steps}, {lr}, "
                         f"{tumor_weight}, {batch_size}, {micro_batch}")
    positions = parallel.local_positions(batch_size)
    horizon = int(schedule_steps or steps)
    if horizon < steps:
        raise InputError(f"schedule_steps ({horizon}) must be at least steps ({steps})")
    cfg = load_config(config)
    pairs, whole_numel = prepare_pairs(pairs, cfg, patch_voxels)
    val_pairs, val_numel = prepare_pairs(val_pairs, cfg, patch_voxels)
    report = progress or no_progress
    out = Path(out_dir)
    checkpoint_path = out / CHECKPOINT_NAME
    if resume and not checkpoint_path.is_file():
        raise InputError(f"--resume: no checkpoint to resume from at {checkpoint_path}")
    began = time.perf_counter()
    board = RunLog(out, tensorboard and parallel.is_main)
    nets, started_from = frozen_networks(config, weights_dir, device, seed)
    examples, whole_numel = encoded_examples(nets, pairs, whole_numel, embeddings, weights_dir, tumor_weight)
    val_examples, val_numel = encoded_examples(nets, val_pairs, val_numel, val_embeddings, weights_dir, tumor_weight)
    controlnet = nets.controlnet.train()
    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=lr)
    lr_schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=horizon, power=LR_POLY_POWER)
    scaler = torch.amp.GradScaler("cuda") if nets.device.type == "cuda" else None
    start_step = 0
    if resume:
        saved = read_checkpoint(checkpoint_path, nets.device)
        load_state_strict(controlnet, saved["controlnet_state_dict"], f"ControlNet checkpoint {checkpoint_path}")
        if "optimizer_state_dict" in saved:
            optimizer.load_state_dict(saved["optimizer_state_dict"])
        if "lr_scheduler_state_dict" in saved:
            lr_schedule.load_state_dict(saved["lr_scheduler_state_dict"])
        start_step = int(saved.get("step", 0))
    best_path = out / BEST_CHECKPOINT_NAME
    best = float(read_checkpoint(best_path)["val_loss"]) if resume and best_path.is_file() else float("inf")
    scheduler = make_scheduler(nets.config)
    losses: list[float] = []
    learning_rates: list[float] = []
    val_losses: list[tuple[int, float]] = []

    def save(step: int, loss: float, path: Path = checkpoint_path) -> None:
        if parallel.is_main:
            save_controlnet(controlnet, path, step=step, loss=loss, lr=lr, config=nets.config.get("name"),
                            optimizer_state_dict=optimizer.state_dict(), lr_scheduler_state_dict=lr_schedule.state_dict(),
                            world_size=parallel.world_size, val_loss=val_losses[-1][1] if val_losses else None)
        parallel.barrier()

    def validate(step: int) -> None:
        nonlocal best
        val_losses.append((step, validation_loss(nets, controlnet, scheduler, val_examples, val_numel, seed, parallel)))
        board.scalar("val/loss", val_losses[-1][1], step)
        if board.enabled:  # the first validation example, as validation_loss draws its noise
            draw = draw_noise(scheduler, val_examples[0].latent, draw_seed(seed, VALIDATION_STEP, 0), val_numel[0])
            denoised, noisy = denoised_latent(nets, controlnet.eval(), scheduler, val_examples[0], draw)
            controlnet.train()
            board.image(SAMPLE_SLICE_TAG, axial_strip([val_examples[0].latent, noisy, denoised]), step)
        if val_losses[-1][1] < best:
            best = val_losses[-1][1]
            save(step, losses[-1], best_path)

    for step in range(start_step, int(steps)):
        check_cancel(cancel)
        chosen = [(step * batch_size + i) % len(examples) for i in positions]
        draws = [draw_noise(scheduler, examples[e].latent, draw_seed(seed, 0 if fixed_batch else step, i), whole_numel[e])
                 for i, e in zip(positions, chosen)]
        optimizer.zero_grad(set_to_none=True)
        learning_rates.append(float(optimizer.param_groups[0]["lr"]))
        local = accumulate_gradients(nets, controlnet, [examples[e] for e in chosen], draws, micro_batch, scaler, batch_size)
        parallel.sum_gradients(controlnet.parameters())
        losses.append(parallel.sum(local, nets.device))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        lr_schedule.step()
        board.scalar("train/loss", losses[-1], step + 1)
        board.scalar("train/lr", learning_rates[-1], step + 1)
        report((step + 1) / steps, f"step {step + 1}/{steps} loss {losses[-1]:.4f}")
        if val_examples and ((step + 1) % max(int(val_every or save_every), 1) == 0 or step + 1 == steps):
            validate(step + 1)
        if (step + 1) % max(int(save_every), 1) == 0:
            save(step + 1, losses[-1])
    final_step = max(int(steps), start_step)
    if losses or not checkpoint_path.is_file():
        save(final_step, losses[-1] if losses else float("nan"))
    board.close()
    controlnet.eval()
    return TrainingOutcome(final_step, losses, checkpoint_path, time.perf_counter() - began, start_step,
                           {"started_from": str(started_from) if started_from else "U-Net copy",
                            "examples": len(examples), "latent_shapes": [list(e.latent.shape) for e in examples],
                            "optimizer": type(optimizer).__name__, "batch_size": batch_size, "micro_batch": micro_batch,
                            "lr_poly_power": LR_POLY_POWER, "schedule_steps": horizon,
                            "learning_rates": learning_rates, "schedule_latent_voxels": whole_numel[0],
                            "world_size": parallel.world_size, "val_losses": val_losses, "best_val_loss": best})


# ------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--pair", nargs=2, action="append", metavar=("CT", "LABELMAP"), default=[],
                      help="a CT and its MAISI label map (nodule = 23); repeat for more")
    data.add_argument("--manifest", help="CSV (columns ct,labelmap[,patient_id]) or JSON list of {ct, labelmap[, patient_id]}; "
                                         "paths relative to it")
    data.add_argument("--demo", action="store_true", help="train on the embedded demo patient (smoke runs)")
    data.add_argument("--embeddings", nargs="+", default=[], metavar="FILE",
                      help="whole CTs already encoded by nodsynth encode --labelmaps (<stem>_emb.pt)")
    parser.add_argument("--out", required=True, help="folder for controlnet.pt (the checkpoint; also resumed from)")
    parser.add_argument("--weights", metavar="DIR", help="folder with the frozen autoencoder and diffusion U-Net")
    parser.add_argument("--config", default="maisi_v2", help="network configuration: maisi_v2 (default), maisi_tiny or a JSON file")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--steps", type=int, default=1000, help="total optimizer steps (default 1000)")
    parser.add_argument("--schedule-steps", type=int,
                        help="step at which the polynomial learning-rate decay reaches 0 (default: --steps)")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"AdamW learning rate (default {DEFAULT_LR})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"examples per optimizer step over all processes (the global batch under torchrun; default "
                             f"{DEFAULT_BATCH_SIZE}, the paper's), by gradient accumulation")
    parser.add_argument("--micro-batch", type=int, default=DEFAULT_MICRO_BATCH,
                        help=f"examples per forward pass (default {DEFAULT_MICRO_BATCH}: one whole CT at a time)")
    parser.add_argument("--tumor-weight", type=float, default=DEFAULT_TUMOR_WEIGHT,
                        help="L1 weight of latent voxels holding nodule (default 100)")
    parser.add_argument("--patch", type=int, metavar="VOXELS",
                        help="train on cubes of this edge around the nodules (not the published whole-CT recipe)")
    parser.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-batch", action="store_true", help="same noise and timesteps every step (over-fitting check)")
    add_validation_arguments(parser, "the manifest's patient_id, else the CT's file stem")
    add_tensorboard_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/controlnet.pt")


def _manifest_pairs(path: Path) -> list[tuple[Path, Path, str]]:
    """``(ct, labelmap, patient)`` per manifest entry; the patient is ``patient_id``, else the CT's stem."""
    from ..io.volume_files import volume_stem

    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    if path.suffix.lower() == ".json":
        rows = read_json(path, "manifest")
    else:
        rows = csv_dicts(path, "manifest")
    try:
        return [(path.parent / r["ct"], path.parent / r["labelmap"], str(r.get("patient_id") or volume_stem(r["ct"])))
                for r in rows]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: every entry needs 'ct' and 'labelmap'") from exc


def _load_data(args: argparse.Namespace) -> dict[str, list]:
    """Training and validation pairs and embeddings (``pairs``, ``embeddings``, ``val_pairs``, ``val_embeddings``)."""
    from ..io.volume_files import volume_stem
    from .encode import SUFFIX
    from .validation import validation_patients

    files = [(Path(c), Path(l), volume_stem(c)) for c, l in args.pair]
    if args.manifest:
        files += _manifest_pairs(Path(args.manifest))
    embeddings = [(Path(p), Path(p).name[: -len(SUFFIX)] if p.endswith(SUFFIX) else volume_stem(p)) for p in args.embeddings]
    if not files and not embeddings and not args.demo:
        raise InputError("give training data with --pair CT LABELMAP, --manifest FILE, --embeddings FILE... or --demo")
    held_out = validation_patients([f[2] for f in files] + [e[1] for e in embeddings] + (["demo"] if args.demo else []),
                                   args.val_fraction, args.val_patients, args.seed)
    data: dict[str, list] = {"pairs": [], "embeddings": [], "val_pairs": [], "val_embeddings": []}
    for ct, labelmap, patient in files:
        data["val_pairs" if patient in held_out else "pairs"].append((read_volume(ct), read_volume(labelmap)))
    for path, patient in embeddings:
        data["val_embeddings" if patient in held_out else "embeddings"].append(path)
    if args.demo:
        from ..phantom import make_demo_patient

        patient = make_demo_patient()
        data["val_pairs" if "demo" in held_out else "pairs"].append((patient.ct, patient.labelmap))
    return data


def run(args: argparse.Namespace, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> int:
    """``nodsynth train controlnet``: train (or resume) into ``--out``; under ``torchrun`` this process's share."""
    from ..cli.common import progress_bar

    data = _load_data(args)
    parallel, device = data_parallel(args.device)
    try:
        outcome = train_controlnet(data["pairs"], args.out, args.steps, args.config, args.weights, device,
                                   args.lr, args.tumor_weight, args.seed, args.fixed_batch, args.resume,
                                   args.save_every, args.patch, batch_size=args.batch_size, micro_batch=args.micro_batch,
                                   schedule_steps=args.schedule_steps,
                                   progress=(progress or progress_bar("train controlnet")) if parallel.is_main else None,
                                   cancel=cancel, parallel=parallel, embeddings=data["embeddings"],
                                   val_pairs=data["val_pairs"], val_embeddings=data["val_embeddings"],
                                   val_every=args.val_every, tensorboard=args.tensorboard)
    finally:
        parallel.close()
    if not parallel.is_main:
        return 0
    first = f"{outcome.losses[0]:.4f}" if outcome.losses else "-"
    last = f"{outcome.losses[-1]:.4f}" if outcome.losses else "-"
    print(f"trained steps {outcome.start_step}..{outcome.step} in {outcome.seconds:.1f} s; loss {first} -> {last}; "
          f"checkpoint {outcome.checkpoint}")
    if outcome.info["val_losses"]:
        print(f"validation loss {outcome.info['val_losses'][-1][1]:.4f} at step {outcome.info['val_losses'][-1][0]}; "
              f"best {outcome.info['best_val_loss']:.4f} in {Path(args.out) / BEST_CHECKPOINT_NAME}")
    return 0
