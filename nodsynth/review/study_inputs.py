"""The nodules a reading study draws from: ``turing build --real R.csv --synthetic S.csv``.

A study manifest is a CSV with one nodule per row: ``ct`` (required) and where the nodule is -
``mask`` (a nodule mask on the CT grid) and/or its centre ``coordX,coordY,coordZ`` (LPS mm, the
LIDC / PiNS convention). Optional: ``subtype`` (solid / part-solid / ground-glass), ``diameter_mm``,
``labelmap`` or ``lung`` (for the full-context lung box; default a CT threshold) and ``source`` (how
the key names the case; default ``<manifest file>:<line>``; a label several rows share, such as
``LIDC-IDRI``, gets ``(<manifest file>:<line>)`` appended). Paths are relative to the manifest.

A nodule may appear once in a study, whatever its name: :func:`check_distinct` refuses two inputs
(real or synthetic) on CTs of the same content (SHA-256 of the file) whose masks have the same
content or whose centres lie within one nodule's radius.

A nodule lacking its subtype or diameter is measured (:func:`nodsynth.measure.measure_nodule`):
from its mask, or from a click segmentation at its centre. Its diameter is the equivalent-sphere
diameter, its centre the mask's click point (:func:`.fidelity.click_point_lps`).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..batch.records import HashCache
from ..engines.base import SUBTYPES
from ..errors import InputError
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..labelmap import load_labelmap
from ..segment.checks import read_ct
from ..volume import Volume
from ..io.tables import existing_file, parse_float, read_rows

TRUTHS = ("real", "synthetic")
CENTRE_COLUMNS = ("coordX", "coordY", "coordZ")


@dataclass(frozen=True)
class StudyInput:
    """One nodule a study may show: its CT, where the nodule is, and what it is."""

    truth: str
    source: str
    ct: Path
    mask: Optional[Path] = None
    centre_lps_mm: Optional[tuple[float, float, float]] = None
    subtype: Optional[str] = None
    diameter_mm: Optional[float] = None
    labelmap: Optional[Path] = None
    lung: Optional[Path] = None

    @property
    def described(self) -> bool:
        """True when centre, subtype and diameter are all known (nothing left to measure)."""
        return None not in (self.centre_lps_mm, self.subtype, self.diameter_mm)


def _subtype(text: str, where: str) -> Optional[str]:
    if not text:
        return None
    key = text.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in SUBTYPES:
        raise InputError(f"{where}: subtype must be one of {', '.join(SUBTYPES)}, got {text!r}")
    return key


def _centre(row: dict, where: str) -> Optional[tuple[float, float, float]]:
    values = [parse_float(row.get(c, ""), where, c) for c in CENTRE_COLUMNS]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise InputError(f"{where}: give all of {', '.join(CENTRE_COLUMNS)} or none")
    return tuple(values)  # type: ignore[return-value]


def read_study_inputs(path: str | os.PathLike, truth: str) -> list[StudyInput]:
    """The nodules of one study manifest (see the module docstring), all labelled ``truth``."""
    if truth not in TRUTHS:
        raise InputError(f"truth must be one of {', '.join(TRUTHS)}, got {truth!r}")
    path = Path(path)
    inputs, labels = [], []
    for line, row in read_rows(path, ("ct",), f"{truth} manifest"):
        where = f"{path} line {line}"
        files = {c: existing_file(path, line, c, row.get(c, "")) for c in ("ct", "mask", "labelmap", "lung")}
        if files["ct"] is None:
            raise InputError(f"{where}: ct is empty")
        centre = _centre(row, where)
        if files["mask"] is None and centre is None:
            raise InputError(f"{where}: give the nodule's mask or its centre ({', '.join(CENTRE_COLUMNS)})")
        diameter = parse_float(row.get("diameter_mm", ""), where, "diameter_mm")
        if diameter is not None and diameter <= 0:
            raise InputError(f"{where}: diameter_mm must be positive, got {diameter}")
        labels.append((row.get("source") or f"{path.name}:{line}", line))
        inputs.append(StudyInput(truth, labels[-1][0], files["ct"], files["mask"], centre,
                                 _subtype(row.get("subtype", ""), where), diameter, files["labelmap"], files["lung"]))
    shared = {label for label, n in Counter(label for label, _ in labels).items() if n > 1}
    return [replace(item, source=f"{label} ({path.name}:{line})") if label in shared else item
            for item, (label, line) in zip(inputs, labels)]


def _same_nodule(a: StudyInput, b: StudyInput, digest) -> Optional[str]:
    """Why two described inputs on CTs of the same content are one nodule, or None."""
    if a.mask is not None and b.mask is not None and digest(a.mask) == digest(b.mask):
        return "masks of the same content"
    distance = float(np.linalg.norm(np.subtract(a.centre_lps_mm, b.centre_lps_mm)))
    if distance < max(a.diameter_mm, b.diameter_mm) / 2.0:
        return f"centres {distance:.1f} mm apart, inside the nodule"
    return None


def check_distinct(inputs: Sequence[StudyInput]) -> None:
    """:class:`InputError` when two described inputs (:func:`describe_inputs`) show one nodule: CTs of the
    same content (SHA-256) and masks of the same content or a centre within the other nodule's radius."""
    digest = HashCache().sha256
    by_ct: dict[str, list[StudyInput]] = {}
    for item in inputs:
        by_ct.setdefault(digest(item.ct), []).append(item)
    for items in by_ct.values():
        for a, b in combinations(items, 2):
            reason = _same_nodule(a, b, digest)
            if reason is not None:
                raise InputError(f"{a.truth} nodule {a.source!r} ({a.ct}) and {b.truth} nodule {b.source!r} ({b.ct}) "
                                 f"are the same nodule: CTs of the same content, {reason}; a study shows each nodule "
                                 "once")


def describe_input(item: StudyInput, ct: Volume) -> StudyInput:
    """``item`` with centre, subtype and diameter filled in from its mask or a click segmentation."""
    from ..measure import measure_nodule
    from ..segment import segment_nodule
    from ..volume import require_same_grid
    from .fidelity import click_point_lps

    if item.mask is not None:
        mask = load_labelmap(item.mask, "nodule mask")
        require_same_grid(ct, mask, f"CT of {item.source}", "its nodule mask")
        mask = mask.with_array((np.asarray(mask.array) > 0).astype(np.uint8))
        if not mask.array.any():
            raise InputError(f"{item.source}: the nodule mask {item.mask} is empty")
    else:
        mask = segment_nodule(ct, item.centre_lps_mm).mask
    centre = item.centre_lps_mm if item.centre_lps_mm is not None else tuple(float(v) for v in click_point_lps(mask))
    if item.subtype is not None and item.diameter_mm is not None:
        return replace(item, centre_lps_mm=centre)
    measured = measure_nodule(ct, mask)
    return replace(item, centre_lps_mm=centre, subtype=item.subtype or measured.subtype,
                   diameter_mm=item.diameter_mm if item.diameter_mm is not None else measured.equivalent_diameter_mm)


def describe_inputs(inputs: Sequence[StudyInput], progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None) -> list[StudyInput]:
    """Every input described (:func:`describe_input`); each CT is read once, however many nodules it holds."""
    report = progress or no_progress
    pending = [i for i, item in enumerate(inputs) if not item.described]
    out = list(inputs)
    ct_path, ct = None, None
    for done, index in enumerate(sorted(pending, key=lambda i: str(inputs[i].ct))):
        check_cancel(cancel)
        if inputs[index].ct != ct_path:
            ct_path, ct = inputs[index].ct, read_ct(inputs[index].ct)
        out[index] = describe_input(inputs[index], ct)
        report((done + 1) / len(pending), inputs[index].source)
    return out
