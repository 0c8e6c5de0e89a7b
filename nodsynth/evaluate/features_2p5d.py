"""2.5D features of one prepared volume: each plane's slices through a 2-D network, in batches.

Per plane, as ``get_features_2p5d`` of the published script: the slices in the chosen index
range; optionally the "empty" ones dropped (maximum below -700 HU, decided on the HU slices);
the intensity normalisation of :mod:`.normalisation` over the range's whole stack (before any
slice is dropped); the network output averaged over its spatial axes. Unlike the script the
slices go through the network ``batch_size`` at a time, so memory stays bounded whatever the
volume size; the result is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np

from ..progress import CancelToken, check_cancel
from .normalisation import normalise_slices, stack_range
from .planes import PLANES, plane_stack

EMPTY_SLICE_HU = -700.0
"""A slice whose maximum is below this is "empty" (the script's ``empty_threshold``)."""
DEFAULT_BATCH_SIZE = 16

SliceRanges = Mapping[str, "tuple[int, int]"]
BatchDone = Callable[[int], None]


@dataclass(frozen=True)
class FeatureOptions:
    """``drop_empty``: drop slices whose maximum is below -700 HU; ``batch_size``: slices per forward pass."""

    drop_empty: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE


def spatial_average(output):
    """Mean over every axis after the channel axis (an already pooled ``(n, C)`` output is kept)."""
    return output.mean(dim=tuple(range(2, output.dim()))) if output.dim() > 2 else output


def kept_slices(stack: np.ndarray, drop_empty: bool) -> np.ndarray:
    """Indices into ``stack`` of the slices to keep."""
    if not drop_empty:
        return np.arange(len(stack))
    peaks = stack.reshape(len(stack), -1).max(axis=1)
    return np.flatnonzero(peaks >= EMPTY_SLICE_HU)


def plane_features(stack: np.ndarray, network, device, options: FeatureOptions,
                   on_batch: Optional[BatchDone] = None, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """``(n_kept, channels)`` float32 features of one plane's ``(n, rows, cols)`` HU slice stack."""
    import torch

    low, high = stack_range(stack)
    keep = kept_slices(stack, options.drop_empty)
    chunks = []
    with torch.no_grad():
        for first in range(0, len(keep), options.batch_size):
            check_cancel(cancel)
            index = keep[first:first + options.batch_size]
            slices = torch.from_numpy(np.ascontiguousarray(stack[index], dtype=np.float32)).to(device)
            output = network(normalise_slices(slices, low.to(device), high.to(device)))
            chunks.append(spatial_average(output).float().cpu().numpy())
            if on_batch is not None:
                on_batch(len(index))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=0)


def slice_count(ranges: SliceRanges) -> int:
    """Number of slices a volume sends through the network (before dropping empty ones)."""
    return sum(stop - start for start, stop in ranges.values())


def volume_features(array_xyz: np.ndarray, ranges: SliceRanges, network, device, options: FeatureOptions,
                    on_batch: Optional[BatchDone] = None, cancel: Optional[CancelToken] = None
                    ) -> dict[str, np.ndarray]:
    """Plane name -> ``(n_kept, channels)`` features; ``ranges`` gives each plane's ``[start, stop)``."""
    return {plane: plane_features(plane_stack(array_xyz, plane, *ranges[plane]), network, device, options,
                                  on_batch, cancel)
            for plane in PLANES}
