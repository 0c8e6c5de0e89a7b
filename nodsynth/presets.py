"""HU histogram presets per nodule subtype, and histograms taken from segmented nodules.

Every histogram is the HR-LDM one (:mod:`nodsynth.histogram`: 40 bins over -1000..400 HU,
sum 1). Presets are built from labelled nodules (CT crop + nodule mask + LIDC texture score):

* subtype from the LIDC consensus ``Texture_value`` (1..5, as in ``nodules.csv``):
  5 "Solid" and 4 "Solid/Mixed" -> ``solid``; 3 "Part Solid/Mixed" -> ``part-solid``;
  2 "Non-Solid/Mixed" and 1 "Non-Solid/GGO" -> ``ground-glass``. The rounded value decides, so a
  mixed reading follows its nearer texture (the same split as the ``Texture`` names).
* per subtype: the ``mean`` histogram (average of the nodules' histograms), its mean HU, and
  ``clusters``: k-means centres (scikit-learn, Euclidean on the 40 bins) ordered by mean HU.

The shipped defaults (``Resources/histogram_presets.json``) were computed this way from the 736
LIDC-IDRI nodules of ``../shared/data/lidc_vois`` (``nodsynth histograms build``); the file holds
numbers only. A histogram can also be edited: :func:`transform_histogram` shifts it (HU) and
widens it about its mean.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from .io.atomic import write_text_atomic
from .io.tables import csv_dicts
from .engines.base import SUBTYPES, subtype_index
from .errors import InputError
from .histogram import (BIN_CENTERS_HU, BIN_EDGES_HU, HIST_BINS, HIST_MAX_HU, HIST_MIN_HU, histogram_mean_hu,
                        hu_histogram, validate_histogram)
from .progress import CancelToken, ProgressFn, check_cancel, no_progress
from .resources import resource_path
from .volume import Volume, require_same_grid
from .io.volume_files import read_volume

PRESETS_RESOURCE = "histogram_presets.json"
PRESETS_FORMAT = "nodsynth-histogram-presets-1"
DEFAULT_CLUSTERS = 3

TEXTURE_VALUE_TO_SUBTYPE = {5: "solid", 4: "solid", 3: "part-solid", 2: "ground-glass", 1: "ground-glass"}


def nodule_histogram(ct: Volume, mask: Volume) -> np.ndarray:
    """40-bin HU histogram of the CT voxels inside a nodule mask (mask > 0) on the CT grid."""
    require_same_grid(ct, mask, "CT", "nodule mask")
    inside = np.asarray(mask.array) > 0
    if not inside.any():
        raise InputError("the nodule mask is empty: no voxels to take a histogram from")
    return hu_histogram(np.asarray(ct.array)[inside])


def subtype_from_texture(texture_value: float) -> str:
    """LIDC ``Texture_value`` (1..5) -> ``solid`` / ``part-solid`` / ``ground-glass``."""
    key = int(round(float(texture_value)))
    if key not in TEXTURE_VALUE_TO_SUBTYPE:
        raise InputError(f"LIDC Texture_value must be 1..5, got {texture_value!r}")
    return TEXTURE_VALUE_TO_SUBTYPE[key]


@dataclass
class LabelledNodule:
    """One training/preset nodule: CT crop, mask file and subtype."""

    image: Path
    mask: Path
    subtype: str
    diameter_mm: Optional[float] = None  # the table's diameter_mm (LIDC reader consensus) when it has one


def read_voi_table(vois_dir: str | os.PathLike, csv_path: Optional[str | os.PathLike] = None) -> list[LabelledNodule]:
    """Nodules of a ``lidc_vois``-style folder (``image/``, ``nodule_mask/``, ``nodules.csv`` with ``file`` and ``Texture_value``)."""
    folder = Path(vois_dir)
    table = Path(csv_path) if csv_path else folder / "nodules.csv"
    if not table.is_file():
        raise InputError(f"nodule table not found: {table}")
    rows = csv_dicts(table, "nodule table")
    missing = {"file", "Texture_value"} - set(rows[0] if rows else {})
    if missing:
        raise InputError(f"{table} lacks the column(s) {', '.join(sorted(missing))}")
    nodules = []
    for row in rows:
        image, mask = folder / "image" / row["file"], folder / "nodule_mask" / row["file"]
        if not image.is_file() or not mask.is_file():
            raise InputError(f"{row['file']}: expected {image} and {mask}")
        diameter = float(row["diameter_mm"]) if row.get("diameter_mm") else None
        nodules.append(LabelledNodule(image, mask, subtype_from_texture(row["Texture_value"]), diameter))
    if not nodules:
        raise InputError(f"{table} lists no nodules")
    return nodules


def histograms_of(nodules: Iterable[LabelledNodule], progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> tuple[np.ndarray, list[str]]:
    """``(histograms (N, 40), subtypes)`` of labelled nodules."""
    report = progress or no_progress
    nodules = list(nodules)
    rows, subtypes = [], []
    for number, nodule in enumerate(nodules):
        check_cancel(cancel)
        rows.append(nodule_histogram(read_volume(nodule.image), read_volume(nodule.mask)))
        subtypes.append(nodule.subtype)
        report((number + 1) / len(nodules), nodule.image.name)
    return np.array(rows), subtypes


def subtype_presets(histograms: np.ndarray, subtypes: list[str], clusters: int = DEFAULT_CLUSTERS,
                    seed: int = 0) -> dict:
    """Per-subtype ``{"count", "mean_hu", "mean", "clusters"}`` from nodule histograms."""
    from sklearn.cluster import KMeans

    if clusters < 1:
        raise InputError(f"number of clusters must be >= 1, got {clusters}")
    histograms = np.asarray(histograms, dtype=np.float64)
    labels = np.array(subtypes)
    presets = {}
    for subtype in SUBTYPES:
        group = histograms[labels == subtype]
        if len(group) == 0:
            continue
        mean = group.mean(axis=0)
        k = min(clusters, len(group))
        centres = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(group).cluster_centers_
        centres = np.clip(centres, 0.0, None)
        centres = centres / centres.sum(axis=1, keepdims=True)
        centres = centres[np.argsort(centres @ BIN_CENTERS_HU)]
        presets[subtype] = {"count": int(len(group)), "mean_hu": round(histogram_mean_hu(mean), 2),
                            "mean": _rounded(mean), "clusters": [_rounded(c) for c in centres]}
    if not presets:
        raise InputError("no nodules to build presets from")
    return presets


def _rounded(histogram: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in histogram]


def save_presets(presets: dict, path: str | os.PathLike, source: str) -> Path:
    """Write presets as JSON (numbers only) atomically."""
    document = {"format": PRESETS_FORMAT, "bins": HIST_BINS, "range_hu": [HIST_MIN_HU, HIST_MAX_HU],
                "source": source, "subtype_rule": "LIDC Texture_value 5,4 solid; 3 part-solid; 2,1 ground-glass",
                "presets": presets}
    return write_text_atomic(path, json.dumps(document, indent=1))


def read_format_json(file: str | os.PathLike, expected_format: str, what: str) -> dict:
    """A JSON document whose ``"format"`` is ``expected_format``; :class:`InputError` naming ``what`` otherwise."""
    try:
        document = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {what} {file}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != expected_format:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise InputError(f"{file} is not a nodsynth {what} file (format {found!r})")
    return document


def load_presets(path: Optional[str | os.PathLike] = None) -> dict:
    """Subtype -> preset dict, from ``path`` or the shipped ``Resources/histogram_presets.json``."""
    file = Path(path) if path else resource_path(PRESETS_RESOURCE)
    return read_format_json(file, PRESETS_FORMAT, "histogram preset")["presets"]


def preset_histogram(subtype: str | int, cluster: Optional[int] = None, presets: Optional[dict] = None) -> np.ndarray:
    """The preset histogram of a subtype: its mean, or k-means centre ``cluster`` (0 = darkest)."""
    name = SUBTYPES[subtype_index(subtype)]
    table = presets if presets is not None else load_presets()
    if name not in table:
        raise InputError(f"no histogram preset for subtype {name!r}")
    if cluster is None:
        return validate_histogram(table[name]["mean"])
    centres = table[name]["clusters"]
    if not 0 <= cluster < len(centres):
        raise InputError(f"subtype {name!r} has clusters 0..{len(centres) - 1}, not {cluster}")
    return validate_histogram(centres[cluster])


def read_histogram(path: str | os.PathLike) -> np.ndarray:
    """A histogram file: JSON (a list, or an object with ``"histogram"``) or text/CSV of 40 numbers."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"histogram file not found: {file}")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
            values = data["histogram"] if isinstance(data, dict) else data
        else:
            values = [float(v) for v in text.replace(",", " ").split()]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{file}: cannot read 40 histogram numbers ({exc})") from exc
    return validate_histogram(values)


def write_histogram(histogram: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a histogram as JSON (``{"histogram": [...], "bin_edges_hu": [...]}``) atomically."""
    hist = validate_histogram(histogram)
    return write_text_atomic(path, json.dumps({"histogram": _rounded(hist), "mean_hu": round(histogram_mean_hu(hist), 2),
                                               "bin_edges_hu": [float(e) for e in BIN_EDGES_HU]}, indent=1))


def transform_histogram(histogram: np.ndarray, shift_hu: float = 0.0, widen: float = 1.0,
                        samples_per_bin: int = 16) -> np.ndarray:
    """Shift a histogram by ``shift_hu`` and stretch it by ``widen`` about its mean; mass leaving -1000..400 HU is clipped into the end bins."""
    hist = validate_histogram(histogram)
    if not np.isfinite(widen) or widen <= 0:
        raise InputError(f"widen factor must be positive, got {widen}")
    if not np.isfinite(shift_hu):
        raise InputError(f"shift must be a finite number of HU, got {shift_hu}")
    width = BIN_EDGES_HU[1] - BIN_EDGES_HU[0]
    offsets = (np.arange(samples_per_bin) + 0.5) / samples_per_bin * width
    source_hu = (BIN_EDGES_HU[:-1, None] + offsets[None, :]).ravel()  # fine samples of the source density
    weights = np.repeat(hist, samples_per_bin) / samples_per_bin
    mean = float(np.dot(weights, source_hu))
    target_hu = mean + shift_hu + (source_hu - mean) * widen
    return hu_histogram_weighted(target_hu, weights)


def hu_histogram_weighted(values_hu: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Like :func:`nodsynth.histogram.hu_histogram` with a weight per value."""
    clipped = np.clip(np.asarray(values_hu, dtype=np.float64), HIST_MIN_HU, HIST_MAX_HU - 1e-6)
    counts, _ = np.histogram(clipped, bins=BIN_EDGES_HU, weights=weights)
    return validate_histogram(counts)
