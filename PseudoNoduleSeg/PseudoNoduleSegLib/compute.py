"""What PseudoNoduleSeg computes, without Slicer: one nodule mask and its measurements per point.

The module's Logic converts MRML nodes to :class:`nodsynth.Volume` and LPS points, calls
:func:`segment_points` (the GUI: :func:`segment_points_boxed` in its job process), then writes the
masks as segments and the measurements as a table on the main thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from nodsynth.errors import InputError
from nodsynth.progress import CancelToken, ProgressFn, check_cancel, no_progress, scaled_progress
from nodsynth.volume import Volume, nonzero_extent_kji

from NodMAISICommon.labelmaps import split_lung_input

METHODS = ("kmeans", "gmm", "fcm", "otsu", "pins")
"""Segmentation methods of :func:`nodsynth.segment.segment_nodule` offered in the module."""


@dataclass(frozen=True)
class SegmentOptions:
    """The module's Advanced parameters."""

    method: str = "kmeans"
    box_size_mm: float = 0.0  # cube edge of the first VOI; 0 = automatic from the click
    expand_mm: float = 0.0  # grow each mask by this physical distance
    fill_holes: bool = True
    restrict_to_lung: bool = False  # keep only lung voxels (from the lung input, else CT threshold)
    keep_low_contrast: bool = False  # keep a mask refused as "no nodule at this point" (plain parenchyma)

    def checked(self) -> "SegmentOptions":
        if self.method not in METHODS:
            raise InputError(f"unknown segmentation method {self.method!r}; use one of {', '.join(METHODS)}")
        if not (np.isfinite(self.box_size_mm) and self.box_size_mm >= 0):
            raise InputError(f"box size must be >= 0 mm (0 = automatic), got {self.box_size_mm}")
        if not (np.isfinite(self.expand_mm) and self.expand_mm >= 0):
            raise InputError(f"expansion must be >= 0 mm, got {self.expand_mm}")
        return self


def options_from_parameters(parameters: Any) -> SegmentOptions:
    """Options from the module's parameter node wrapper (or any object with the same attributes)."""
    return SegmentOptions(method=str(parameters.method), box_size_mm=float(parameters.boxSizeMm),
                          expand_mm=float(parameters.expandMm), fill_holes=bool(parameters.fillHoles),
                          restrict_to_lung=bool(parameters.restrictToLung),
                          keep_low_contrast=bool(parameters.keepLowContrast)).checked()


@dataclass
class NoduleOutcome:
    """One point's result: the mask on the CT grid and a flat row of measurements."""

    point_index: int
    mask: Volume
    measurements: dict[str, Any]


def lung_for(ct: Volume, options: SegmentOptions, lung: Optional[Volume]) -> Optional[Volume]:
    """The lung mask / label map the nodules are restricted to, or ``None`` when not restricting."""
    if not options.restrict_to_lung:
        return None
    if lung is not None:
        return lung
    from nodsynth.place import lung_from_ct

    return lung_from_ct(ct)


def segment_points(ct: Volume, points_lps: Sequence[Sequence[float]], options: SegmentOptions = SegmentOptions(),
                   lung: Optional[Volume] = None, point_indices: Optional[Sequence[int]] = None,
                   progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> list[NoduleOutcome]:
    """Segment and measure the nodule under each LPS point (mm); ``point_indices`` name them (default 0..n-1).
    A point on plain parenchyma is refused (:func:`~nodsynth.segment.contrast.no_nodule_error`) unless
    ``options.keep_low_contrast``.

    ``lung`` (a 0/1 mask or a MAISI label map on the CT grid) is used for the restriction and for
    lobe / pleural-distance measurements.
    """
    from nodsynth.segment import segment_nodule
    from nodsynth.segment.contrast import no_nodule_error

    options = options.checked()
    points = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
    indices = list(range(len(points))) if point_indices is None else [int(i) for i in point_indices]
    if len(indices) != len(points):
        raise InputError(f"{len(points)} points but {len(indices)} point indices")
    report = progress or no_progress
    restrict = lung_for(ct, options, lung)
    box = None if options.box_size_mm == 0 else (options.box_size_mm,) * 3
    outcomes = []
    for n, (index, point) in enumerate(zip(indices, points)):
        check_cancel(cancel)
        report(n / max(len(points), 1), f"nodule {index + 1}: segmenting")
        result = segment_nodule(ct, point, box_size_mm=box, method=options.method, lung_mask=restrict,
                                expand_mm=options.expand_mm, fill_holes=options.fill_holes,
                                progress=scaled_progress(report, n / len(points), (n + 0.7) / len(points)),
                                cancel=cancel)
        report((n + 0.7) / len(points), f"nodule {index + 1}: measuring")
        from nodsynth.measure import measure_nodule

        if not result.mask.array.any():
            raise InputError(f"nodule {index + 1}: nothing was segmented at {np.round(point, 1).tolist()} mm (LPS)")
        if result.low_contrast and not options.keep_low_contrast:
            raise no_nodule_error(point, result.contrast_hu, "tick 'Keep low-contrast masks' (Advanced) to keep it")
        labelmap, lung_mask = split_lung_input(lung)
        measured = measure_nodule(ct, result.mask, labelmap=labelmap, lung_mask=lung_mask).to_dict()
        row = {"nodule": f"Nodule {index + 1}", "method": options.method, **measured}
        outcomes.append(NoduleOutcome(index, result.mask, row))
    report(1.0, f"{len(outcomes)} nodule(s) segmented")
    return outcomes


def segment_points_boxed(ct: Volume, points_lps: Sequence[Sequence[float]], options: SegmentOptions = SegmentOptions(),
                         lung: Optional[Volume] = None, point_indices: Optional[Sequence[int]] = None,
                         progress: Optional[ProgressFn] = None,
                         cancel: Optional[CancelToken] = None) -> list[NoduleOutcome]:
    """:func:`segment_points` with each mask cropped to its bounding box (a block of the CT's grid): what
    crosses back from the job process is the size of the nodules, not of the CT."""
    outcomes = segment_points(ct, points_lps, options, lung, point_indices, progress=progress, cancel=cancel)
    for outcome in outcomes:
        outcome.mask = outcome.mask.crop(*nonzero_extent_kji(outcome.mask.array))  # never empty: checked above
    return outcomes
