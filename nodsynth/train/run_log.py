"""The TensorBoard log of a training run (``--tensorboard``): ``<out>/tensorboard``, written by rank 0 only.

Scalars ``train/loss``, ``train/lr`` and ``val/loss`` per optimizer step; at each validation an image
``val/latent_slice`` (:data:`SAMPLE_SLICE_TAG`): an axial slice of latent channel 0 of the first validation
example (``train controlnet``: the middle one; ``train hrldm``: through the nodule's generated region), clean |
noised | denoised in one step by the network, side by side; view with
``tensorboard --logdir <out>/tensorboard``. Needs the ``tensorboard`` package (``pip install
nodsynth[train]``); asking for the log without it is refused before any work.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError

FOLDER = "tensorboard"
SAMPLE_SLICE_TAG = "val/latent_slice"


def axial_strip(latents: Sequence, z: Optional[int] = None) -> np.ndarray:
    """The axial slice ``z`` (default: the middle one) of channel 0 of each ``[1, C, x, y, z]`` latent, side by
    side (rows y, columns x), scaled together to 0..1 (float32 ``[y, x * len(latents)]``)."""
    slices = [np.asarray(latent[0, 0, :, :, latent.shape[-1] // 2 if z is None else z].detach().float().cpu()).T
              for latent in latents]
    strip = np.concatenate(slices, axis=1).astype(np.float32)
    low, high = float(strip.min()), float(strip.max())
    return (strip - low) / (high - low) if high > low else np.zeros_like(strip)


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--tensorboard``."""
    parser.add_argument("--tensorboard", action="store_true",
                        help="TensorBoard log (loss, lr, validation loss, a latent slice) in OUT/tensorboard (needs the tensorboard package)")


class RunLog:
    """Scalars and images to TensorBoard, or nothing when not asked for (or not rank 0)."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self._writer: Optional[object] = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard "
                             "(or nodsynth[train])") from exc
        self._writer = SummaryWriter(log_dir=str(Path(out_dir) / FOLDER))

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        """A grey image (``[H, W]`` in 0..1)."""
        if self._writer is not None:
            self._writer.add_image(name, image, int(step), dataformats="HW")

    def scalar(self, name: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(name, float(value), int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
