"""``nodsynth train hrldm --mode paper``: the training examples of HR-LDM as published.

Each manifest row (``image, mask, subtype[, histogram]``, as ROI mode reads) is a **whole CT**: it is
prepared as the published MAISI preparation does (:func:`~nodsynth.engines.hrldm.paper_inference.prepare_whole`:
each axis resized to the nearest multiple of 128 voxels for MAISI-v2, the mask nearest-neighbour) and
encoded whole; its mask channels are the paper's three (:mod:`nodsynth.engines.hrldm.paper_masks`:
solid core, ground-glass region, spiculation = mask label 3 or zeros). The loss is ROI mode's
Algorithm 1 with the histogram bins spanning the observed feature range
(:func:`~nodsynth.engines.hrldm.softhist.range_histograms`), one CT per step (batch 1, the paper's:
CTs differ in size).

Precomputed embeddings: a manifest column ``embedding`` naming a ``nodsynth encode`` file
(``<stem>_emb.pt``) gives the CT's latent instead of encoding it here. HR-LDM uses the MAISI VAE that
``nodsynth encode`` uses and the same preparation, so the latent is the one this module would make,
provided the file was encoded with the same autoencoder file (its SHA-256 is checked: refused otherwise,
and with ``--random-autoencoder``) at the CT's published size. ``nodsynth encode --sample`` files hold a
sampled latent (the published script's choice) rather than the posterior mean used here otherwise.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..engines.base import subtype_index
from ..errors import InputError
from ..volume import Volume

PAPER_BATCH_SIZE = 1


def check_paper_batch(batch_size: int) -> None:
    """:class:`InputError` unless one CT per step: whole CTs of different sizes do not stack."""
    if batch_size != PAPER_BATCH_SIZE:
        raise InputError(f"--mode paper trains on one whole CT per step (batch size 1, as published); "
                         f"got --batch-size {batch_size}")


def make_whole_sample(ct: Volume, mask: Volume, subtype: str | int, autoencoder: torch.nn.Module, config: dict,
                      histogram: Optional[np.ndarray] = None, latent: Optional[torch.Tensor] = None):
    """A :class:`~nodsynth.train.hrldm.NoduleSample` of a whole CT (see the module docstring); ``latent``
    ``[4, x, y, z]`` (unscaled, of the prepared CT) when already encoded."""
    from ..engines.hrldm.inference import latent_region
    from ..engines.hrldm.paper_inference import encode_whole, prepare_whole
    from ..engines.hrldm.paper_masks import paper_mask_channels
    from ..presets import nodule_histogram
    from .hrldm import NoduleSample

    if not (np.asarray(mask.array) > 0).any():
        raise InputError("the nodule mask is empty")
    if histogram is None:
        histogram = nodule_histogram(ct, mask)
    prepared = prepare_whole(ct, mask, config)
    labels = prepared.labels.astype(np.int16)
    if not (labels > 0).any():
        raise InputError("the nodule vanished when the CT was resized to the published size; its mask is too small")
    if latent is None:
        latent = encode_whole(autoencoder, prepared, config)[0]
    elif tuple(latent.shape[1:]) != tuple(n // 4 for n in prepared.image.shape[2:]):
        raise InputError(f"the embedding's latent {list(latent.shape[1:])} is not that of this CT at its published "
                         f"size {list(prepared.image.shape[2:])} voxels (another CT, or another resize)")
    return NoduleSample(latent, torch.as_tensor(paper_mask_channels(labels, histogram, prepared.spacing_xyz)),
                        torch.as_tensor(latent_region(labels > 0)[None]),
                        torch.as_tensor((labels > 0)[None].astype(np.float32)), subtype_index(subtype),
                        torch.as_tensor(np.asarray(histogram, dtype=np.float32)))


def embedded_sample(ct: Volume, mask: Volume, subtype: str | int, embedding_path, config: dict,
                    vae_sha256: Optional[str], histogram: Optional[np.ndarray] = None):
    """:func:`make_whole_sample` with the latent of a ``nodsynth encode`` file, checked (module docstring)."""
    from ..engines.hrldm.config import config_mode
    from .encode import read_embedding

    if config_mode(config) != "paper":
        raise InputError(f"{embedding_path}: embeddings are whole-CT latents, read in --mode paper only")
    if vae_sha256 is None:
        raise InputError(f"{embedding_path}: reading embeddings needs the autoencoder file they were encoded with "
                         "(--autoencoder or the weights folder), not --random-autoencoder")
    saved = read_embedding(embedding_path)
    if saved.get("vae_sha256") != vae_sha256:
        raise InputError(f"{embedding_path} was encoded with autoencoder SHA-256 {str(saved.get('vae_sha256'))[:12]}..., "
                         f"this run uses {vae_sha256[:12]}...: encode again with this autoencoder")
    return make_whole_sample(ct, mask, subtype, None, config, histogram, latent=saved["latent"][0].float())
