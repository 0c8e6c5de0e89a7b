"""What the NodMAISI module's Review > Compare view computes, without Slicer: one real / synthetic pair
compared by :func:`nodsynth.review.compare.compare_case`, boiled down to what the view shows (the
per-nodule table, the nodule centres to step through, the contours, the optional difference volume).

:func:`compare_for_view` is the job target the module runs in its job process; its result is small
and picklable: the masks come back cropped to their bounding boxes (blocks of the CT grid).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from nodsynth.progress import CancelToken, ProgressFn
from nodsynth.review.compare import compare_case, difference_volume
from nodsynth.volume import Volume, nonzero_extent_kji


@dataclass
class ComparisonView:
    """One pair's numbers and layers for the Compare view."""

    rows: list
    """One dict per nodule, keys :data:`nodsynth.review.compare.NODULE_COLUMNS`."""
    summary: dict
    """The per-case row (:meth:`~nodsynth.review.compare.CaseComparison.summary`)."""
    centres_lps_mm: list
    """Each nodule's centre (LPS mm, the CT's frame), in table order."""
    conditioning: Optional[Volume]
    """Every nodule's conditioning mask (uint8 0/1), cropped to their bounding box; None when empty."""
    resegmented: Optional[Volume]
    """The click re-segmentations of the synthetic CT (uint8 0/1), cropped; None when nothing was found."""
    difference: Optional[Volume] = None
    """``synthetic - real`` (int16 HU) on the whole grid, when asked for."""


def union_box(masks: list, grid: Volume) -> Optional[Volume]:
    """The union of 0/1 masks on ``grid`` cropped to its non-zero bounding box (None when empty)."""
    union = np.zeros(grid.shape_kji, dtype=np.uint8)
    for mask in masks:
        union[np.asarray(mask.array) > 0] = 1
    extent = nonzero_extent_kji(union)
    if extent is None:
        return None
    box = grid.with_array(union).crop(*extent)
    return box.with_array(np.ascontiguousarray(box.array))


def compare_for_view(real: Volume, synthetic: Volume, labelmap: Optional[Volume] = None,
                     mask: Optional[Volume] = None, edited_labelmap: Optional[Volume] = None,
                     with_difference: bool = False, progress: Optional[ProgressFn] = None,
                     cancel: Optional[CancelToken] = None) -> ComparisonView:
    """Compare ``synthetic`` with ``real`` (arguments as :func:`~nodsynth.review.compare.compare_case`)
    and return what the Compare view shows."""
    comparison = compare_case(real, synthetic, labelmap=labelmap, mask=mask, edited_labelmap=edited_labelmap,
                              progress=progress, cancel=cancel)
    nodules = comparison.nodules
    return ComparisonView(
        rows=comparison.nodule_rows(), summary=comparison.summary(),
        centres_lps_mm=[tuple(float(v) for v in n.centre_lps_mm) for n in nodules],
        conditioning=union_box([n.mask for n in nodules], real),
        resegmented=union_box([n.resegmented for n in nodules], real),
        difference=difference_volume(real, synthetic) if with_difference else None)
