"""The quality-check verdict for one CT: MAISI's ``is_outlier`` rule, group by group.

A group fails when the median HU of its voxels lies below ``min(sigma_6_low, percentile_0_5)`` or above
``max(sigma_6_high, percentile_99_5)`` (the bone group's upper limit is always 1000 HU); a group with no voxel
in the label map passes (nothing to check), as in MAISI. The CT passes when no group fails.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

from ..volume import Volume
from .groups import BONE_GROUP, BONE_HIGH_HU, QC_GROUPS
from .stats import group_medians_hu


@dataclass(frozen=True)
class GroupVerdict:
    """One organ group of one CT: its median HU, the accepted range (HU) and whether it is an outlier."""

    group: str
    median_hu: Optional[float]
    low_hu: float
    high_hu: float
    is_outlier: bool


def accepted_range_hu(group: str, entry: Mapping[str, float]) -> tuple[float, float]:
    """(low, high) HU accepted for a group's median, from its learned statistics."""
    low = min(entry["sigma_6_low"], entry["percentile_0_5"])
    high = max(entry["sigma_6_high"], entry["percentile_99_5"])
    return float(low), (BONE_HIGH_HU if group == BONE_GROUP else float(high))


def check_ct(ct: Volume, labelmap: Volume, statistics: Mapping[str, Mapping[str, float]],
             groups: Mapping[str, Sequence[int]] = QC_GROUPS) -> list[GroupVerdict]:
    """One verdict per group of ``statistics`` (a group unknown to ``groups`` has no voxels: it passes)."""
    medians = group_medians_hu(ct, labelmap, {name: tuple(groups.get(name, ())) for name in statistics})
    verdicts = []
    for name, entry in statistics.items():
        low, high = accepted_range_hu(name, entry)
        median = medians[name]
        verdicts.append(GroupVerdict(name, median, low, high, median is not None and not low <= median <= high))
    return verdicts


def qc_passed(verdicts: Sequence[GroupVerdict]) -> bool:
    """True when no group is an outlier."""
    return not any(v.is_outlier for v in verdicts)


def verdict_record(verdicts: Sequence[GroupVerdict]) -> dict:
    """JSON-ready: ``{"passed": bool, "failed_groups": [...], "groups": [per-group dicts]}``."""
    return {"passed": qc_passed(verdicts), "failed_groups": [v.group for v in verdicts if v.is_outlier],
            "groups": [asdict(v) for v in verdicts]}


def verdict_line(verdicts: Sequence[GroupVerdict]) -> str:
    """One line: 'passed (N groups)' or the failing groups with their medians and ranges in HU."""
    failed = [v for v in verdicts if v.is_outlier]
    if not failed:
        checked = sum(v.median_hu is not None for v in verdicts)
        return f"passed ({checked} organ group(s) checked)"
    return "failed: " + "; ".join(f"{v.group} median {v.median_hu:.1f} HU outside {v.low_hu:.1f}..{v.high_hu:.1f} HU"
                                  for v in failed)
