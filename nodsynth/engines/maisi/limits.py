"""MAISI-v2's limits on the output grid (checked by MAISI's own ``check_input``) and a valid grid near any input.

In the network axes (x, y, z RAS): x and y sizes equal and one of 256/384/512 voxels; z one of
128..768 in steps of 128; x and y spacing equal, 0.5..3.0 mm; z spacing 0.5..5.0 mm; field of
view in x and y at least 256 mm.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

XY_SIZES = (256, 384, 512)
Z_SIZES = (128, 256, 384, 512, 640, 768)
XY_SPACING_MM = (0.5, 3.0)
Z_SPACING_MM = (0.5, 5.0)
MIN_XY_FOV_MM = 256.0
SPACING_TOLERANCE = 1e-3


def grid_problems(size_xyz: Sequence[int], spacing_xyz_mm: Sequence[float]) -> list[str]:
    """Every way a grid breaks MAISI's limits, as sentences (empty when the grid is valid)."""
    nx, ny, nz = (int(v) for v in size_xyz)
    sx, sy, sz = (float(v) for v in spacing_xyz_mm)
    problems = []
    if nx != ny:
        problems.append(f"x and y sizes must be equal, got {nx} x {ny} voxels")
    if nx not in XY_SIZES or ny not in XY_SIZES:
        problems.append(f"x/y size must be one of {', '.join(map(str, XY_SIZES))} voxels, got {nx} x {ny}")
    if nz not in Z_SIZES:
        problems.append(f"z size must be one of {', '.join(map(str, Z_SIZES))} voxels, got {nz}")
    if abs(sx - sy) > SPACING_TOLERANCE * max(sx, sy):
        problems.append(f"x and y spacing must be equal, got {sx:g} x {sy:g} mm")
    if not all(XY_SPACING_MM[0] <= s <= XY_SPACING_MM[1] for s in (sx, sy)):
        problems.append(f"x/y spacing must be {XY_SPACING_MM[0]}..{XY_SPACING_MM[1]} mm, got {sx:g} x {sy:g} mm")
    if not Z_SPACING_MM[0] <= sz <= Z_SPACING_MM[1]:
        problems.append(f"z spacing must be {Z_SPACING_MM[0]}..{Z_SPACING_MM[1]} mm, got {sz:g} mm")
    fov = min(nx * sx, ny * sy)
    if fov < MIN_XY_FOV_MM:
        problems.append(f"field of view in x/y must be at least {MIN_XY_FOV_MM:g} mm, got {fov:.1f} mm "
                        f"({nx} x {sx:g} mm)")
    return problems


def _fit_axis(fov_mm: float, spacing_mm: float, sizes: Sequence[int], spacing_range: Sequence[float]) -> tuple[int, float]:
    """Smallest allowed size covering ``fov_mm`` at about ``spacing_mm``; coarser spacing if even the largest is short."""
    spacing = float(np.clip(spacing_mm, *spacing_range))
    for size in sizes:
        if size * spacing >= fov_mm - 1e-6:
            return size, spacing
    return sizes[-1], float(np.clip(fov_mm / sizes[-1], *spacing_range))


def valid_grid(size_xyz: Sequence[int], spacing_xyz_mm: Sequence[float]) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """A grid within MAISI's limits covering the same field of view (x/y at least 256 mm) at similar spacing.

    x and y share the finer of the two spacings and the larger field of view.
    """
    fov = [int(n) * float(s) for n, s in zip(size_xyz, spacing_xyz_mm)]
    xy_fov = max(fov[0], fov[1], MIN_XY_FOV_MM)
    nxy, sxy = _fit_axis(xy_fov, min(spacing_xyz_mm[0], spacing_xyz_mm[1]), XY_SIZES, XY_SPACING_MM)
    nz, sz = _fit_axis(fov[2], spacing_xyz_mm[2], Z_SIZES, Z_SPACING_MM)
    return (nxy, nxy, nz), (sxy, sxy, sz)
