"""``downstream detect``: a MONAI ``lung_nodule_ct_detection`` bundle run over CTs (real ones and their twins),
detections written as LUNA16's ``seriesuid, coordX, coordY, coordZ, probability`` (world LPS mm, the
box centres), the file ``nodsynth evaluate froc --detections`` reads.

* The CT list is a CSV ``seriesuid, ct`` (the ``cts.csv`` of ``cohort export --format luna16``) with,
  for annotations, a ``labelmap`` column (MAISI ids); paths relative to the list.
* The annotations (``seriesuid, coordX, coordY, coordZ, diameter_mm``, the file ``evaluate froc
  --annotations`` reads) are the label-23 connected components (26-connected) of each label map: centroid
  (LPS mm) and equivalent-sphere diameter (mm).
* As the bundle's ``RetinaNetInferer``: a CT larger than the sliding window (voxels after resampling) runs
  window by window, a smaller one in one pass. The bundle runs in half precision on a GPU; here float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io.atomic import write_csv_atomic
from ..io.tables import existing_file, read_rows
from ..errors import InputError
from ..progress import ProgressFn, no_progress
from ..review.compare import nodule_components
from ..sphere import sphere_diameter_mm
from ..volume import Volume
from ..io.volume_files import read_volume
from .detect_bundle import BundleSettings, read_bundle
from .detect_image import box_centres_lps, detector_image

DETECTION_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "probability")
ANNOTATION_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


@dataclass(frozen=True)
class Scan:
    seriesuid: str
    ct: Path
    labelmap: Optional[Path]


@dataclass(frozen=True)
class ScanDetections:
    """One CT's detections: boxes ``(n, 6)`` xyzxyz in the detector image's voxel index (clipped to it), their
    scores, the image's affine (voxel index -> RAS mm) and the box centres in world LPS mm."""

    boxes: np.ndarray
    scores: np.ndarray
    affine_ras: np.ndarray
    centres_lps: np.ndarray


def read_scan_table(path: Path, labelmaps: bool) -> list[Scan]:
    """The CT list: ``seriesuid, ct`` (and ``labelmap`` when ``labelmaps``), files checked, UIDs unique."""
    required = ("seriesuid", "ct") + (("labelmap",) if labelmaps else ())
    scans, seen = [], set()
    for line, row in read_rows(path, required, "CT list"):
        if not row["seriesuid"] or row["seriesuid"] in seen:
            raise InputError(f"{path} line {line}: seriesuid {row['seriesuid']!r} is empty or repeated")
        seen.add(row["seriesuid"])
        ct = existing_file(path, line, "ct", row["ct"])
        if ct is None:
            raise InputError(f"{path} line {line}: the ct cell is empty")
        labelmap = existing_file(path, line, "labelmap", row["labelmap"]) if labelmaps else None
        if labelmaps and labelmap is None:
            raise InputError(f"{path} line {line}: the labelmap cell is empty (needed for the annotations)")
        scans.append(Scan(row["seriesuid"], ct, labelmap))
    return scans


def require_window(window: Sequence[int], settings: BundleSettings) -> list[int]:
    """The sliding window in voxels (x, y, z of the resampled CT); each a positive multiple of ``size_divisible``."""
    window = [int(v) for v in window]
    if len(window) != 3 or any(w <= 0 or w % d for w, d in zip(window, settings.size_divisible)):
        raise InputError(f"--patch-voxels must be three positive voxel counts, multiples of the bundle's size_divisible "
                         f"{'x'.join(map(str, settings.size_divisible))}, got {'x'.join(map(str, window))}")
    return window


def detect_scan(found, ct: Volume, settings: BundleSettings, window: Sequence[int], device: str) -> ScanDetections:
    """Run the ``RetinaNetDetector`` ``found`` on ``ct``; boxes clipped to the image (empty ones dropped)."""
    import torch
    from monai.data.box_utils import clip_boxes_to_image

    image = detector_image(ct, settings)
    affine = np.asarray(image.affine, dtype=np.float64)
    spatial = tuple(image.shape[1:])
    with torch.no_grad():
        result = found([image.as_tensor().to(device)], use_inferer=int(np.prod(spatial)) >= int(np.prod(window)))[0]
    boxes, keep = clip_boxes_to_image(result["box"].detach().cpu().float(), spatial, remove_empty=True)
    boxes = boxes.numpy().astype(np.float64)
    scores = result["label_scores"].detach().cpu().numpy().astype(np.float64)[keep.numpy()]
    return ScanDetections(boxes, scores, affine, box_centres_lps(boxes, affine))


def _mm(values) -> dict:
    return dict(zip(("coordX", "coordY", "coordZ"), (round(float(v), 3) for v in values)))


def detection_rows(seriesuid: str, detections: ScanDetections) -> list[dict]:
    return [{"seriesuid": seriesuid, **_mm(c), "probability": round(float(p), 6)}
            for c, p in zip(detections.centres_lps, detections.scores)]


def annotation_rows(seriesuid: str, labelmap: Volume) -> list[dict]:
    """One row per label-23 component: centroid (LPS mm) and equivalent-sphere diameter (mm)."""
    rows = []
    for mask in nodule_components(labelmap):
        kji = np.argwhere(np.asarray(mask.array) > 0)
        centroid = mask.index_to_world(kji[:, ::-1].astype(np.float64)).mean(axis=0)
        rows.append({"seriesuid": seriesuid, **_mm(centroid),
                     "diameter_mm": round(sphere_diameter_mm(len(kji) * mask.voxel_volume_mm3), 3)})
    return rows


def build_detector(settings: BundleSettings, widen: float, window: Sequence[int], device: str):
    """The bundle's detector with its weights loaded, in evaluation mode on ``device``."""
    from .detect_network import detector, load_weights, retinanet

    network = retinanet(settings, widen)
    load_weights(network, settings)
    network.eval().to(device)
    found = detector(settings, network, window)
    found.eval()
    return found


def detect(bundle: Path, cts: Path, out: Path, annotations: Optional[Path] = None, window: Optional[Sequence[int]] = None,
           widen: float = 1.0, device: str = "cpu", progress: ProgressFn = no_progress) -> tuple[int, int]:
    """Detect on every CT of the list; write ``out`` (and ``annotations``); ``(detections, annotated nodules)``."""
    settings = read_bundle(bundle)
    window = require_window(window if window is not None else settings.window_voxels, settings)
    scans = read_scan_table(cts, annotations is not None)
    truth = [r for s in scans if s.labelmap is not None for r in annotation_rows(s.seriesuid, read_volume(s.labelmap))]
    found = build_detector(settings, widen, window, device)
    rows: list[dict] = []
    for number, scan in enumerate(scans):
        progress(number / len(scans), f"{scan.seriesuid}")
        rows += detection_rows(scan.seriesuid, detect_scan(found, read_volume(scan.ct), settings, window, device))
    if annotations is not None:
        write_csv_atomic(annotations, truth, ANNOTATION_COLUMNS)
    write_csv_atomic(out, rows, DETECTION_COLUMNS)
    progress(1.0, "done")
    return len(rows), len(truth)
