"""HR-LDM inference as published (``--mode paper``): Algorithm 2 on the whole-CT latent.

1. The CT is prepared as the published MAISI preparation (and ``nodsynth encode``) does
   (:func:`nodsynth.train.encode.prepare`): RAS network axes, -1000..1000 HU to 0..1, each axis resized
   (trilinear) to the nearest multiple of the autoencoder's ``volume_multiple_voxels`` (128 for
   MAISI-v2); the nodule mask is resized nearest-neighbour with it. The whole CT is encoded by the
   frozen autoencoder (posterior mean, tiled): ``z0 = scale_factor * z_mu``.
2. The C = 3 mask channels (:mod:`.paper_masks`: solid core, ground-glass region, spiculation) and
   the generated region ``M`` (every latent voxel whose 4 x 4 x 4 block holds nodule).
3. :func:`~.inference.sample_latent`, the sampler ROI mode uses: from ``z_T ~ N(0, I)`` every step
   predicts the noise, steps to ``t-1`` and replaces the latent outside ``M`` by ``z0`` forward-noised
   to ``t-1`` (``z0`` itself after the last step).
4. The whole latent is decoded and resized back (trilinear) to the CT's grid. As Algorithm 2 returns
   the decoded ``x0``, **every voxel of the result is the autoencoder's output**: outside the nodule
   (beyond the decoder's reach) it is the VAE reconstruction of the input, not the input itself
   (ROI mode keeps the input bit-identical outside its blend). MAISI's decoder normalises over the whole
   decode tile, so a tile holding generated latents is decoded with the group-norm statistics of the
   input latent's tile (:mod:`~nodsynth.engines.maisi.reference_norms`, one more decode of that tile):
   otherwise the new nodule would shift every voxel of its tile (up to hundreds of HU with untrained
   networks) and the background would not be the reconstruction. A request's lung mask, which limits
   ROI mode's blend, has nothing to limit here and is not used.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch

from ...histogram import validate_histogram
from ...progress import CancelToken, ProgressFn, check_cancel, scaled_progress
from ...render.insert import cast_hu_like
from ...volume import Volume
from ..base import subtype_index
from ..maisi.codec import decode_latent, decode_window
from ..maisi.orientation import NetworkAxes
from .inference import checked_request, latent_region, sample_latent, seeded_sampler
from .network import HRLDMNet
from .paper_masks import paper_mask_channels


def autoencoder_config(config: Mapping[str, Any]) -> dict:
    """The MAISI configuration of the HR-LDM configuration's autoencoder."""
    from ..maisi import load_config

    return load_config(config["autoencoder_config"])


def prepare_whole(ct: Volume, nodule_mask: Optional[Volume], config: Mapping[str, Any]):
    """:class:`~nodsynth.train.encode.Prepared` of the whole CT (and mask) at the published sizes."""
    from ...train.controlnet import volume_multiple
    from ...train.encode import prepare

    return prepare(ct, nodule_mask, volume_multiple(autoencoder_config(config)))


def encode_whole(autoencoder: torch.nn.Module, prepared, config: Mapping[str, Any]) -> torch.Tensor:
    """The unscaled posterior mean ``[1, 4, x, y, z]`` (CPU) of a prepared whole CT."""
    from ...train.encode import encode_prepared

    return encode_prepared(autoencoder, prepared, autoencoder_config(config))


def decode_whole(autoencoder: torch.nn.Module, latent: torch.Tensor, input_latent: torch.Tensor, scale_factor: float,
                 config: Mapping[str, Any], progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> np.ndarray:
    """``latent / scale_factor`` decoded in the autoencoder's tiles with ``input_latent``'s group-norm
    statistics (module docstring, step 4) -> HU ``[X, Y, Z]`` on the prepared grid."""
    maisi = autoencoder_config(config)
    device = next(autoencoder.parameters()).device
    return decode_latent(autoencoder, latent, scale_factor=scale_factor, window_latent=decode_window(maisi, device),
                         overlap=float(maisi["decode"]["overlap"]), progress=progress, cancel=cancel,
                         reference=input_latent)


def resize_to(array_xyz: np.ndarray, shape_xyz) -> np.ndarray:
    """Trilinear resize of a float volume to ``shape_xyz`` (the inverse of the preparation's resize)."""
    if tuple(array_xyz.shape) == tuple(shape_xyz):
        return array_xyz
    tensor = torch.as_tensor(np.ascontiguousarray(array_xyz, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(tensor, size=tuple(int(n) for n in shape_xyz), mode="trilinear",
                                           align_corners=False)[0, 0].numpy()


def inpaint_whole(ct: Volume, nodule_mask: Volume, subtype: str | int, histogram: np.ndarray,
                  network: HRLDMNet, autoencoder: torch.nn.Module, config: Mapping[str, Any],
                  scale_factor: float, sampler: str = "ddpm", steps: int = 1000, seed: Optional[int] = 0,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                  trace=None) -> tuple[Volume, dict]:
    """HR-LDM inpainting of one nodule on the whole-CT latent; returns ``(new CT, info)`` (module docstring).

    ``trace`` is handed to :func:`~.inference.sample_latent` (tests check every step's re-noising)."""
    checked_request(ct, nodule_mask, subtype, steps, config)
    axes = NetworkAxes.of(ct)
    prepared = prepare_whole(ct, nodule_mask, config)
    device = next(network.parameters()).device
    check_cancel(cancel)
    z0 = encode_whole(autoencoder, prepared, config).to(device) * float(scale_factor)
    labels = prepared.labels.astype(np.int16)
    channels = torch.as_tensor(paper_mask_channels(labels, histogram, prepared.spacing_xyz)[None], device=device)
    region = torch.as_tensor(latent_region(labels > 0)[None, None], device=device)
    scheduler, generator = seeded_sampler(config, sampler, steps, seed, device)
    latent = sample_latent(network, scheduler, z0, channels, region, subtype_index(subtype), histogram, generator,
                           scaled_progress(progress, 0.05, 0.9), cancel, trace)
    decoded = decode_whole(autoencoder, latent, z0, float(scale_factor), config, scaled_progress(progress, 0.9, 1.0),
                           cancel)
    shape_xyz = axes.to_network(np.asarray(ct.array)).shape
    out_xyz = cast_hu_like(resize_to(decoded, shape_xyz), np.asarray(ct.array).dtype)
    out = ct.with_array(np.ascontiguousarray(axes.from_network(out_xyz)))
    info = {"mode": "paper", "sampler": sampler, "steps": int(steps), "seed": seed,
            "target_histogram": [float(v) for v in validate_histogram(histogram)],
            "prepared_size_xyz": list(prepared.image.shape[2:]), "latent_size": list(z0.shape[2:]),
            "generated_latent_voxels": int(region.sum())}
    return out, info
