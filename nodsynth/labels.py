"""The MAISI / VISTA3D label space used by every label map in nodsynth.

Ids come from ``Resources/maisi_label_dict.json`` (132 classes plus ``body`` = 200).
"""
from __future__ import annotations

from functools import lru_cache

from .resources import load_json_resource

BACKGROUND = 0
LUNG = 20
NODULE = 23  # "lung tumor"
AIRWAY = 132
TRACHEA = 57
BODY = 200

LOBES: dict[int, str] = {
    28: "left lung upper lobe",
    29: "left lung lower lobe",
    30: "right lung upper lobe",
    31: "right lung middle lobe",
    32: "right lung lower lobe",
}
LOBE_IDS = tuple(LOBES)


@lru_cache(maxsize=1)
def label_dict() -> dict[str, int]:
    """Name -> id of the MAISI label space."""
    return {str(k): int(v) for k, v in load_json_resource("maisi_label_dict.json").items()}


@lru_cache(maxsize=1)
def label_names() -> dict[int, str]:
    """Id -> name of the MAISI label space."""
    return {v: k for k, v in label_dict().items()}


def known_label_ids() -> frozenset[int]:
    """Every id a valid MAISI label map may hold, background included."""
    return frozenset(label_dict().values()) | {BACKGROUND}
