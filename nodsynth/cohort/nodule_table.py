"""``cohort recipe --nodules TABLE.csv``: the malignancy label and donor patient of each real nodule of the source
label maps, which carry none.

Columns: ``labelmap`` (the source label map's file name or stem), ``coordX, coordY, coordZ`` (a point of the nodule,
world LPS mm, e.g. its centroid) and ``label``; optional ``patient_id`` (the donor; default the label map's stem)
and ``subtype``. A row names the real nodule (label-23 component) whose voxel holds its point, else the one nearest
within :data:`MATCH_TOLERANCE_MM`. Refused, naming the row: a point near no nodule, near several (and inside none),
or a nodule another row named. Rows of label maps not given are ignored; a nodule no row names has an empty label.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..augment import POINT_TOLERANCE_MM
from ..io.tables import parse_float, read_rows
from ..errors import InputError
from ..volume import Volume
from ..io.volume_files import volume_stem

REQUIRED = ("labelmap", "coordX", "coordY", "coordZ", "label")
MATCH_TOLERANCE_MM = POINT_TOLERANCE_MM
"""A row's point outside every nodule names the nodule whose nearest voxel lies within this distance (mm)."""


@dataclass(frozen=True)
class NoduleFacts:
    """What a real nodule passes on to the nodules made from it."""

    label: str
    donor_patient_id: str
    subtype: str


@dataclass
class NoduleTable:
    path: str
    rows: list[tuple[int, dict]]

    @classmethod
    def read(cls, path: str | os.PathLike) -> "NoduleTable":
        return cls(str(path), read_rows(path, REQUIRED, "nodule table"))

    def rows_of(self, labelmap_path: str | os.PathLike) -> list[tuple[int, dict]]:
        """The rows naming this label map (by file name or stem)."""
        names = {os.path.basename(labelmap_path), volume_stem(labelmap_path)}
        return [(line, row) for line, row in self.rows if row["labelmap"] in names]


def _point(row: dict, where: str) -> np.ndarray:
    values = [parse_float(row[c], where, c) for c in ("coordX", "coordY", "coordZ")]
    if None in values:
        raise InputError(f"{where}: coordX, coordY and coordZ (LPS mm) must all be given")
    return np.array(values, dtype=np.float64)


def matched_nodule(labelmap: Volume, components: list[np.ndarray], point: np.ndarray, where: str) -> int:
    """The number (1-based) of the component holding ``point`` (LPS mm), else the only one within the tolerance."""
    kji = np.rint(labelmap.world_to_index(point)[::-1]).astype(int)
    nearest_mm = []
    for number, coords in enumerate(components, start=1):
        if np.any(np.all(coords == kji, axis=1)):
            return number
        world = labelmap.index_to_world(coords[:, ::-1].astype(np.float64))
        nearest_mm.append(float(np.min(np.linalg.norm(world - point, axis=1))))
    close = [n for n, d in enumerate(nearest_mm, start=1) if d <= MATCH_TOLERANCE_MM]
    shown = np.round(point, 2).tolist()
    if not close:
        raise InputError(f"{where}: no nodule (label 23) at {shown} mm (LPS): the nearest lies "
                         f"{min(nearest_mm):.1f} mm away (tolerance {MATCH_TOLERANCE_MM:g} mm)")
    if len(close) > 1:
        raise InputError(f"{where}: the point {shown} mm (LPS) lies in no nodule and within "
                         f"{MATCH_TOLERANCE_MM:g} mm of nodules {close}: ambiguous; give a point inside one")
    return close[0]


def real_nodule_facts(table: NoduleTable | None, labelmap_path: str | os.PathLike, labelmap: Volume,
                 components: list[np.ndarray]) -> dict[int, NoduleFacts]:
    """Real nodule number -> its facts from ``table`` (without a table, or for a nodule no row names: no label,
    the label map's stem as donor patient, no subtype)."""
    stem = volume_stem(labelmap_path)
    facts = {n: NoduleFacts("", stem, "") for n in range(1, len(components) + 1)}
    if table is None:
        return facts
    named: dict[int, int] = {}
    for line, row in table.rows_of(labelmap_path):
        where = f"{table.path} line {line}"
        number = matched_nodule(labelmap, components, _point(row, where), where)
        if number in named:
            raise InputError(f"{where}: names nodule {number} of {stem}, as line {named[number]} does; "
                             "one row per nodule")
        named[number] = line
        facts[number] = NoduleFacts(row["label"], row.get("patient_id") or stem, row.get("subtype", ""))
    return facts
