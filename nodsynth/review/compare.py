"""One real / synthetic pair compared: per nodule, per region, and for ROI edits.

:func:`compare_case` is what ``nodsynth review compare`` runs per pair and what the Slicer
*Compare* view calls: it returns a :class:`CaseComparison` whose :meth:`~CaseComparison.nodule_rows`
are the per-case table (one row per nodule, with its LPS centre for next / previous navigation).

Which nodules: the components of ``mask`` (each label > 0, or each connected component of a 0/1
mask), else the label-23 components of the label map the synthetic CT was conditioned on
(``edited_labelmap`` for an edit, else ``labelmap``). For an edit, each conditioning nodule's real
counterpart is the original label map's nodule that overlaps it most (itself when none does).
A nodule is **inserted** (no real counterpart, no JSD) when it lies wholly in ``changed`` or, for an
edit, overlaps no original nodule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError
from ..labelmap import as_integer_labelmap
from ..labels import NODULE
from ..measure import split_nodules
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..segment.postprocess import lung_region
from ..volume import Volume, require_same_grid
from .edit_fidelity import changed_labels, edit_fidelity
from .fidelity import NoduleFidelity, nodule_fidelity
from .regions import region_stats

NODULE_COLUMNS = ("case_id", "nodule", "x_lps_mm", "y_lps_mm", "z_lps_mm", "voxels", "volume_mm3",
                  "equivalent_diameter_mm", "mean_hu_real", "std_hu_real", "mean_hu_synthetic", "std_hu_synthetic",
                  "jsd", "resegmented_voxels", "dice", "volume_ratio", "contrast_hu", "reproduced", "note")
"""Columns of the per-nodule table (CSV, HTML, Slicer's Compare view)."""


@dataclass
class CaseComparison:
    """Everything measured for one real / synthetic pair."""

    case_id: str
    nodules: list[NoduleFidelity]
    regions: list[dict] = field(default_factory=list)
    edit: Optional[dict] = None

    def nodule_rows(self) -> list[dict]:
        """One flat dict per nodule with :data:`NODULE_COLUMNS` as keys (centre split into x, y, z)."""
        rows = []
        for nodule in self.nodules:
            record = nodule.to_dict()
            x, y, z = record.pop("centre_lps_mm")
            record.pop("nodule")
            rows.append({"case_id": self.case_id, "nodule": nodule.number, "x_lps_mm": x, "y_lps_mm": y,
                         "z_lps_mm": z, **record})
        return rows

    def summary(self) -> dict:
        """Per-case row: nodule count, how many were reproduced, and the edit numbers when there are any."""
        edit = self.edit or {}
        return {"case_id": self.case_id, "nodules": len(self.nodules),
                "reproduced": sum(n.reproduced for n in self.nodules),
                "bit_identical_fraction_outside": edit.get("bit_identical_fraction_outside"),
                "psnr_db_box": edit.get("psnr_db_box"), "ssim_box": edit.get("ssim_box")}

    def to_dict(self) -> dict:
        return {"case_id": self.case_id, "nodules": [n.to_dict() for n in self.nodules],
                "regions": self.regions, "edit": self.edit}


def nodule_components(labelmap: Volume) -> list[Volume]:
    """One 0/1 mask per connected label-23 component of a MAISI label map."""
    nodules = as_integer_labelmap(labelmap).array == NODULE
    return split_nodules(labelmap.with_array(nodules.astype(np.uint8))) if nodules.any() else []


def real_counterpart(conditioning: Volume, originals: list[Volume]) -> Volume:
    """The original nodule overlapping ``conditioning`` most; ``conditioning`` itself when none does."""
    inside = np.asarray(conditioning.array) > 0
    overlaps = [int(np.count_nonzero(inside & (np.asarray(o.array) > 0))) for o in originals]
    return originals[int(np.argmax(overlaps))] if overlaps and max(overlaps) > 0 else conditioning


def is_inserted(nodule_mask: Volume, changed: Optional[Volume], originals: list[Volume]) -> bool:
    """Whether the real CT has no nodule where ``nodule_mask`` is: wholly inside the changed region, or (an
    edit) overlapping none of the original nodules."""
    inside = np.asarray(nodule_mask.array) > 0
    if changed is not None and np.all(np.asarray(changed.array)[inside] > 0):
        return True
    return bool(originals) and not any(np.any(inside & (np.asarray(o.array) > 0)) for o in originals)


def difference_volume(real: Volume, synthetic: Volume) -> Volume:
    """``synthetic - real`` in HU (int16, clipped), on the shared grid: the Compare view's optional layer."""
    require_same_grid(real, synthetic, "real CT", "synthetic CT")
    diff = np.asarray(synthetic.array, dtype=np.int32) - np.asarray(real.array, dtype=np.int32)
    info = np.iinfo(np.int16)
    return real.with_array(np.clip(diff, info.min, info.max).astype(np.int16))


def compare_case(real: Volume, synthetic: Volume, labelmap: Optional[Volume] = None, mask: Optional[Volume] = None,
                 edited_labelmap: Optional[Volume] = None, changed: Optional[Volume] = None, margin_mm: float = 3.0,
                 case_id: str = "case", progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> CaseComparison:
    """Compare ``synthetic`` with ``real`` (see the module docstring).

    ``labelmap``: MAISI labels of the real CT (nodules 23, lobes 28-32, body 200) - nodules, lung for
    the re-segmentation, and region statistics. ``mask``: the conditioning nodule mask(s) instead of
    label 23. ``edited_labelmap`` (an ROI edit: the labels the synthetic CT was made from) or
    ``changed`` (a 0/1 mask of the voxels meant to change, e.g. an inserted nodule) adds the edit
    numbers, with the changed region grown by ``margin_mm``.
    """
    report = progress or no_progress
    require_same_grid(real, synthetic, "real CT", "synthetic CT")
    for name, volume in (("label map", labelmap), ("nodule mask", mask), ("edited label map", edited_labelmap),
                         ("changed-region mask", changed)):
        if volume is not None:
            require_same_grid(real, volume, "real CT", name)
    if edited_labelmap is not None and labelmap is None:
        raise InputError("an edited label map needs the original label map too (the change is their difference)")
    conditioning_labels = edited_labelmap if edited_labelmap is not None else labelmap
    if mask is not None:
        conditioning = split_nodules(mask)
    elif conditioning_labels is not None:
        conditioning = nodule_components(conditioning_labels)
    else:
        raise InputError("give a label map (nodules = label 23) or a nodule mask: nothing says where the nodules are")
    originals = nodule_components(labelmap) if edited_labelmap is not None else []
    lung = None if conditioning_labels is None else conditioning_labels.with_array(
        lung_region(conditioning_labels, real).astype(np.uint8))
    nodules = []
    for number, nodule_mask in enumerate(conditioning, start=1):
        check_cancel(cancel)
        report(0.8 * (number - 1) / max(len(conditioning), 1), f"nodule {number} of {len(conditioning)}")
        real_mask = real_counterpart(nodule_mask, originals) if originals else None
        nodules.append(nodule_fidelity(real, synthetic, nodule_mask, real_mask, lung=lung, number=number,
                                       inserted=is_inserted(nodule_mask, changed, originals)))
    check_cancel(cancel)
    report(0.85, "region statistics")
    regions = region_stats(real, synthetic, labelmap) if labelmap is not None else []
    edit = None
    if edited_labelmap is not None or changed is not None:
        report(0.95, "edit fidelity")
        region = changed_labels(labelmap, edited_labelmap) if edited_labelmap is not None else changed.array > 0
        edit = edit_fidelity(real, synthetic, region, margin_mm)
    report(1.0, "compared")
    return CaseComparison(case_id, nodules, regions, edit)
