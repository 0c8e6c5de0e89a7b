"""The organ groups of MAISI's quality check: group name -> MAISI label ids whose voxels are pooled.

The groups and names are those of MAISI's sampler (``LDMSampler.label_int_dict`` in the NoMAISI / MAISI
``scripts/sample.py``), so a statistics file learned here is read by MAISI's ``is_outlier`` and vice versa.
One deliberate difference: MAISI lists the lung as ``[28, 29, 30, 31, 31]`` (31 twice, the right lower lobe
32 missing, a typo); here the lung is all five lobes 28-32. :data:`MAISI_SAMPLER_LUNG_IDS` keeps the
published list for comparisons.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from ..labels import LOBE_IDS, NODULE

MAISI_SAMPLER_LUNG_IDS = (28, 29, 30, 31, 31)
"""The lung group exactly as MAISI's sampler lists it (right lower lobe 32 missing)."""

BONE_GROUP = "bone"
BONE_HIGH_HU = 1000.0
"""MAISI's rule: the bone group's upper limit is always 1000 HU, whatever was learned."""

QC_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "liver": (1,),
    "spleen": (3,),
    "pancreas": (4,),
    "kidney": (5, 14),
    "lung": tuple(LOBE_IDS),
    "brain": (22,),
    "hepatic tumor": (26,),
    "bone lesion": (128,),
    "lung tumor": (NODULE,),
    "colon cancer primaries": (27,),
    "pancreatic tumor": (24,),
    BONE_GROUP: tuple(range(33, 57)) + tuple(range(63, 98)) + (120, 122, 127),
})
"""Group name -> MAISI label ids (see the module docstring for the one change from MAISI's list)."""
