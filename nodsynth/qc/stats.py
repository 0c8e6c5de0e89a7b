"""The median HU of each organ group in one CT, and the ranges learned from those medians over real CTs.

The statistics file has MAISI's layout (``configs/image_median_statistics.json``): one object per group with the
keys MAISI's ``is_outlier`` reads - ``sigma_6_low`` / ``sigma_6_high`` (mean -/+ 3 sample standard deviations of
the per-CT medians, HU) and ``percentile_0_5`` / ``percentile_99_5`` (their 0.5th / 99.5th percentiles, HU) - plus
``n_volumes`` and ``label_ids`` for provenance. Nothing else stands at the top level, so MAISI reads it as it is.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from ..io.tables import read_json
from ..errors import InputError
from ..volume import Volume, require_same_grid
from .groups import QC_GROUPS

THRESHOLD_KEYS = ("sigma_6_low", "sigma_6_high", "percentile_0_5", "percentile_99_5")
"""The keys of a group's entry that MAISI's ``is_outlier`` reads (HU)."""

MIN_VOLUMES = 2
"""A group is learned only from at least this many CTs that contain it (one median has no spread)."""


def group_of_voxels(labels: np.ndarray, groups: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Per voxel, the index of its group in ``groups`` (insertion order), -1 for voxels of no group."""
    top = max([int(labels.max(initial=0))] + [i for ids in groups.values() for i in ids]) + 1
    lookup = np.full(top, -1, dtype=np.int16)
    for index, ids in enumerate(groups.values()):
        lookup[list(ids)] = index
    if labels.size and int(labels.min()) < 0:
        raise InputError(f"the label map holds negative labels (down to {int(labels.min())})")
    return lookup[labels.astype(np.int64, copy=False)]


def group_medians_hu(ct: Volume, labelmap: Volume,
                     groups: Mapping[str, Sequence[int]] = QC_GROUPS) -> dict[str, Optional[float]]:
    """Median HU of the CT over each group's labels; ``None`` for a group with no voxel in the label map."""
    require_same_grid(ct, labelmap, "CT", "label map")
    group = group_of_voxels(labelmap.array, groups)
    values = ct.array
    medians: dict[str, Optional[float]] = {}
    for index, name in enumerate(groups):
        inside = values[group == index]
        medians[name] = float(np.median(inside)) if inside.size else None
    return medians


def learn_statistics(medians_per_ct: Sequence[Mapping[str, Optional[float]]],
                     groups: Mapping[str, Sequence[int]] = QC_GROUPS) -> tuple[dict, dict[str, int]]:
    """(statistics in MAISI's layout, {group: CT count} of the groups left out for appearing in < 2 CTs)."""
    statistics: dict[str, dict] = {}
    left_out: dict[str, int] = {}
    for name, ids in groups.items():
        values = np.array([m[name] for m in medians_per_ct if m.get(name) is not None], dtype=np.float64)
        if values.size < MIN_VOLUMES:
            left_out[name] = int(values.size)
            continue
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        statistics[name] = {"sigma_6_low": mean - 3.0 * sd, "sigma_6_high": mean + 3.0 * sd,
                            "percentile_0_5": float(np.percentile(values, 0.5)),
                            "percentile_99_5": float(np.percentile(values, 99.5)),
                            "n_volumes": int(values.size), "label_ids": [int(i) for i in ids]}
    if not statistics:
        raise InputError(f"no organ group appears in at least {MIN_VOLUMES} of the {len(medians_per_ct)} CT(s): "
                         f"nothing to learn a range from")
    return statistics, left_out


def validated_statistics(statistics: object, where: str) -> dict[str, dict]:
    """``statistics`` (decoded JSON) checked: an object of groups, each with the four finite HU thresholds."""
    if not isinstance(statistics, dict) or not statistics:
        raise InputError(f"{where}: expected an object of organ groups with {', '.join(THRESHOLD_KEYS)}")
    for name, entry in statistics.items():
        for key in THRESHOLD_KEYS:
            value = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise InputError(f"{where}: group {name!r} needs a finite number for {key!r}, got {value!r}")
    return statistics


def read_statistics(path) -> dict[str, dict]:
    """A statistics file (``nodsynth qc stats``'s, or MAISI's ``image_median_statistics.json``), checked."""
    return validated_statistics(read_json(path, "quality-check statistics"), str(path))
