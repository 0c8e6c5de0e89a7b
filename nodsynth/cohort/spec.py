"""A cohort spec (JSON; paths relative to the spec's folder)::

    {"sources": {"ct": "cts/*.nii.gz", "labelmap": "maps/*.nii.gz"}, "engine": "classic",
     "counts": {"part-solid": {"6-10": 3, "10-20": 2}, "ground-glass": {"10-20": 3}},
     "subpleural_fraction": 0.3, "nodules_per_ct": [1, 3], "clearance_mm": 5,
     "pleura_clearance_mm": 3, "seed": 0}

* ``sources``: ``ct`` and/or ``labelmap`` globs (or lists), paired in sorted order as ``batch plan`` does.
  Label-map-only sources get their nodules painted into the label map (label 23) and a whole-CT twin
  (``engine`` must make twins, e.g. nodmaisi); with a CT the engine inserts them (classic, hrldm: inpaint;
  nodmaisi: ROI edit of the label map with the nodules, which needs the label map too).
* ``counts``: subtype -> ``{"lo-hi": n}``; bins are equivalent-sphere diameters in mm, lo <= d < hi.
* ``subpleural_fraction``: share of the nodules (rounded) placed sub-pleural, the rest inner.
* ``nodules_per_ct``: ``[min, max]`` nodules per case; a source serves several cases when needed.
* ``clearance_mm`` (nodule to nodule, new and existing), ``pleura_clearance_mm`` (inner nodules): see
  :mod:`nodsynth.cohort.room`.
* optional: ``shapes``: ``"lidc"`` (the default: the shipped real LIDC shapes, :mod:`.lidc_shapes`; a nodule
  inherits its shape's malignancy as ``label`` and patient as ``donor_patient_id``), ``"procedural"`` or the
  path of a shape library .npz (entries may carry ``subtype``, ``malignancy``, ``patient_id``); ``engine_params`` (the
  op's engine options: ``weights``, ``sampler``, ``steps``, ``margin_mm``), ``licences``
  (``{"ct": "...", "labelmap": "..."}``, carried into exports), ``seed`` (default 0); for label-map-only
  sources ``qc_stats`` (``nodsynth qc stats``' file: each twin is checked and regenerated while it fails) and
  ``max_tries``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..batch.plan import spec_cases
from ..io.tables import path_in_folder, read_json
from ..engines import SUBTYPES
from ..engines.base import subtype_index
from ..engines.registry import ENGINE_OPERATIONS
from ..errors import InputError
from .lidc_shapes import lidc_shapes_path
from .nodule import PROCEDURAL

KEYS = ("sources", "engine", "counts", "subpleural_fraction", "nodules_per_ct", "clearance_mm",
        "pleura_clearance_mm", "seed", "shapes", "engine_params", "licences", "qc_stats", "max_tries")
SOURCE_KINDS = ("ct", "labelmap")
ENGINE_PARAMS = ("weights", "sampler", "steps", "margin_mm")
LIDC = "lidc"


@dataclass(frozen=True)
class Bin:
    subtype: str
    lo_mm: float
    hi_mm: float
    count: int

    @property
    def name(self) -> str:
        return f"{self.lo_mm:g}-{self.hi_mm:g}"


@dataclass(frozen=True)
class Source:
    name: str
    ct: Optional[Path]
    labelmap: Optional[Path]


@dataclass
class CohortSpec:
    path: Path
    sources: list[Source]
    engine: str
    bins: list[Bin]
    subpleural_fraction: float
    per_ct: tuple[int, int]
    clearance_mm: float
    pleura_clearance_mm: float
    seed: int
    shapes: Optional[Path] = None
    engine_params: dict[str, Any] = field(default_factory=dict)
    licences: dict[str, str] = field(default_factory=dict)
    qc_stats: Optional[Path] = None
    max_tries: Optional[int] = None

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bins)

    @property
    def labelmap_only(self) -> bool:
        return self.sources[0].ct is None


def parse_bin(subtype: str, text: str, count: Any) -> Bin:
    where = f"counts.{subtype}.{text}"
    lo, sep, hi = str(text).partition("-")
    try:
        lo_mm, hi_mm = float(lo), float(hi)
    except ValueError:
        raise InputError(f"{where}: a bin is 'lo-hi' in mm of equivalent-sphere diameter, e.g. '6-10'") from None
    if not sep or not 0 < lo_mm < hi_mm:
        raise InputError(f"{where}: a bin needs 0 < lo < hi (mm), got {text!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"{where}: the count must be a whole number >= 0, got {count!r}")
    return Bin(subtype, lo_mm, hi_mm, count)


def _bins(counts: Any) -> list[Bin]:
    if not isinstance(counts, dict) or not counts:
        raise InputError("spec 'counts' must be an object: subtype -> {\"lo-hi\": count}")
    bins = []
    for subtype, by_bin in counts.items():
        try:
            name = SUBTYPES[subtype_index(subtype)]
        except Exception:
            raise InputError(f"spec counts: unknown subtype {subtype!r}; use {', '.join(SUBTYPES)}") from None
        if not isinstance(by_bin, dict) or not by_bin:
            raise InputError(f"spec counts.{subtype} must be an object of \"lo-hi\" -> count")
        bins += [parse_bin(name, text, count) for text, count in by_bin.items()]
    bins.sort(key=lambda b: (SUBTYPES.index(b.subtype), b.lo_mm, b.hi_mm))
    if sum(b.count for b in bins) == 0:
        raise InputError("spec counts ask for no nodule")
    return bins


def _number(spec: dict, key: str, default: float, lo: float = 0.0, hi: float = float("inf")) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InputError(f"spec {key!r} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _per_ct(value: Any) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in value) or not 1 <= value[0] <= value[1]):
        raise InputError(f"spec 'nodules_per_ct' must be [min, max] whole numbers with 1 <= min <= max, got {value!r}")
    return value[0], value[1]


def _sources(value: Any, folder: Path) -> list[Source]:
    if not isinstance(value, dict) or not value or set(value) - set(SOURCE_KINDS):
        raise InputError(f"spec 'sources' must be an object with 'ct' and/or 'labelmap' (globs or lists), got {value!r}")
    return [Source(item.case, item.case_files.get("ct"), item.case_files.get("labelmap"))
            for item in spec_cases(value, folder)]


def _engine(value: Any, labelmap_only: bool, has_labelmap: bool) -> str:
    if value not in ENGINE_OPERATIONS or value == "remote":
        raise InputError(f"spec 'engine' must be one of {', '.join(n for n in ENGINE_OPERATIONS if n != 'remote')}, "
                         f"got {value!r}")
    operations = ENGINE_OPERATIONS[value]
    if labelmap_only and "twin" not in operations:
        raise InputError(f"engine {value!r} cannot make a CT from a label map (twin); label-map-only sources need "
                         "an engine that does (nodmaisi)")
    if not labelmap_only and "inpaint" not in operations and not has_labelmap:
        raise InputError(f"engine {value!r} edits a CT through its label map; give 'sources.labelmap' too")
    return value


def _shapes(text: str, folder: Path) -> Optional[Path]:
    """The shape library file the spec names (None: procedural shapes)."""
    if text == PROCEDURAL:
        return None
    return lidc_shapes_path() if text == LIDC else path_in_folder(folder, text)


def read_spec(path: str | os.PathLike) -> CohortSpec:
    """The spec at ``path``, checked; :class:`InputError` names the first bad key."""
    path = Path(os.path.abspath(path))
    spec = read_json(path, "cohort spec")
    if not isinstance(spec, dict):
        raise InputError(f"{path}: a cohort spec is a JSON object")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise InputError(f"{path}: unknown spec key(s) {', '.join(unknown)}; a spec has {', '.join(KEYS)}")
    sources = _sources(spec.get("sources"), path.parent)
    labelmap_only = sources[0].ct is None
    engine_params = spec.get("engine_params", {})
    if not isinstance(engine_params, dict) or set(engine_params) - set(ENGINE_PARAMS):
        raise InputError(f"spec 'engine_params' must be an object with keys among {', '.join(ENGINE_PARAMS)}")
    licences = spec.get("licences", {})
    if not isinstance(licences, dict) or set(licences) - set(SOURCE_KINDS) or not all(
            isinstance(v, str) for v in licences.values()):
        raise InputError("spec 'licences' must be an object {\"ct\": text, \"labelmap\": text}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"spec 'seed' must be a whole number >= 0, got {seed!r}")
    shapes = spec.get("shapes", LIDC)
    if not isinstance(shapes, str) or not shapes:
        raise InputError(f"spec 'shapes' must be {LIDC!r}, {PROCEDURAL!r} or the path of a shape library (.npz)")
    qc_stats, max_tries = spec.get("qc_stats"), spec.get("max_tries")
    if qc_stats is not None and (not isinstance(qc_stats, str) or not labelmap_only):
        raise InputError("spec 'qc_stats' is the path of a nodsynth qc stats file, for label-map-only sources (twins)")
    if max_tries is not None and (isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1):
        raise InputError(f"spec 'max_tries' must be a whole number >= 1, got {max_tries!r}")
    return CohortSpec(
        path=path, sources=sources,
        engine=_engine(spec.get("engine", "nodmaisi" if labelmap_only else "classic"), labelmap_only,
                       sources[0].labelmap is not None),
        bins=_bins(spec.get("counts")),
        subpleural_fraction=_number(spec, "subpleural_fraction", 0.0, 0.0, 1.0),
        per_ct=_per_ct(spec.get("nodules_per_ct", [1, 1])),
        clearance_mm=_number(spec, "clearance_mm", 5.0), pleura_clearance_mm=_number(spec, "pleura_clearance_mm", 3.0),
        seed=seed, shapes=_shapes(shapes, path.parent),
        engine_params=engine_params, licences=licences,
        qc_stats=None if qc_stats is None else path_in_folder(path.parent, qc_stats), max_tries=max_tries)
