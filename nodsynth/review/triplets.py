"""Per-nodule PNG triplets: real | synthetic | difference, in the axial, coronal and sagittal planes.

Real and synthetic are shown at the lung window (:data:`nodsynth.overlay.DEFAULT_WINDOW_HU`) with
the conditioning mask's contour (green) on both and the re-segmentation's contour (red) on the
synthetic; the difference (synthetic - real) at +-:data:`DIFFERENCE_WINDOW_HU` (grey = no change).
Each panel is at least :data:`PANEL_PX` pixels wide, names its window in its title and carries a
:data:`SCALE_BAR_MM` scale bar.
"""
from __future__ import annotations

import numpy as np

from ..overlay import BACKGROUND_RGB, DEFAULT_WINDOW_HU, GAP_PX, compose_panels
from ..volume import Volume
from .fidelity import NoduleFidelity
from .planes import PLANES, cut, pixel_size_mm, plane_slices

DIFFERENCE_WINDOW_HU = 400.0
"""The difference panel maps -400..+400 HU onto black..white."""
HALF_WIDTH_MM = 30.0
"""Each panel shows a square of twice this around the nodule."""
CONDITIONING_RGB = (90, 255, 90)
RESEGMENTED_RGB = (255, 60, 60)
PANEL_PX = 240
"""Smallest width of a panel's image (pixels): the crop is enlarged a whole number of times to reach it."""
SCALE_BAR_MM = 10.0


def panel_scale(volume: Volume, half_width_mm: float = HALF_WIDTH_MM) -> int:
    """The whole enlargement that makes a ``2 * half_width_mm`` crop at least :data:`PANEL_PX` pixels wide."""
    crop_px = 2.0 * half_width_mm / float(min(volume.spacing))
    return max(1, int(np.ceil(PANEL_PX / crop_px)))


def window_label(window_hu: tuple[float, float]) -> str:
    """``W 1500 / L -600 HU``: a display window as radiologists write it."""
    low, high = window_hu
    return f"W {high - low:g} / L {(high + low) / 2:g} HU"


def stack_rows(rows: list):
    """One ``PIL.Image`` with the given images one below the other (left-aligned, dark gaps)."""
    from PIL import Image

    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + GAP_PX * (len(rows) - 1)),
                      BACKGROUND_RGB)
    top = 0
    for row in rows:
        sheet.paste(row, (0, top))
        top += row.height + GAP_PX
    return sheet


def nodule_triplet(real: Volume, synthetic: Volume, nodule: NoduleFidelity, half_width_mm: float = HALF_WIDTH_MM):
    """``PIL.Image``: three rows (planes) x three columns (real, synthetic, difference) around the nodule."""
    centre = real.world_to_kji(nodule.centre_lps_mm)
    lung, difference = window_label(DEFAULT_WINDOW_HU), f"+-{DIFFERENCE_WINDOW_HU:g} HU"
    rows = []
    for plane in PLANES:
        index = plane_slices(real, centre, plane, half_width_mm)
        given = (cut(nodule.mask.array, index, plane), CONDITIONING_RGB)
        found = (cut(nodule.resegmented.array, index, plane), RESEGMENTED_RGB)
        real_hu = cut(real.array, index, plane).astype(np.float64)
        synthetic_hu = cut(synthetic.array, index, plane).astype(np.float64)
        rows.append(compose_panels(
            [(f"{plane} real  {lung}", real_hu, [given]),
             (f"{plane} synthetic  {lung}", synthetic_hu, [given, found]),
             (f"{plane} synthetic - real  {difference}", synthetic_hu - real_hu, [],
              (-DIFFERENCE_WINDOW_HU, DIFFERENCE_WINDOW_HU))],
            scale=panel_scale(real, half_width_mm), pixel_size_mm=pixel_size_mm(real, plane), scale_bar_mm=SCALE_BAR_MM))
    return stack_rows(rows)
