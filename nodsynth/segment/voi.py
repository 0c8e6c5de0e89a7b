"""Volumes of interest (VOI): axis-aligned index boxes around a click or a box, clipped to the CT."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..volume import Volume

MAX_VOI_MM = 60.0
"""Default cap on the VOI edge (mm) when it grows to contain a large nodule."""

INITIAL_VOI_MM = 30.0
"""Edge (mm) of the first VOI around a click without a box."""


@dataclass(frozen=True)
class Voi:
    """Index box ``[start, stop)`` in ``k, j, i`` order, inside a volume of shape ``volume_shape_kji``."""

    start_kji: tuple[int, int, int]
    stop_kji: tuple[int, int, int]
    volume_shape_kji: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start_kji, self.stop_kji))  # type: ignore[return-value]

    @property
    def shape_kji(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start_kji, self.stop_kji))  # type: ignore[return-value]

    def local_kji(self, kji) -> tuple[int, int, int]:
        """A volume index ``(k, j, i)`` relative to this VOI."""
        return tuple(int(v) - a for v, a in zip(kji, self.start_kji))  # type: ignore[return-value]

    def inner_faces_touched(self, mask_voi: np.ndarray) -> list[int]:
        """Axes (0=k, 1=j, 2=i) on which ``mask_voi`` touches a VOI face that is not the volume's edge."""
        axes = []
        for axis in range(3):
            first = np.take(mask_voi, 0, axis=axis).any() and self.start_kji[axis] > 0
            last = (np.take(mask_voi, -1, axis=axis).any()
                    and self.stop_kji[axis] < self.volume_shape_kji[axis])
            if first or last:
                axes.append(axis)
        return axes

    def to_dict(self) -> dict:
        return {"start_kji": list(self.start_kji), "stop_kji": list(self.stop_kji)}


def voi_around(ct: Volume, center_kji, edge_mm) -> Voi:
    """VOI centred on ``center_kji`` with physical edge lengths ``edge_mm`` (one number or k, j, i)."""
    edge = np.broadcast_to(np.asarray(edge_mm, dtype=np.float64), (3,))
    half_vox = np.ceil(0.5 * edge / ct.spacing[::-1]).astype(int)
    center = np.asarray(center_kji, dtype=int)
    shape = np.asarray(ct.shape_kji)
    start = np.clip(center - half_vox, 0, shape)
    stop = np.clip(center + half_vox + 1, 0, shape)
    return Voi(tuple(int(v) for v in start), tuple(int(v) for v in stop), ct.shape_kji)

