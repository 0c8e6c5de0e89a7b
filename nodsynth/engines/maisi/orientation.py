"""Axis order of the MAISI networks: arrays ``[x, y, z]`` in RAS (MAISI loads data with ``Orientation("RAS")``).

A :class:`Volume` stores ``[k, j, i]`` with LPS directions; :class:`NetworkAxes` is the
permutation and flips between the two. Directions are snapped to the nearest world axis, as
MONAI's ``Orientation`` does for oblique scans.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import GeometryError
from ...volume import Volume

RAS_SIGN_OF_LPS_AXIS = np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class NetworkAxes:
    """``perm[w]`` = axis of the ``[k, j, i]`` array that becomes network axis ``w`` (x, y, z);
    ``flip[w]`` = whether that axis is reversed to point to R, A, S."""

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]

    @classmethod
    def of(cls, volume: Volume) -> "NetworkAxes":
        world_axis = np.argmax(np.abs(volume.direction), axis=0)  # per volume axis i, j, k
        if sorted(world_axis.tolist()) != [0, 1, 2]:
            raise GeometryError("the volume's direction matrix has no clear axis order (two axes share "
                                "one world direction); resample it to an axis-aligned grid first")
        perm, flip = [0, 0, 0], [False, False, False]
        for vol_axis in range(3):
            w = int(world_axis[vol_axis])
            perm[w] = 2 - vol_axis  # array axis of i is 2, of j 1, of k 0
            ras_sign = np.sign(volume.direction[w, vol_axis]) * RAS_SIGN_OF_LPS_AXIS[w]
            flip[w] = bool(ras_sign < 0)
        return cls(tuple(perm), tuple(flip))

    def to_network(self, array_kji: np.ndarray) -> np.ndarray:
        """``[k, j, i]`` array -> network ``[x, y, z]`` (RAS) array (a view when possible)."""
        out = np.transpose(array_kji, self.perm)
        flips = tuple(w for w in range(3) if self.flip[w])
        return np.flip(out, axis=flips) if flips else out

    def from_network(self, array_xyz: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_network`."""
        flips = tuple(w for w in range(3) if self.flip[w])
        out = np.flip(array_xyz, axis=flips) if flips else array_xyz
        return np.transpose(out, np.argsort(self.perm))

    def sizes_xyz(self, volume: Volume) -> tuple[int, int, int]:
        """Voxels along the network axes x, y, z."""
        return tuple(int(volume.shape_kji[a]) for a in self.perm)  # type: ignore[return-value]

    def spacing_xyz(self, volume: Volume) -> tuple[float, float, float]:
        """Spacing (mm) along the network axes x, y, z."""
        spacing_kji = volume.spacing[::-1]
        return tuple(float(spacing_kji[a]) for a in self.perm)  # type: ignore[return-value]
