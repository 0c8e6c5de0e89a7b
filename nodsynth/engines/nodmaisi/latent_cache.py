"""A small cache of encoded CT boxes, so repeated ROI edits of one scan skip the VAE encode.

Interactive use edits the same nodule several times; the encoded original box does not change
between those edits. Entries are keyed by the SHA-1 of the box's voxels together with its shape,
dtype and spacing, so a different CT (or a changed one) never hits a stale entry.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch

DEFAULT_ENTRIES = 8  # a 32^3 x 4 latent is 0.5 MB


def box_key(ct_box: np.ndarray, spacing_mm: Sequence[float]) -> str:
    """Identity of a CT box: its voxels, shape, dtype and spacing."""
    digest = hashlib.sha1(np.ascontiguousarray(ct_box).tobytes())
    digest.update(repr((ct_box.shape, str(ct_box.dtype), [round(float(s), 6) for s in spacing_mm])).encode())
    return digest.hexdigest()


class LatentCache:
    """Least-recently-used map from :func:`box_key` to encoded latents."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = int(entries)
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0

    def get_or_encode(self, key: str, encode: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached latent for ``key``, or ``encode()`` stored under it."""
        if key in self._store:
            self._store.move_to_end(key)
            self.hits += 1
            return self._store[key]
        latent = encode()
        if self.entries > 0:
            self._store[key] = latent
            while len(self._store) > self.entries:
                self._store.popitem(last=False)
        return latent
