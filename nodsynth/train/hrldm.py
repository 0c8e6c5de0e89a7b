"""Training of the HR-LDM denoiser (Algorithm 1), the ``nodsynth train hrldm`` sub-command.

Data: CT crops with a nodule mask and a subtype, from a ``lidc_vois``-style folder (``--vois DIR``:
``image/``, ``nodule_mask/``, ``nodules.csv`` with ``file`` and ``Texture_value``) or a manifest
(``--manifest FILE.csv``: columns ``image``, ``mask``, ``subtype`` (name or 0/1/2), optional
``histogram`` (a histogram file); relative paths are relative to the manifest). The histogram is
computed from the CT inside the mask when not given. Each nodule becomes a patch of
``training.patch_size`` voxels (network axis order, centred on the nodule, edge-padded), encoded
once by the frozen MAISI autoencoder (posterior mean). ``scale_factor`` = 1 / std of the training
latents (MAISI's convention, over all of them rather than a first batch) unless resumed.

Every draw is keyed (:mod:`nodsynth.train.keyed`): the examples of step ``s`` come from a permutation
drawn from ``(seed, s)``, and the example at global batch position ``i`` takes its timestep and noise
from ``(seed, s, i)``; so a resumed run continues exactly, and ``torchrun`` (rank ``r`` computes the
positions ``i mod W == r``, :mod:`nodsynth.train.distributed`) gives the one-process updates.

Mask channels come from :func:`nodsynth.engines.hrldm.inference.mask_channels`, the function inference
uses (nodule and solid core, the core sized by the nodule's histogram, interpolated x4), so training and
inference see channels derived the same way.

One step, for a batch (z0, M, subtype c, histogram h), with ``M`` the generated region (every latent
voxel whose 4 x 4 x 4 block holds nodule, :func:`~nodsynth.engines.hrldm.inference.latent_region`):

1. ``t ~ U{0..T-1}``, ``eps ~ N(0, I)``, ``z_t = sqrt(a_t) z0 + sqrt(1 - a_t) eps``;
2. lesion-only noising ``z~_t = (1 - M) * z0 + M * z_t``;
3. ``eps^ = net(z~_t, t | mask channels, c, h)``;
4. ``L_noise = sum|M * (eps - eps^)| / (sum M + delta)`` (M broadcast over the 4 latent channels; the
   sums run over the whole global batch);
5. Eq. 6: ``z^0 = (z~_t - sqrt(1 - a_t) eps^) / sqrt(a_t)``, kept only inside ``M`` (``z0`` outside) so
   the decoder sees the real background;
6. ``L_hist = JSD(H(F(z^0)), H(F(z0)))``: per-channel triangular-kernel soft histograms (Eq. 7) of the
   truncated-decoder features ``F`` inside the (image-resolution) nodule mask, averaged over the global batch;
7. ``L = L_noise + lambda_hist * L_hist`` (``--lambda-hist 0`` is the ablation); Adam (lr 1e-5 by
   default) with a polynomial learning-rate decay to 0 at ``--steps``; float16 autocast with a
   gradient scaler on CUDA.

Checkpoints (:mod:`nodsynth.engines.hrldm.checkpoint`) are written atomically to ``--out`` every
``--save-every`` steps and at the end, with optimizer, scheduler and scaler state; ``--resume``
continues from one. A loss log ``train_log.csv`` (step, loss, noise, hist) is written beside it; with
``--tensorboard`` also a TensorBoard log (:mod:`nodsynth.train.run_log`) whose sample slice at each validation
is the first validation nodule clean | lesion-noised | denoised by Eq. 6 (:func:`validation_strip`).

``--mode paper`` trains HR-LDM as published (whole CTs, batch 1, the paper's mask channels and histogram
bins; :mod:`nodsynth.train.hrldm_paper`) with the ``hrldm_paper`` configuration; the checkpoint records
its mode and a resume in the other mode is refused.
"""
from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..io.atomic import write_csv_atomic
from ..io.tables import csv_dicts
from ..engines.base import SUBTYPES, subtype_index
from ..errors import InputError
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume, require_same_grid
from ..io.volume_files import read_volume, volume_stem
from .distributed import DataParallel, data_parallel
from .keyed import EXAMPLE_CHOICE, VALIDATION_STEP, keyed_generator, seeded_init
from .run_log import SAMPLE_SLICE_TAG, RunLog, axial_strip
from .run_log import add_argument as add_tensorboard_argument
from .validation import add_arguments as add_validation_arguments
from .validation import validation_patients

MODE_CONFIGS = {"roi": "hrldm", "paper": "hrldm_paper"}
"""``--mode`` -> its default configuration."""
NOISE_DELTA = 1e-6
"""delta in the masked L1 normaliser."""

CHECKPOINT_NAME = "hrldm.pt"
BEST_CHECKPOINT_NAME = "hrldm_best.pt"
"""The network of the lowest validation loss (with a validation set)."""
LOG_NAME = "train_log.csv"


@dataclass
class NoduleSample:
    """One training nodule, ready for the networks (network axis order)."""

    latent: torch.Tensor  # [4, x, y, z] unscaled MAISI posterior mean
    mask_latent: torch.Tensor  # [C, x, y, z] 0..1 conditioning channels: nodule (, solid core)
    region_latent: torch.Tensor  # [1, x, y, z] 0/1 generated region M
    mask_image: torch.Tensor  # [1, X, Y, Z] 0/1 nodule at image resolution
    subtype: int
    histogram: torch.Tensor  # [40]


def nodule_patch(ct: Volume, mask: Volume, patch_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(ct_hu, mask)`` patches of ``patch_size`` (network axes), centred on the nodule, edge-padded CT."""
    from ..engines.maisi.orientation import NetworkAxes

    require_same_grid(ct, mask, "CT", "nodule mask")
    axes = NetworkAxes.of(ct)
    ct_xyz = axes.to_network(np.asarray(ct.array, dtype=np.float32))
    mask_xyz = axes.to_network(np.asarray(mask.array) > 0)
    if not mask_xyz.any():
        raise InputError("the nodule mask is empty")
    nz = np.nonzero(mask_xyz)
    centre = np.array([(a.min() + a.max() + 1) // 2 for a in nz])
    size = np.asarray(patch_size, int)
    start = centre - size // 2
    lo, hi = np.maximum(start, 0), np.minimum(start + size, ct_xyz.shape)
    pad = [(int(a - s), int(s + n - b)) for a, b, s, n in zip(lo, hi, start, size)]
    window = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return np.pad(ct_xyz[window], pad, mode="edge"), np.pad(mask_xyz[window], pad, mode="constant")


def make_sample(ct: Volume, mask: Volume, subtype: str | int, autoencoder: torch.nn.Module, config: dict,
                histogram: Optional[np.ndarray] = None) -> NoduleSample:
    """Patch, encode and label one nodule (see the module docstring)."""
    from ..engines.hrldm.inference import latent_region, mask_channels
    from ..engines.maisi.codec import encode_ct
    from ..engines.maisi.orientation import NetworkAxes
    from ..presets import nodule_histogram

    patch_size = config["training"]["patch_size"]
    ct_patch, mask_patch = nodule_patch(ct, mask, patch_size)
    if histogram is None:
        histogram = nodule_histogram(ct, mask)
    latent = encode_ct(autoencoder, ct_patch, window_latent=[s // 4 for s in patch_size])[0].cpu()
    channels = mask_channels(mask_patch.astype(np.int16), histogram, NetworkAxes.of(ct).spacing_xyz(ct), config)
    return NoduleSample(latent, torch.as_tensor(channels), torch.as_tensor(latent_region(mask_patch)[None]),
                        torch.as_tensor(mask_patch[None].astype(np.float32)), subtype_index(subtype),
                        torch.as_tensor(np.asarray(histogram, dtype=np.float32)))


def read_manifest(path: str | Path) -> list[dict]:
    """Rows ``{image, mask, subtype, histogram?}`` of a training manifest CSV (paths resolved)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training manifest not found: {path}")
    rows = csv_dicts(path, "training manifest")
    missing = {"image", "mask", "subtype"} - set(rows[0] if rows else {})
    if missing or not rows:
        raise InputError(f"{path}: a training manifest needs rows with columns image, mask, subtype"
                         + (f" (missing {', '.join(sorted(missing))})" if missing else ""))
    out = []
    for row in rows:
        entry = {"image": path.parent / row["image"], "mask": path.parent / row["mask"],
                 "subtype": SUBTYPES[subtype_index(int(row["subtype"]) if row["subtype"].isdigit() else row["subtype"])],
                 "patient": row.get("patient_id") or volume_stem(row["image"])}
        for column in ("histogram", "embedding"):
            if row.get(column):
                entry[column] = path.parent / row[column]
        out.append(entry)
    return out


def load_samples(entries: Sequence[dict], autoencoder: torch.nn.Module, config: dict,
                 progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                 vae_sha256: Optional[str] = None) -> list[NoduleSample]:
    """:class:`NoduleSample` for each manifest entry (paper mode: from its ``embedding`` file when it names one,
    encoded with the autoencoder file of SHA-256 ``vae_sha256``)."""
    from ..engines.hrldm.config import config_mode
    from ..presets import read_histogram
    from .hrldm_paper import embedded_sample, make_whole_sample

    report = progress or no_progress
    make = make_whole_sample if config_mode(config) == "paper" else make_sample
    samples = []
    for number, entry in enumerate(entries):
        check_cancel(cancel)
        histogram = read_histogram(entry["histogram"]) if entry.get("histogram") else None
        ct, mask = read_volume(entry["image"]), read_volume(entry["mask"])
        if entry.get("embedding"):
            samples.append(embedded_sample(ct, mask, entry["subtype"], entry["embedding"], config, vae_sha256, histogram))
        else:
            samples.append(make(ct, mask, entry["subtype"], autoencoder, config, histogram))
        report((number + 1) / len(entries), f"encoded {Path(entry['image']).name}")
    return samples


def collate(samples: Sequence[NoduleSample], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch dict of stacked tensors on ``device``."""
    return {"latent": torch.stack([s.latent for s in samples]).to(device),
            "mask_latent": torch.stack([s.mask_latent for s in samples]).to(device),
            "region_latent": torch.stack([s.region_latent for s in samples]).to(device),
            "mask_image": torch.stack([s.mask_image for s in samples]).to(device),
            "subtype": torch.tensor([s.subtype for s in samples], device=device),
            "histogram": torch.stack([s.histogram for s in samples]).to(device)}


def latent_scale_factor(latents: torch.Tensor) -> float:
    """MAISI's latent scale: 1 / standard deviation of the (training) latents (all their values)."""
    return float(1.0 / latents.float().std().clamp_min(1e-6))


def _alphas_cumprod(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """The DDPM scheduler's ``alphas_cumprod`` at ``timesteps`` ``[B]``, shaped ``[B, 1, 1, 1, 1]``."""
    return scheduler.alphas_cumprod.to(timesteps.device)[timesteps].view(-1, 1, 1, 1, 1)


def lesion_noised(scheduler, z0: torch.Tensor, region: torch.Tensor, timesteps: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
    """Steps 1-2: ``z~_t = (1 - M) z0 + M (sqrt(a_t) z0 + sqrt(1 - a_t) eps)``."""
    alphas = _alphas_cumprod(scheduler, timesteps)
    z_t = alphas.sqrt() * z0 + (1.0 - alphas).sqrt() * noise
    return (1.0 - region) * z0 + region * z_t


def lesion_denoised(scheduler, z0: torch.Tensor, z_tilde: torch.Tensor, noise_pred: torch.Tensor, region: torch.Tensor,
                    timesteps: torch.Tensor) -> torch.Tensor:
    """Eq. 6, the one-step estimate of the clean latent of DDPM's epsilon prediction inside ``M``:
    ``M (z~_t - sqrt(1 - a_t) eps^) / sqrt(a_t) + (1 - M) z0``."""
    alphas = _alphas_cumprod(scheduler, timesteps)
    z0_hat = (z_tilde - (1.0 - alphas).sqrt() * noise_pred) / alphas.sqrt()
    return region * z0_hat + (1.0 - region) * z0


class HRLDMTrainer:
    """Algorithm 1 around an :class:`~nodsynth.engines.hrldm.HRLDMNet` and a frozen autoencoder."""

    def __init__(self, network: torch.nn.Module, autoencoder: torch.nn.Module, config: dict, scale_factor: float,
                 lambda_hist: float, learning_rate: float, total_steps: int, device: torch.device,
                 parallel: DataParallel = DataParallel()) -> None:
        from ..engines.hrldm.network import TruncatedDecoder, build_scheduler

        if lambda_hist < 0:
            raise InputError(f"--lambda-hist must be >= 0, got {lambda_hist}")
        if total_steps < 1:
            raise InputError(f"the number of training steps must be >= 1, got {total_steps}")
        self.network = network.to(device).train()
        checkpointing = bool(config["training"].get("decoder_checkpointing", False))
        self.decoder = TruncatedDecoder(autoencoder, checkpointing).to(device).eval()
        self.config, self.device = config, device
        self.scale_factor, self.lambda_hist = float(scale_factor), float(lambda_hist)
        self.scheduler = build_scheduler(config, "ddpm")
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=learning_rate)
        self.total_steps = int(total_steps)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.amp = device.type == "cuda"
        self.grad_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step_count = 0
        self.parallel = parallel

    def lr_factor(self, step: int) -> float:
        """Polynomial decay ``(1 - step / total_steps) ** poly_power`` of the learning rate, 0 at the end."""
        return max(0.0, 1.0 - step / self.total_steps) ** float(self.config["training"]["poly_power"])

    def predict(self, batch: dict[str, torch.Tensor], timesteps: torch.Tensor,
                noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps 1-3 of Algorithm 1: ``(z0, z~_t, eps^)``, the scaled clean latent, its lesion-only noising and
        the network's noise estimate (float32)."""
        z0 = batch["latent"] * self.scale_factor
        z_tilde = lesion_noised(self.scheduler, z0, batch["region_latent"], timesteps, noise)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            noise_pred = self.network(z_tilde, timesteps, batch["mask_latent"], batch["subtype"], batch["histogram"])
        return z0, z_tilde, noise_pred.float()

    def losses(self, batch: dict[str, torch.Tensor], timesteps: torch.Tensor, noise: torch.Tensor,
               region_total: Optional[float] = None, share: float = 1.0) -> dict[str, torch.Tensor]:
        """``{"loss", "noise", "hist"}`` of Algorithm 1 for given timesteps and noise (differentiable).

        ``batch`` may be one rank's part of the global batch: ``region_total`` is ``sum M`` over the
        global batch (default: this batch's) and ``share`` this part's fraction of its examples, so the
        parts' losses add up to the global batch's.
        """
        from ..engines.hrldm.softhist import js_divergence, lesion_histograms

        region = batch["region_latent"]
        z0, z_tilde, noise_pred = self.predict(batch, timesteps, noise)
        full_region = region.expand_as(noise)
        total = full_region.sum() if region_total is None else region_total
        noise_loss = (full_region * (noise - noise_pred)).abs().sum() / (total + NOISE_DELTA)
        zero = noise_loss.new_zeros(())
        hist_loss = zero
        if self.lambda_hist > 0:
            z0_hat = lesion_denoised(self.scheduler, z0, z_tilde, noise_pred, region, timesteps)
            with torch.no_grad():
                real_features = self.decoder(z0 / self.scale_factor)
            fake, real = lesion_histograms(self.config, self.decoder(z0_hat / self.scale_factor), real_features,
                                           batch["mask_image"])
            hist_loss = js_divergence(fake, real).mean() * share
        return {"loss": noise_loss + self.lambda_hist * hist_loss, "noise": noise_loss, "hist": hist_loss}

    def step(self, batch: dict[str, torch.Tensor], timesteps: torch.Tensor, noise: torch.Tensor,
             global_batch: Optional[int] = None, micro_batch: Optional[int] = None) -> dict[str, float]:
        """One optimizer step on ``batch`` (this rank's part of a batch of ``global_batch`` examples).

        Gradients are accumulated over passes of ``micro_batch`` examples (default: one pass).
        Returns the global batch's losses (summed over the ranks).
        """
        local = int(batch["latent"].shape[0])
        size, count = int(micro_batch or local), int(global_batch or local)
        region_total = self.parallel.sum(float(batch["region_latent"].sum()) * int(noise.shape[1]), self.device)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for first in range(0, local, size):
            part = slice(first, min(first + size, local))
            parts = self.losses({k: v[part] for k, v in batch.items()}, timesteps[part], noise[part], region_total,
                                (part.stop - part.start) / count)
            self.grad_scaler.scale(parts["loss"]).backward()
            totals = {k: totals.get(k, 0.0) + float(v.detach()) for k, v in parts.items()}
        self.parallel.sum_gradients(self.network.parameters())
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        self.lr_schedule.step()
        self.step_count += 1
        return {k: self.parallel.sum(v, self.device) for k, v in totals.items()}

    def training_state(self) -> dict:
        """Optimizer, learning-rate schedule and scaler state for a resumable checkpoint."""
        return {"optimizer_state_dict": self.optimizer.state_dict(),
                "lr_scheduler_state_dict": self.lr_schedule.state_dict(),
                "grad_scaler_state_dict": self.grad_scaler.state_dict()}

    def restore(self, checkpoint: dict) -> None:
        """Continue from a checkpoint written with :meth:`training_state`."""
        self.optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        self.lr_schedule.load_state_dict(checkpoint["lr_scheduler_state_dict"])
        self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state_dict"])
        self.step_count = int(checkpoint["step"])
        for group, base_lr in zip(self.optimizer.param_groups, self.lr_schedule.base_lrs):
            group["lr"] = base_lr * self.lr_factor(self.step_count)  # the schedule follows this run's --steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nodsynth train hrldm``."""
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--vois", metavar="DIR", help="lidc_vois-style folder (image/, nodule_mask/, nodules.csv)")
    data.add_argument("--manifest", metavar="FILE.csv",
                      help="CSV with image, mask, subtype[, histogram][, embedding: a nodsynth encode file, paper mode]")
    parser.add_argument("--limit", type=int, help="use only the first N nodules")
    parser.add_argument("--out", required=True, metavar="DIR", help=f"folder for {CHECKPOINT_NAME} and {LOG_NAME}")
    parser.add_argument("--mode", choices=MODE_CONFIGS, default="roi",
                        help="roi (default, fast: 64^3 patches around the nodule) or paper (HR-LDM as published: whole "
                             "CTs resized to multiples of 128, batch 1, mask channels solid core / ground-glass / "
                             "spiculation (mask label 3, else zeros), bins over the observed feature range)")
    parser.add_argument("--config", help="HR-LDM configuration name or JSON of the mode (default "
                                         + ", ".join(f"{m}: {c}" for m, c in MODE_CONFIGS.items()) + ")")
    parser.add_argument("--resume", metavar="CKPT", help="continue from an HR-LDM training checkpoint")
    parser.add_argument("--autoencoder", metavar="FILE", help="MAISI autoencoder checkpoint (default: from the weights folders)")
    parser.add_argument("--random-autoencoder", action="store_true", help="random autoencoder weights (smoke tests only)")
    parser.add_argument("--weights", metavar="DIR", help="weights folder to find the autoencoder in")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps in total (default 1000)")
    parser.add_argument("--batch-size", type=int,
                        help="examples per optimizer step over all processes (the global batch under torchrun; "
                             "default 2, paper mode 1)")
    parser.add_argument("--micro-batch", type=int, default=1,
                        help="examples per forward pass, gradients accumulated (default 1: every example gets the same "
                             "arithmetic at any torchrun world size; see bench_hrldm_micro_batch.py for the cost)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: the configuration's, 1e-5)")
    parser.add_argument("--lambda-hist", type=float, help="weight of the histogram JSD loss (default 10; 0 = ablation)")
    parser.add_argument("--poly-power", type=float,
                        help="power of the polynomial learning-rate decay (default: the configuration's, roi 1.0, "
                             "paper 0.9: our choice, the paper does not state it)")
    parser.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    add_validation_arguments(parser, "patient_id of the table or manifest, else the image's file stem")
    add_tensorboard_argument(parser)


def validation_loss(trainer: HRLDMTrainer, samples: Sequence[NoduleSample], seed: int) -> float:
    """Mean loss of the validation nodules, one at a time, each with the same keyed timestep and noise every time."""
    trainer.network.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(trainer.parallel.rank, len(samples), trainer.parallel.world_size):
            timestep, noise = example_draw(seed, VALIDATION_STEP, i, samples[i].latent.shape,
                                           trainer.scheduler.num_train_timesteps)
            total += float(trainer.losses(collate([samples[i]], trainer.device), timestep.to(trainer.device),
                                          noise.to(trainer.device))["loss"])
    trainer.network.train()
    return trainer.parallel.sum(total, trainer.device) / len(samples)


def validation_strip(trainer: HRLDMTrainer, sample: NoduleSample, seed: int) -> np.ndarray:
    """The sample slice (:func:`~nodsynth.train.run_log.axial_strip`) of the first validation nodule ``sample``,
    with the timestep and noise :func:`validation_loss` gives it: clean | lesion-noised | denoised in one step
    (:func:`lesion_denoised`), on the axial slice through the middle of its generated region."""
    timestep, noise = example_draw(seed, VALIDATION_STEP, 0, sample.latent.shape, trainer.scheduler.num_train_timesteps)
    batch, timestep = collate([sample], trainer.device), timestep.to(trainer.device)
    trainer.network.eval()
    with torch.no_grad():
        z0, z_tilde, noise_pred = trainer.predict(batch, timestep, noise.to(trainer.device))
        denoised = lesion_denoised(trainer.scheduler, z0, z_tilde, noise_pred, batch["region_latent"], timestep)
    trainer.network.train()
    z = torch.nonzero(sample.region_latent[0].sum(dim=(0, 1)))[:, 0]
    return axial_strip([z0, z_tilde, denoised], int(z.min() + z.max()) // 2 if len(z) else None)


def _autoencoder(args: argparse.Namespace, config: dict, device: torch.device) -> torch.nn.Module:
    from ..engines.maisi import build_autoencoder, load_autoencoder
    from ..weights import find_weights

    if args.random_autoencoder:
        with seeded_init(args.seed):
            autoencoder = build_autoencoder(config["autoencoder_config"], device)
    else:
        path = args.autoencoder or find_weights("hrldm", args.weights)["autoencoder"]
        autoencoder = load_autoencoder(path, config["autoencoder_config"], device)
    for parameter in autoencoder.parameters():
        parameter.requires_grad_(False)
    return autoencoder.eval()


def _autoencoder_sha256(args: argparse.Namespace) -> Optional[str]:
    """SHA-256 of the autoencoder file this run uses (None with ``--random-autoencoder``)."""
    from ..weights import find_weights, sha256_of

    if args.random_autoencoder:
        return None
    return sha256_of(Path(args.autoencoder or find_weights("hrldm", args.weights)["autoencoder"]))


def _entries(args: argparse.Namespace) -> list[dict]:
    if args.manifest:
        entries = read_manifest(args.manifest)
    else:
        from ..presets import read_voi_table

        table = Path(args.vois) / "nodules.csv"
        patients = {r["file"]: r.get("patient_id") for r in csv_dicts(table, "nodule table")} if table.is_file() else {}
        entries = [{"image": n.image, "mask": n.mask, "subtype": n.subtype,
                    "patient": patients.get(Path(n.image).name) or volume_stem(n.image)} for n in read_voi_table(args.vois)]
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit must be >= 1, got {args.limit}")
        entries = entries[: args.limit]
    return entries


def _batch_size(args: argparse.Namespace) -> int:
    """``--batch-size``, else the mode's default; paper mode refuses more than one CT per step."""
    from .hrldm_paper import PAPER_BATCH_SIZE, check_paper_batch

    if args.mode != "paper":
        return 2 if args.batch_size is None else args.batch_size
    size = PAPER_BATCH_SIZE if args.batch_size is None else args.batch_size
    check_paper_batch(size)
    return size


def _mode_config(args: argparse.Namespace) -> dict:
    """The configuration of ``--config`` (default: the mode's), refused when made for the other mode;
    ``--poly-power`` written into it (so the checkpoint records the schedule it was trained with)."""
    from ..engines.hrldm import load_hrldm_config
    from ..engines.hrldm.config import config_mode

    config = load_hrldm_config(args.config or MODE_CONFIGS[args.mode])
    if config_mode(config) != args.mode:
        raise InputError(f"configuration {config['name']!r} is for {config_mode(config)} mode, not --mode {args.mode}")
    if args.poly_power is not None:
        if args.poly_power <= 0:
            raise InputError(f"--poly-power must be > 0, got {args.poly_power}")
        config["training"]["poly_power"] = float(args.poly_power)
    return config


def step_examples(seed: int, step: int, count: int, positions: Sequence[int]) -> list[int]:
    """Which of ``count`` examples sit at global batch ``positions`` at ``step``: a permutation keyed by (seed, step)."""
    order = torch.randperm(count, generator=keyed_generator(seed, step, EXAMPLE_CHOICE)).tolist()
    return [order[i % count] for i in positions]


def example_draw(seed: int, step: int, position: int, latent_shape: Sequence[int],
                 num_timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(timestep [1], noise [1, C, x, y, z])`` of the example at global batch ``position`` at ``step``."""
    generator = keyed_generator(seed, step, position)
    timestep = torch.randint(0, int(num_timesteps), (1,), generator=generator)
    return timestep, torch.randn((1, *latent_shape), generator=generator)


def run(args: argparse.Namespace, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> int:
    """``nodsynth train hrldm``: train (or resume) and write the checkpoint and loss log to ``--out``.

    Under ``torchrun`` this process computes its share of each global batch (``--batch-size``).
    """
    parallel, device = data_parallel(args.device)
    try:
        return _train(args, parallel, device, progress if parallel.is_main else None, cancel)
    finally:
        parallel.close()


def _train(args: argparse.Namespace, parallel: DataParallel, device: Optional[str],
           progress: Optional[ProgressFn], cancel: Optional[CancelToken]) -> int:
    from ..engines.hrldm import HRLDMNet, load_hrldm_checkpoint, save_hrldm_checkpoint
    from ..engines.maisi import resolve_device

    report = progress or no_progress
    device = resolve_device(device)
    out = Path(args.out)
    args.batch_size = _batch_size(args)
    if args.batch_size < 1 or args.save_every < 1 or (args.micro_batch is not None and args.micro_batch < 1) \
            or (args.val_every is not None and args.val_every < 1):
        raise InputError("--batch-size, --micro-batch, --save-every and --val-every must be >= 1")
    if args.mode == "paper" and parallel.world_size > 1:
        raise InputError(f"--mode paper trains on one whole CT per step: run it in one process, not {parallel.world_size}")
    positions = parallel.local_positions(args.batch_size)
    checkpoint = None
    if args.resume:
        network, config, scale_factor, checkpoint = load_hrldm_checkpoint(args.resume, device, args.mode)
    else:
        config = _mode_config(args)
        with seeded_init(args.seed):
            network, scale_factor = HRLDMNet(config).to(device), None
    entries = _entries(args)
    held_out = validation_patients([e["patient"] for e in entries], args.val_fraction, args.val_patients, args.seed)
    board = RunLog(out, args.tensorboard and parallel.is_main)
    autoencoder = _autoencoder(args, config, device)
    vae_sha256 = _autoencoder_sha256(args) if any(e.get("embedding") for e in entries) else None
    samples = load_samples([e for e in entries if e["patient"] not in held_out], autoencoder, config, cancel=cancel,
                           vae_sha256=vae_sha256)
    val_samples = load_samples([e for e in entries if e["patient"] in held_out], autoencoder, config, cancel=cancel,
                               vae_sha256=vae_sha256)
    if scale_factor is None:
        scale_factor = latent_scale_factor(torch.cat([s.latent.flatten() for s in samples]))
    training = config["training"]
    trainer = HRLDMTrainer(network, autoencoder, config, scale_factor,
                           training["lambda_hist"] if args.lambda_hist is None else args.lambda_hist,
                           training["learning_rate"] if args.lr is None else args.lr, args.steps, device, parallel)
    log: list[dict] = []
    if checkpoint is not None:
        trainer.restore(checkpoint)
        if (out / LOG_NAME).is_file():
            with open(out / LOG_NAME, newline="", encoding="utf-8") as handle:
                log = [row for row in csv.DictReader(handle) if int(row["step"]) <= trainer.step_count]

    best_path = out / BEST_CHECKPOINT_NAME
    best = float(load_hrldm_checkpoint(best_path)[3]["val_loss"]) if checkpoint is not None and best_path.is_file() \
        else float("inf")
    val_loss = None

    def save(path: Path = out / CHECKPOINT_NAME) -> None:
        if parallel.is_main:
            save_hrldm_checkpoint(path, trainer.network, config, scale_factor, trainer.step_count,
                                  world_size=parallel.world_size, val_loss=val_loss, **trainer.training_state())
            write_csv_atomic(out / LOG_NAME, log, columns=["step", "loss", "noise", "hist"])
        parallel.barrier()

    num_timesteps = trainer.scheduler.num_train_timesteps
    while trainer.step_count < args.steps:
        check_cancel(cancel)
        step = trainer.step_count
        chosen = step_examples(args.seed, step, len(samples), positions)
        draws = [example_draw(args.seed, step, i, samples[e].latent.shape, num_timesteps) for i, e in zip(positions, chosen)]
        parts = trainer.step(collate([samples[e] for e in chosen], device), torch.cat([t for t, _ in draws]).to(device),
                             torch.cat([n for _, n in draws]).to(device), args.batch_size, args.micro_batch)
        log.append({"step": trainer.step_count, **{k: f"{v:.6g}" for k, v in parts.items()}})
        board.scalar("train/loss", parts["loss"], trainer.step_count)
        board.scalar("train/lr", trainer.optimizer.param_groups[0]["lr"], trainer.step_count)
        report(trainer.step_count / args.steps, f"step {trainer.step_count}: loss {parts['loss']:.4f}")
        if val_samples and (trainer.step_count % (args.val_every or args.save_every) == 0 or trainer.step_count == args.steps):
            val_loss = validation_loss(trainer, val_samples, args.seed)
            board.scalar("val/loss", val_loss, trainer.step_count)
            if board.enabled:
                board.image(SAMPLE_SLICE_TAG, validation_strip(trainer, val_samples[0], args.seed), trainer.step_count)
            if val_loss < best:
                best = val_loss
                save(best_path)
        if trainer.step_count % args.save_every == 0:
            save()
    save()
    board.close()
    if parallel.is_main:
        print(f"HR-LDM: {trainer.step_count} steps, last loss {log[-1]['loss'] if log else 'n/a'}; "
              f"wrote {out / CHECKPOINT_NAME}" + (f"; best validation loss {best:.4f} in {best_path}" if val_samples else ""))
    return 0
