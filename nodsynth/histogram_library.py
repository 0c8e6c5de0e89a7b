"""A library of real nodule HU histograms (per subtype and size), and the default HR-LDM target drawn from it.

The subtype mean of :mod:`nodsynth.presets` is a smooth curve that no real nodule has; the HR-LDM
network was trained with each nodule's own histogram. The default target is therefore one real
nodule's histogram: a nodule of the chosen subtype whose diameter is among the
:data:`NEIGHBOURS` closest (log scale) to the requested one, drawn with the request's seed.

``Resources/nodule_histograms.json`` (:func:`build_library`, ``nodsynth histograms library``) holds,
for each of the 736 LIDC-IDRI nodules of ``lidc_vois``, its id, subtype (LIDC ``Texture_value`` rule of
:func:`nodsynth.presets.subtype_from_texture`), consensus diameter and the voxel counts of the 40-bin
histogram of the CT inside the expert mask (stored from the first to the last non-empty bin). It is
derived from LIDC-IDRI (CC BY 3.0), attribution in the file and the README.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from .io.atomic import write_text_atomic
from .engines.base import SUBTYPES, subtype_index
from .errors import InputError
from .histogram import HIST_BINS, HIST_MAX_HU, HIST_MIN_HU, hu_counts, validate_histogram
from .presets import LabelledNodule, read_format_json
from .progress import CancelToken, ProgressFn, check_cancel, no_progress
from .resources import resource_path
from .sphere import sphere_diameter_mm
from .volume import Volume, require_same_grid
from .io.volume_files import read_volume

LIBRARY_RESOURCE = "nodule_histograms.json"
LIBRARY_FORMAT = "nodsynth-histogram-library-1"
NEIGHBOURS = 8
"""A drawn nodule is one of this many of the subtype closest in diameter."""
HISTOGRAM_SOURCES = ("library", "preset")
DEFAULT_HISTOGRAM_SOURCE = "library"
"""HR-LDM's default target: a real nodule's histogram; ``preset`` is the subtype mean."""
LIDC_ATTRIBUTION = ("Derived from LIDC-IDRI (The Cancer Imaging Archive), licensed CC BY 3.0: Armato SG III, "
                    "McLennan G, Bidaut L, et al. The Lung Image Database Consortium (LIDC) and Image Database Resource "
                    "Initiative (IDRI): a completed reference database of lung nodules on CT scans. Med Phys "
                    "2011;38(2):915-931. Data: doi:10.7937/K9/TCIA.2015.LO9QL9SX.")
LIDC_LICENCE = (LIDC_ATTRIBUTION + " Histograms of the CT inside the expert nodule masks of the ct-slicing crops; "
                "no image data.")


def library_entry(nodule: LabelledNodule) -> dict:
    """One library entry: id, subtype, diameter and the non-empty span of the 40-bin voxel counts."""
    ct, mask = read_volume(nodule.image), read_volume(nodule.mask)
    require_same_grid(ct, mask, "CT", "nodule mask")
    inside = np.asarray(mask.array) > 0
    if not inside.any():
        raise InputError(f"{nodule.mask}: the nodule mask is empty")
    counts = hu_counts(np.asarray(ct.array)[inside])
    used = np.flatnonzero(counts)
    diameter = nodule.diameter_mm if nodule.diameter_mm else equivalent_diameter_mm(mask)
    return {"id": nodule.image.name.split(".nii")[0], "subtype": nodule.subtype, "diameter_mm": round(float(diameter), 3),
            "first_bin": int(used[0]), "counts": [int(c) for c in counts[used[0]:used[-1] + 1]]}


def build_library(nodules: Iterable[LabelledNodule], source: str, progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> dict:
    """The library document of ``nodules`` (see the module docstring)."""
    report = progress or no_progress
    nodules = list(nodules)
    entries = []
    for number, nodule in enumerate(nodules):
        check_cancel(cancel)
        entries.append(library_entry(nodule))
        report((number + 1) / len(nodules), nodule.image.name)
    if not entries:
        raise InputError("no nodules to build a histogram library from")
    return {"format": LIBRARY_FORMAT, "bins": HIST_BINS, "range_hu": [HIST_MIN_HU, HIST_MAX_HU], "source": source,
            "licence": LIDC_LICENCE, "subtype_rule": "LIDC Texture_value 5,4 solid; 3 part-solid; 2,1 ground-glass",
            "nodules": entries}


def save_library(library: dict, path: str | os.PathLike) -> Path:
    """Write a library as compact JSON (one nodule per line) atomically."""
    head = {k: v for k, v in library.items() if k != "nodules"}
    lines = ",\n".join(json.dumps(e, separators=(",", ":")) for e in library["nodules"])
    text = json.dumps(head, indent=1)[:-2] + ',\n "nodules": [\n' + lines + "\n ]\n}\n"
    return write_text_atomic(path, text)


@lru_cache(maxsize=4)
def _read_library(file: str) -> dict:
    return read_format_json(file, LIBRARY_FORMAT, "histogram library")


def load_library(path: Optional[str | os.PathLike] = None) -> dict:
    """The library at ``path``, or the shipped ``Resources/nodule_histograms.json``."""
    return _read_library(str(Path(path) if path else resource_path(LIBRARY_RESOURCE)))


def entry_histogram(entry: dict) -> np.ndarray:
    """The normalised 40-bin histogram of a library entry."""
    counts = np.zeros(HIST_BINS)
    first = int(entry["first_bin"])
    counts[first:first + len(entry["counts"])] = entry["counts"]
    return validate_histogram(counts)


def library_histogram(subtype: str | int, diameter_mm: float, seed: Optional[int] = 0,
                      library: Optional[dict] = None) -> tuple[np.ndarray, dict]:
    """``(histogram, entry)`` of a real nodule of ``subtype`` and about ``diameter_mm``, drawn with ``seed``."""
    name = SUBTYPES[subtype_index(subtype)]
    if not np.isfinite(diameter_mm) or diameter_mm <= 0:
        raise InputError(f"the nodule diameter must be positive millimetres, got {diameter_mm}")
    entries = [e for e in (library or load_library())["nodules"] if e["subtype"] == name]
    if not entries:
        raise InputError(f"the histogram library has no {name} nodule")
    closeness = np.abs(np.log(np.array([e["diameter_mm"] for e in entries]) / float(diameter_mm)))
    nearest = np.argsort(closeness, kind="stable")[:NEIGHBOURS]
    chosen = entries[int(nearest[np.random.default_rng(seed).integers(len(nearest))])]
    return entry_histogram(chosen), chosen


def equivalent_diameter_mm(mask: Volume) -> float:
    """Diameter (mm) of the sphere with the volume of the mask's non-zero voxels."""
    voxels = int(np.count_nonzero(np.asarray(mask.array)))
    return sphere_diameter_mm(voxels * mask.voxel_volume_mm3)


def default_target_histogram(subtype: str | int, nodule_mask: Volume, seed: Optional[int] = 0) -> tuple[np.ndarray, str]:
    """``(histogram, source)``: a library nodule of ``subtype`` and the mask's equivalent diameter."""
    if not np.any(np.asarray(nodule_mask.array)):
        raise InputError("the nodule mask is empty: no nodule to choose a histogram for")
    histogram, entry = library_histogram(subtype, equivalent_diameter_mm(nodule_mask), seed)
    return histogram, f"library:{entry['id']}"


def target_histogram_of(request) -> tuple[np.ndarray, str]:
    """``(histogram, source)`` of an :class:`~nodsynth.engines.base.InpaintRequest`: its own (``given``) or,
    when it has none, :func:`default_target_histogram` for its subtype, mask and seed."""
    if request.histogram is not None:
        return validate_histogram(request.histogram), "given"
    return default_target_histogram(request.subtype, request.nodule_mask, request.seed)
