"""Where a synthetic nodule may go: candidate centroids in the lung (HR-LDM §3.3).

* **Lung** comes from the lobe labels 28-32 of a MAISI label map (existing nodules, label 23,
  count as lung), from a binary lung mask, or, when neither exists, from a CT threshold
  (:func:`lung_from_ct`).
* **Inner region**: lung voxels whose physical distance (mm, Euclidean distance transform with
  the voxel spacing) to the nearest non-lung voxel exceeds the nodule radius, so a sphere of the
  requested diameter centred there lies wholly inside the lung.
* **Sub-pleural shell**: the lung voxels between the lung boundary and the inner region; a
  nodule centred there touches the pleura.
* Both regions exclude centroids closer than ``radius + clearance_mm`` to an existing nodule.

Work is done on the lung's bounding box (plus a margin that keeps the distances exact), so a
512x512x256 label map takes a few seconds. Centroids are returned as LPS world points (mm).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from .errors import InputError
from .labels import LOBE_IDS, NODULE
from .progress import CancelToken, ProgressFn, check_cancel, no_progress
from .volume import Volume, nonzero_extent_kji, require_same_grid

LUNG_THRESHOLD_HU = -500.0
"""CT fallback: voxels darker than this (HU) inside the body are air-filled lung."""

MIN_LUNG_COMPONENT_ML = 50.0
"""CT fallback: dark components smaller than this (millilitres) are not lung."""

PLACES = ("inner", "subpleural")


@dataclass
class PlacementRegions:
    """Candidate centroid masks for one nodule diameter, on a crop of the lung's grid."""

    inner: Volume  # bool: a nodule of ``diameter_mm`` centred here lies wholly in the lung
    subpleural: Volume  # bool: lung voxels outside ``inner`` (the shell along the pleura)
    lung: Volume  # bool: the lung mask on the same crop
    diameter_mm: float
    clearance_mm: float

    def region(self, where: str) -> Volume:
        """The mask for ``'inner'`` or ``'subpleural'``."""
        key = where.strip().lower().replace("-", "").replace("_", "")
        if key not in PLACES:
            raise InputError(f"unknown placement {where!r}; use one of {', '.join(PLACES)}")
        return self.inner if key == "inner" else self.subpleural


def lung_from_labelmap(labelmap: Volume) -> Volume:
    """Boolean lung mask: lobes 28-32 plus existing nodules (23) of a MAISI label map."""
    labels = np.asarray(labelmap.array)
    if not np.issubdtype(labels.dtype, np.integer):
        labels = np.rint(labels).astype(np.int32)
    lung = np.isin(labels, LOBE_IDS + (NODULE,))
    if not lung.any():
        raise InputError("the label map has no lung lobes (labels 28-32); give a lung mask or a CT instead")
    return labelmap.with_array(lung)


def nodules_from_labelmap(labelmap: Volume) -> Volume:
    """Boolean mask of the existing nodules (label 23) of a MAISI label map (float maps are rounded)."""
    labels = np.asarray(labelmap.array)
    if not np.issubdtype(labels.dtype, np.integer):
        labels = np.rint(labels)
    return labelmap.with_array(labels == NODULE)


def lung_from_ct(ct: Volume, threshold_hu: float = LUNG_THRESHOLD_HU) -> Volume:
    """Threshold fallback: air-filled components below ``threshold_hu`` not touching the in-plane border.

    Vessels and nodules inside the lung are filled slice by slice; components smaller than
    :data:`MIN_LUNG_COMPONENT_ML` are dropped.
    """
    dark = np.asarray(ct.array) < threshold_hu
    components, count = ndimage.label(dark)
    if count == 0:
        raise InputError(f"no voxels below {threshold_hu:.0f} HU: cannot find the lung in this CT")
    border = np.unique(np.concatenate([components[:, 0, :].ravel(), components[:, -1, :].ravel(),
                                       components[:, :, 0].ravel(), components[:, :, -1].ravel()]))
    sizes_ml = np.bincount(components.ravel(), minlength=count + 1) * ct.voxel_volume_mm3 / 1000.0
    keep = sizes_ml >= MIN_LUNG_COMPONENT_ML
    keep[0] = False
    keep[border] = False
    lung = keep[components]
    for k in range(lung.shape[0]):
        lung[k] = ndimage.binary_fill_holes(lung[k])
    if not lung.any():
        raise InputError("no lung found in the CT by thresholding; give a lung mask or a label map")
    return ct.with_array(lung)


def _bounding_crop(mask: np.ndarray, margin_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(start_kji, stop_kji)`` of the (non-empty) mask's bounding box grown by ``margin_kji`` voxels."""
    start, stop = nonzero_extent_kji(mask)
    return np.maximum(start - margin_kji, 0), np.minimum(stop + margin_kji, mask.shape)


def _distance_mm(mask: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """Physical distance (mm) of each True voxel to the nearest False voxel (outside the array = False)."""
    padded = np.pad(mask, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded, sampling=spacing_kji)[1:-1, 1:-1, 1:-1].astype(np.float32)


def placement_regions(lung: Volume, diameter_mm: float, nodules: Optional[Volume] = None,
                      clearance_mm: float = 2.0, progress: Optional[ProgressFn] = None,
                      cancel: Optional[CancelToken] = None) -> PlacementRegions:
    """Inner region and sub-pleural shell for a nodule of ``diameter_mm`` (see the module docstring).

    ``nodules`` (on the lung's grid) are existing nodules to keep ``clearance_mm`` away from.
    """
    report = progress or no_progress
    if not np.isfinite(diameter_mm) or diameter_mm <= 0:
        raise InputError(f"nodule diameter must be a positive number of millimetres, got {diameter_mm}")
    if clearance_mm < 0:
        raise InputError(f"clearance must be >= 0 mm, got {clearance_mm}")
    lung_array = np.asarray(lung.array).astype(bool)
    if not lung_array.any():
        raise InputError("the lung mask is empty")
    if nodules is not None:
        require_same_grid(lung, nodules, "lung mask", "nodule mask")
    radius_mm = 0.5 * float(diameter_mm)
    spacing_kji = lung.spacing[::-1]
    margin = np.ceil((radius_mm + clearance_mm) / spacing_kji).astype(int) + 2
    start, stop = _bounding_crop(lung_array, margin)
    crop = lung.crop(start, stop)
    lung_crop = lung_array[tuple(slice(a, b) for a, b in zip(start, stop))]
    report(0.1, "distance to the pleura")
    check_cancel(cancel)
    inner = _distance_mm(lung_crop, spacing_kji) > radius_mm
    allowed = np.ones_like(lung_crop)
    if nodules is not None:
        nodule_crop = np.asarray(nodules.array).astype(bool)[tuple(slice(a, b) for a, b in zip(start, stop))]
        if nodule_crop.any():
            report(0.5, "distance to existing nodules")
            check_cancel(cancel)
            allowed = ndimage.distance_transform_edt(~nodule_crop, sampling=spacing_kji) > radius_mm + clearance_mm
    report(1.0, "placement regions ready")
    return PlacementRegions(inner=crop.with_array(inner & allowed),
                            subpleural=crop.with_array(lung_crop & ~inner & allowed),
                            lung=crop.with_array(lung_crop), diameter_mm=float(diameter_mm),
                            clearance_mm=float(clearance_mm))


def sample_centroids(regions: PlacementRegions, where: str = "inner", count: int = 1,
                     seed: Optional[int] = 0) -> np.ndarray:
    """``count`` voxel-centre centroids (LPS mm, shape ``(count, 3)``) drawn uniformly from a region.

    Drawn without replacement while the region has enough voxels; the same seed gives the same points.
    """
    if count < 1:
        raise InputError(f"number of centroids must be >= 1, got {count}")
    region = regions.region(where)
    candidates = np.flatnonzero(region.array)
    if candidates.size == 0:
        raise InputError(f"no room for a {regions.diameter_mm:g} mm nodule in the {where} lung region "
                         f"(with {regions.clearance_mm:g} mm clearance from existing nodules)")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=count, replace=count > candidates.size)
    kji = np.stack(np.unravel_index(chosen, region.shape_kji), axis=1)
    return region.index_to_world(kji[:, ::-1].astype(np.float64))


def resolve_lung(ct: Optional[Volume] = None, labelmap: Optional[Volume] = None,
                 lung_mask: Optional[Volume] = None) -> tuple[Volume, Optional[Volume]]:
    """``(lung, existing_nodules)`` from the best source given: label map > lung mask > CT threshold."""
    if labelmap is not None:
        if ct is not None:
            require_same_grid(ct, labelmap, "CT", "label map")
        return lung_from_labelmap(labelmap), nodules_from_labelmap(labelmap)
    if lung_mask is not None:
        if ct is not None:
            require_same_grid(ct, lung_mask, "CT", "lung mask")
        return lung_mask.with_array(np.asarray(lung_mask.array) > 0), None
    if ct is None:
        raise InputError("placement needs a label map, a lung mask or a CT")
    return lung_from_ct(ct), None
