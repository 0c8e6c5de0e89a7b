"""HR-LDM inference (Algorithm 2) on a latent region of interest around the nodule.

1. The ROI is the nodule's bounding box (network axis order, RAS) grown by ``roi.margin_latent``
   latent voxels and rounded up to a size the U-Net accepts; the CT crop (edge-padded where the
   ROI leaves the volume) is encoded by the frozen MAISI autoencoder: ``z0 = scale_factor * z_mu``.
2. Mask channels (:func:`mask_channels`, the same function training uses): channel 0 the nodule,
   channel 1 its solid core (:func:`solid_core`: voxels labelled 2, else the deepest nodule voxels in
   the share of the target histogram at or above -300 HU, so a nodule's own histogram gives its own
   core size in training), downsampled x4 to the latent grid by trilinear interpolation, as the
   paper. The generated region ``M`` (:func:`latent_region`) is every latent voxel whose 4 x 4 x 4
   block holds nodule, in training (lesion-only noising, masked loss) as here, so no nodule voxel is
   left to the background.
3. From ``z_T ~ N(0, I)``, every step predicts the noise with the subtype and histogram, steps the
   scheduler to ``t-1`` and re-anchors the background to the encoded CT re-noised to ``t-1``
   (Eq. 10): ``z_{t-1} = M * z_{t-1} + (1 - M) * noised(z0, t-1)``; the last step anchors to ``z0``.
   ``t-1`` is the noise level the scheduler's step produces (:func:`stepped_timestep`), so the background
   and the generated region are at one level: ``t - 1`` for DDPM (MONAI's DDPM step always goes to
   ``t - 1``), ``t - 1000/N`` for DDIM-N.
   DDPM (1000 steps, the paper's sampler and the default) re-noises with fresh noise every step, as
   its stochastic steps do; DDIM-N (the fast option, e.g. 50 steps) is deterministic and re-noises
   with one fixed noise, the starting ``z_T``, so the background follows one consistent trajectory.
4. The ROI is decoded and blended into the CT with a feathered weight: 1 inside the nodule, falling
   linearly to 0 at ``blend.feather_mm`` from it, and 0 outside ``M``. Voxels with weight 0 (all
   voxels outside the ROI among them) are bit-identical to the input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
from scipy import ndimage

from ...errors import InputError
from ...histogram import BIN_EDGES_HU, validate_histogram
from ...render.insert import cast_hu_like
from ...progress import CancelToken, ProgressFn, check_cancel, no_progress, scaled_progress
from ...volume import Volume, require_same_grid
from ..base import SUBTYPES, subtype_index
from ..maisi.codec import decode_latent, encode_ct
from ..maisi.orientation import NetworkAxes
from .network import HRLDMNet, build_scheduler

LATENT_DOWNSAMPLE = 4
SOLID_COMPONENT_HU = -300.0
"""The solid core holds the histogram's share of voxels at or above this HU."""
MASK_DOWNSAMPLE_MODE = "trilinear"
"""How the image-grid mask channels are downsampled x4 to the latent grid (the paper: interpolation)."""


@dataclass
class LatentROI:
    """Image box of the ROI in network axis order: ``start`` may be negative / ``stop`` past the volume (padded)."""

    start_xyz: np.ndarray
    size_xyz: np.ndarray

    def latent_size(self) -> tuple[int, ...]:
        return tuple(int(s) // LATENT_DOWNSAMPLE for s in self.size_xyz)

    def crop(self, array_xyz: np.ndarray) -> np.ndarray:
        """The ROI of ``array_xyz``, edge-padded where it leaves the array."""
        lo = np.maximum(self.start_xyz, 0)
        hi = np.minimum(self.start_xyz + self.size_xyz, array_xyz.shape)
        inner = array_xyz[tuple(slice(a, b) for a, b in zip(lo, hi))]
        pad = [(int(a - s), int(s + n - b)) for a, b, s, n in zip(lo, hi, self.start_xyz, self.size_xyz)]
        return np.pad(inner, pad, mode="edge") if any(p != (0, 0) for p in pad) else inner

    def inside_slices(self, shape_xyz) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """``(slices into the volume, slices into the ROI)`` of the part of the ROI inside the volume."""
        lo = np.maximum(self.start_xyz, 0)
        hi = np.minimum(self.start_xyz + self.size_xyz, shape_xyz)
        volume = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        roi = tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(lo, hi, self.start_xyz))
        return volume, roi


def unet_multiple(config: Mapping[str, Any]) -> int:
    """Latent sizes must be a multiple of this for the U-Net (2 per down-sampling level)."""
    return 2 ** (len(config["unet"]["channels"]) - 1)


def latent_roi(mask_xyz: np.ndarray, config: Mapping[str, Any]) -> LatentROI:
    """The ROI around the nodule (see the module docstring)."""
    nz = np.nonzero(mask_xyz)
    lo = np.array([a.min() for a in nz])
    hi = np.array([a.max() + 1 for a in nz])
    multiple = unet_multiple(config)
    margin = int(config["roi"]["margin_latent"])
    latent = np.ceil((hi - lo) / LATENT_DOWNSAMPLE).astype(int) + 2 * margin
    latent = np.maximum(np.ceil(latent / multiple).astype(int) * multiple, multiple)
    size = latent * LATENT_DOWNSAMPLE
    start = (lo + hi) // 2 - size // 2
    shape = np.array(mask_xyz.shape)
    start = np.where(size <= shape, np.clip(start, 0, shape - size), start)  # shift inside when it fits
    return LatentROI(start, size)


def solid_core(labels: np.ndarray, histogram: np.ndarray, spacing_xyz) -> np.ndarray:
    """The solid-core mask: voxels labelled 2 if any; else the nodule's deepest voxels, as many as the
    histogram's share at or above :data:`SOLID_COMPONENT_HU` (depth in mm, ties by voxel order)."""
    nodule = labels > 0
    if (labels == 2).any():
        return labels == 2
    share = float(validate_histogram(histogram)[int(np.searchsorted(BIN_EDGES_HU, SOLID_COMPONENT_HU)):].sum())
    count = int(round(share * int(nodule.sum())))
    depth = ndimage.distance_transform_edt(np.pad(nodule, 1), sampling=spacing_xyz)[1:-1, 1:-1, 1:-1]
    flat = np.flatnonzero(nodule)
    core = np.zeros(nodule.shape, bool)
    core.flat[flat[np.lexsort((flat, -depth.ravel()[flat]))][:count]] = True
    return core


def mask_channels(labels: np.ndarray, histogram: np.ndarray, spacing_xyz, config: Mapping[str, Any]) -> np.ndarray:
    """``[C, x/4, y/4, z/4]`` float32 conditioning channels of an image-grid label patch (1 nodule,
    optional 2 core): the nodule and, with two channels, its :func:`solid_core`, interpolated x4."""
    stack = [labels > 0]
    if int(config["mask_channels"]) == 2:
        stack.append(solid_core(labels, histogram, spacing_xyz))
    return to_latent_grid(stack)


def to_latent_grid(channels) -> np.ndarray:
    """``[C, x/4, y/4, z/4]`` float32: image-grid 0/1 channels interpolated x4 down (:data:`MASK_DOWNSAMPLE_MODE`)."""
    image = torch.as_tensor(np.stack(channels).astype(np.float32))[None]
    size = tuple(int(n) // LATENT_DOWNSAMPLE for n in image.shape[2:])
    latent = torch.nn.functional.interpolate(image, size=size, mode=MASK_DOWNSAMPLE_MODE, align_corners=False)
    return latent[0].numpy()


def latent_region(mask_image: np.ndarray) -> np.ndarray:
    """The generated region on the latent grid: 1 where the voxel's x4 block holds any mask voxel (float32)."""
    x, y, z = (s // LATENT_DOWNSAMPLE for s in mask_image.shape)
    blocks = mask_image[: x * 4, : y * 4, : z * 4].reshape(x, 4, y, 4, z, 4)
    return blocks.max(axis=(1, 3, 5)).astype(np.float32)


def feather_weight(nodule_xyz: np.ndarray, region_xyz: np.ndarray, spacing_xyz, feather_mm: float) -> np.ndarray:
    """Blend weight: 1 in the nodule, linear to 0 at ``feather_mm`` from it, 0 outside ``region_xyz``."""
    distance = ndimage.distance_transform_edt(~nodule_xyz, sampling=spacing_xyz)
    weight = np.clip(1.0 - distance / max(feather_mm, 1e-6), 0.0, 1.0)
    return np.where(region_xyz, weight, 0.0)


def stepped_timestep(scheduler, timestep: int) -> int:
    """The timestep whose noise level ``scheduler.step`` produces from ``timestep`` (negative: none, clean)."""
    from monai.networks.schedulers import DDIMScheduler

    if isinstance(scheduler, DDIMScheduler):
        return timestep - scheduler.num_train_timesteps // scheduler.num_inference_steps
    return timestep - 1


@torch.no_grad()
def sample_latent(network: HRLDMNet, scheduler, z0: torch.Tensor, mask_channels: torch.Tensor,
                  region: torch.Tensor, subtype: int, histogram: np.ndarray, generator: torch.Generator,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                  trace: Optional[Callable[[int, torch.Tensor, Optional[torch.Tensor]], None]] = None) -> torch.Tensor:
    """Algorithm 2: denoise the masked latent with the background anchored to ``z0`` re-noised to t-1
    (fresh noise per DDPM step, the fixed starting noise for DDIM; see the module docstring).

    ``trace(t-1, latent, noise)``, when given, sees every step's re-anchored latent and the noise the
    background was re-noised with (``None`` at the last step, anchored to ``z0`` itself)."""
    from monai.networks.schedulers import DDIMScheduler

    report = progress or no_progress
    device = z0.device
    labels = torch.tensor([subtype], device=device)
    hist = torch.as_tensor(np.asarray(histogram, dtype=np.float32), device=device)[None]
    x = torch.randn(z0.shape, generator=generator, device=device)
    fixed_noise = x.clone() if isinstance(scheduler, DDIMScheduler) else None
    timesteps = scheduler.timesteps
    for number, t in enumerate(timesteps):
        check_cancel(cancel)
        t_batch = torch.full((1,), int(t), device=device, dtype=torch.long)
        noise_pred = network(x, t_batch, mask_channels, labels, hist)
        x, _ = scheduler.step(noise_pred, int(t), x, generator=generator)
        previous = stepped_timestep(scheduler, int(t))
        if previous >= 0:
            noise = fixed_noise if fixed_noise is not None else torch.randn(z0.shape, generator=generator, device=device)
            background = scheduler.add_noise(z0, noise, torch.tensor([previous], device=device))
        else:
            noise, background = None, z0
        x = region * x + (1.0 - region) * background
        if trace is not None:
            trace(previous, x, noise)
        report((number + 1) / len(timesteps), f"denoising step {number + 1}/{len(timesteps)}")
    return x


def checked_request(ct: Volume, nodule_mask: Volume, subtype: str | int, steps: int, config: Mapping[str, Any]) -> str:
    """The subtype's name; :class:`InputError` for a mask off the CT grid or empty, or steps out of range."""
    require_same_grid(ct, nodule_mask, "CT", "nodule mask")
    name = SUBTYPES[subtype_index(subtype)]
    if not 1 <= int(steps) <= int(config["scheduler"]["num_train_timesteps"]):
        raise InputError(f"steps must be 1..{config['scheduler']['num_train_timesteps']}, got {steps}")
    if not (np.asarray(nodule_mask.array) > 0.5).any():
        raise InputError("the nodule mask is empty: nothing to inpaint")
    return name


def seeded_sampler(config: Mapping[str, Any], sampler: str, steps: int, seed: Optional[int],
                   device: torch.device) -> tuple[Any, torch.Generator]:
    """The scheduler set to ``steps`` and the generator every draw of the sampling comes from."""
    scheduler = build_scheduler(config, sampler)
    scheduler.set_timesteps(int(steps), device=device)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**63))
    return scheduler, generator


def inpaint_roi(ct: Volume, nodule_mask: Volume, subtype: str | int, histogram: np.ndarray,
                network: HRLDMNet, autoencoder: torch.nn.Module, config: Mapping[str, Any],
                scale_factor: float, sampler: str = "ddpm", steps: int = 1000, seed: Optional[int] = 0,
                lung_mask: Optional[Volume] = None,
                progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None
                ) -> tuple[Volume, dict]:
    """HR-LDM inpainting of one nodule; returns ``(new CT, info)`` (see the module docstring).

    With a ``lung_mask`` (non-zero = lung, on the CT grid) the blend outside the nodule only
    touches lung voxels: chest wall, mediastinum and airways around a juxta-pleural nodule stay
    bit-identical.
    """
    if lung_mask is not None:
        require_same_grid(ct, lung_mask, "CT", "lung mask")
    name = checked_request(ct, nodule_mask, subtype, steps, config)
    axes = NetworkAxes.of(ct)
    labels_xyz = axes.to_network(np.rint(np.asarray(nodule_mask.array)).astype(np.int16))
    ct_xyz = axes.to_network(np.asarray(ct.array))
    spacing_xyz = axes.spacing_xyz(ct)
    roi = latent_roi(labels_xyz > 0, config)
    labels_roi = roi.crop(labels_xyz) * (_roi_inside(roi, labels_xyz.shape))
    device = next(network.parameters()).device

    check_cancel(cancel)
    z_mu = encode_ct(autoencoder, roi.crop(ct_xyz).astype(np.float32), window_latent=roi.latent_size(),
                     progress=scaled_progress(progress, 0.0, 0.05), cancel=cancel)
    z0 = z_mu.to(device) * float(scale_factor)
    nodule = labels_roi > 0
    channels = torch.as_tensor(mask_channels(labels_roi, histogram, spacing_xyz, config)[None], device=device)
    region_latent = latent_region(nodule) > 0
    region = torch.as_tensor(region_latent[None, None].astype(np.float32), device=device)

    scheduler, generator = seeded_sampler(config, sampler, steps, seed, device)
    latent = sample_latent(network, scheduler, z0, channels, region, subtype_index(name), histogram, generator,
                           scaled_progress(progress, 0.05, 0.9), cancel)
    decoded = decode_latent(autoencoder, latent, scale_factor=float(scale_factor), window_latent=roi.latent_size(),
                            progress=scaled_progress(progress, 0.9, 1.0), cancel=cancel)
    region_image = np.kron(region_latent, np.ones((4, 4, 4), bool))
    weight = feather_weight(nodule, region_image, spacing_xyz, float(config["blend"]["feather_mm"]))
    if lung_mask is not None:
        lung_roi = roi.crop(axes.to_network(np.asarray(lung_mask.array) > 0))
        weight = np.where(nodule | lung_roi, weight, 0.0)

    out_xyz = np.array(ct_xyz, copy=True)
    volume_slices, roi_slices = roi.inside_slices(ct_xyz.shape)
    w = weight[roi_slices]
    original = out_xyz[volume_slices].astype(np.float64)
    blended = w * decoded[roi_slices] + (1.0 - w) * original
    target = out_xyz[volume_slices]
    changed = w > 0
    target[changed] = cast_hu_like(blended[changed], out_xyz.dtype)
    out = ct.with_array(np.ascontiguousarray(axes.from_network(out_xyz)))
    info = {"mode": "roi", "subtype": name, "sampler": sampler, "steps": int(steps), "seed": seed,
            "target_histogram": [float(v) for v in validate_histogram(histogram)],
            "roi_start_xyz": roi.start_xyz.tolist(), "roi_size_xyz": roi.size_xyz.tolist(),
            "latent_roi_size": list(roi.latent_size()), "changed_voxels": int(changed.sum())}
    return out, info


def _roi_inside(roi: LatentROI, shape_xyz) -> np.ndarray:
    """1 for ROI voxels inside the volume, 0 for padding (padded mask voxels are not nodule)."""
    inside = np.zeros(tuple(int(s) for s in roi.size_xyz), np.int16)
    inside[roi.inside_slices(shape_xyz)[1]] = 1
    return inside

