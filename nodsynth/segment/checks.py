"""Input checks for click segmentation: the image is CT in HU, the click is not in air, the box fits."""
from __future__ import annotations

import numpy as np

from ..errors import GeometryError, InputError
from ..volume import Volume, require_finite

AIR_HU = -900.0
"""A click whose neighbourhood never exceeds this is in air or empty lung, not on a nodule."""

AIR_CHECK_RADIUS_MM = 3.0
"""Half-edge (mm) of the neighbourhood searched for tissue around a click."""

MIN_CT_HU = -500.0
"""A CT in Hounsfield units of a chest holds air or lung below this value."""


def require_ct_in_hu(ct: Volume) -> None:
    """Raise :class:`InputError` unless ``ct`` looks like a chest CT in Hounsfield units.

    Checked on a strided sample so that it costs little on whole scans: the image must
    hold values below -500 HU (air/lung) and must not be an 8-bit 0..255 picture.
    """
    if not np.issubdtype(ct.array.dtype, np.number) or np.issubdtype(ct.array.dtype, np.bool_):
        raise InputError(f"the CT must hold numbers in Hounsfield units, got dtype {ct.array.dtype}")
    require_finite(ct, "the CT")
    step = max(1, int(round((ct.array.size / 2e6) ** (1 / 3))))
    sample = ct.array[::step, ::step, ::step]
    low, high = float(sample.min()), float(sample.max())
    if low >= 0 and high <= 255:
        raise InputError(f"the image is not a CT in Hounsfield units: its values lie in {low:.0f}..{high:.0f} "
                         "(an 8-bit picture?); give the original CT")
    if low > MIN_CT_HU:
        raise InputError(f"the image is not a chest CT in Hounsfield units: no value below {MIN_CT_HU:.0f} HU "
                         f"(air/lung), minimum {low:.0f}; apply the rescale slope/intercept first")


def require_not_air(ct: Volume, click_kji) -> None:
    """Raise :class:`InputError` when every voxel within 3 mm of the click is below -900 HU."""
    half = np.ceil(AIR_CHECK_RADIUS_MM / ct.spacing[::-1]).astype(int)
    center = np.asarray(click_kji, dtype=int)
    sl = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(center, half))
    peak = float(ct.array[sl].max())
    if peak < AIR_HU:
        raise InputError(f"the click at voxel k,j,i={list(map(int, click_kji))} is in air: no voxel within "
                         f"{AIR_CHECK_RADIUS_MM:g} mm is above {AIR_HU:.0f} HU (highest {peak:.0f}); "
                         "click on the nodule")


def require_box_fits(ct: Volume, box_size_mm) -> np.ndarray:
    """Validate a box size ``(w, h, d)`` in mm (i, j, k order) and return it; it must fit in the volume."""
    box = np.asarray(box_size_mm, dtype=np.float64).reshape(-1)
    if box.shape != (3,) or not np.all(np.isfinite(box)) or np.any(box <= 0):
        raise InputError(f"box size must be three positive millimetre values w,h,d, got {box_size_mm!r}")
    extent_mm = np.asarray(ct.size_ijk) * ct.spacing
    if np.any(box > extent_mm + 1e-6):
        raise GeometryError(f"box {np.round(box, 2).tolist()} mm is larger than the volume "
                            f"({np.round(extent_mm, 2).tolist()} mm along i, j, k)")
    return box


def read_ct(path) -> Volume:
    """Read a CT file and check it is a chest CT in Hounsfield units (:func:`require_ct_in_hu`)."""
    from ..io.volume_files import read_volume

    ct = read_volume(path)
    try:
        require_ct_in_hu(ct)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return ct
