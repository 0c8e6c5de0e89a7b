"""How faithfully a synthetic CT reproduces one conditioned nodule.

For a nodule given by its conditioning mask (the label-23 component or mask the synthetic CT was
made from) the real and synthetic HU inside it are compared (40-bin HR-LDM histograms, their
Jensen-Shannon divergence; mean and standard deviation), and the synthetic nodule is re-segmented
with the click segmenter (:func:`nodsynth.segment.segment_nodule`) at the conditioning mask's
centre. The Dice overlap of that segmentation with the conditioning mask and their volume ratio
make NodMAISI's complaint about MAISI-v2 (the conditioned sub-centimetre nodule is often not
drawn) measurable per case: a nodule counts as **reproduced** when Dice >= :data:`REPRODUCED_DICE`
and the segmented nodule stands out from the lung around it by at least :data:`MIN_CONTRAST_HU`.

The contrast condition is needed because the click segmenter always returns the densest cluster
under the click, even in plain parenchyma: where a nodule was not drawn it outlines noise of about
the nodule's size, which can overlap the conditioning mask with Dice > 0.5.

An **inserted** nodule (the real CT has lung where the synthetic one has the nodule) has no real
counterpart: its JSD is not defined (``None``, shown as n/a with :data:`INSERTED_NOTE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError
from ..histogram import hu_histogram, jensen_shannon
from ..segment.contrast import MIN_CONTRAST_HU, contrast_hu
from ..sphere import sphere_diameter_mm
from ..volume import Volume, require_same_grid

REPRODUCED_DICE = 0.5
"""A synthetic nodule whose re-segmentation overlaps the conditioning mask at least this much is reproduced
(and stands out from the lung around it by :data:`~nodsynth.segment.contrast.MIN_CONTRAST_HU`)."""
INSERTED_NOTE = "inserted: no real nodule here, JSD n/a"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|) of two 0/1 masks (1.0 when both are empty)."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def click_point_lps(mask: Volume) -> np.ndarray:
    """Where to click on a nodule (LPS mm): its centroid, or the mask voxel nearest to it when the
    centroid falls outside a concave mask."""
    kji = np.argwhere(np.asarray(mask.array) > 0)
    if kji.size == 0:
        raise InputError("the nodule mask is empty: no centre to click on")
    centroid = kji.mean(axis=0)
    nearest = kji[np.argmin(((kji - centroid) * mask.spacing[::-1]) ** 2 @ np.ones(3))]
    inside = np.asarray(mask.array)[tuple(np.rint(centroid).astype(int))] > 0
    return mask.index_to_world((np.rint(centroid) if inside else nearest)[::-1].astype(np.float64))


@dataclass
class NoduleFidelity:
    """One nodule's numbers; :meth:`to_dict` is JSON-able (units in the key names)."""

    number: int
    centre_lps_mm: tuple[float, float, float]
    voxels: int
    volume_mm3: float
    mean_hu_real: float
    std_hu_real: float
    mean_hu_synthetic: float
    std_hu_synthetic: float
    jsd: Optional[float]
    """None for an inserted nodule (no real counterpart)."""
    resegmented_voxels: int
    dice: float
    volume_ratio: float
    contrast_hu: Optional[float]
    reproduced: bool
    note: str
    mask: Volume
    """The conditioning mask (0/1, on the CT grid)."""
    resegmented: Volume
    """The click segmentation of the synthetic CT (0/1; empty when the segmenter found nothing)."""

    @property
    def equivalent_diameter_mm(self) -> float:
        return sphere_diameter_mm(self.volume_mm3)

    def to_dict(self) -> dict:
        return {"nodule": self.number, "centre_lps_mm": [round(float(v), 3) for v in self.centre_lps_mm],
                "voxels": self.voxels, "volume_mm3": round(self.volume_mm3, 3),
                "equivalent_diameter_mm": round(self.equivalent_diameter_mm, 3),
                "mean_hu_real": round(self.mean_hu_real, 2), "std_hu_real": round(self.std_hu_real, 2),
                "mean_hu_synthetic": round(self.mean_hu_synthetic, 2),
                "std_hu_synthetic": round(self.std_hu_synthetic, 2), "jsd": None if self.jsd is None else round(self.jsd, 6),
                "resegmented_voxels": self.resegmented_voxels, "dice": round(self.dice, 4),
                "volume_ratio": round(self.volume_ratio, 4),
                "contrast_hu": None if self.contrast_hu is None else round(self.contrast_hu, 2),
                "reproduced": self.reproduced, "note": self.note}


def nodule_fidelity(real: Volume, synthetic: Volume, mask: Volume, real_mask: Optional[Volume] = None,
                    lung: Optional[Volume] = None, number: int = 1, inserted: bool = False) -> NoduleFidelity:
    """Compare one nodule of ``synthetic`` with ``real`` (see the module docstring).

    ``mask`` is the conditioning mask the synthetic CT was made from; ``real_mask`` the nodule in the
    real CT when it differs (an edited nodule; default ``mask``). ``lung`` (a 0/1 mask or MAISI label
    map on the grid) restricts the re-segmentation and the contrast shell to the lungs. ``inserted``: the
    real CT has no nodule there (its JSD is then None, with a note saying so). A segmenter
    that finds nothing at the centre gives Dice 0 and a ``note`` saying why.
    """
    from ..segment import segment_nodule
    from ..segment.postprocess import lung_region

    require_same_grid(real, synthetic, "real CT", "synthetic CT")
    require_same_grid(real, mask, "real CT", "nodule mask")
    real_mask = mask if real_mask is None else real_mask
    require_same_grid(real, real_mask, "real CT", "real nodule mask")
    inside = np.asarray(mask.array) > 0
    real_inside = np.asarray(real_mask.array) > 0
    if not inside.any() or not real_inside.any():
        raise InputError(f"nodule {number}: the mask is empty")
    real_hu = np.asarray(real.array, dtype=np.float64)[real_inside]
    synthetic_hu = np.asarray(synthetic.array, dtype=np.float64)[inside]
    centre = click_point_lps(mask)
    lung_array = None if lung is None else lung_region(lung, synthetic)
    note = ""
    try:
        found = segment_nodule(synthetic, centre, lung_mask=None if lung is None else
                               synthetic.with_array(lung_array.astype(np.uint8))).mask
    except InputError as exc:  # nothing to segment at the centre: the nodule was not drawn
        found, note = mask.with_array(np.zeros(mask.shape_kji, np.uint8)), f"not segmented: {exc}"
    found_voxels = int(np.count_nonzero(found.array))
    overlap = dice(found.array, inside)
    contrast = contrast_hu(synthetic, np.asarray(found.array) > 0, inside, lung_array)
    reproduced = overlap >= REPRODUCED_DICE and contrast is not None and contrast >= MIN_CONTRAST_HU
    if overlap >= REPRODUCED_DICE and not reproduced:
        note = ("no lung around the nodule to compare with" if contrast is None else
                f"the segmented region stands out from the lung around it by only {contrast:.0f} HU "
                f"(< {MIN_CONTRAST_HU:g}): parenchyma, not a nodule")
    if inserted:
        note = "; ".join(filter(None, (INSERTED_NOTE, note)))
    return NoduleFidelity(
        number=number, centre_lps_mm=tuple(float(v) for v in centre), voxels=int(inside.sum()),
        volume_mm3=float(inside.sum() * real.voxel_volume_mm3),
        mean_hu_real=float(real_hu.mean()), std_hu_real=float(real_hu.std()),
        mean_hu_synthetic=float(synthetic_hu.mean()), std_hu_synthetic=float(synthetic_hu.std()),
        jsd=None if inserted else jensen_shannon(hu_histogram(real_hu), hu_histogram(synthetic_hu)),
        resegmented_voxels=found_voxels,
        dice=overlap, volume_ratio=found_voxels / float(inside.sum()), contrast_hu=contrast, reproduced=reproduced,
        note=note, mask=mask, resegmented=found)
