"""Measurement rows (dicts from ``nodsynth.measure``) -> named table columns with units (pure).

The unit of a column follows the key's suffix (``volume_mm3`` -> ``mm3``, ``mean_hu`` -> ``HU``);
a 3-vector whose key names its frame (``centroid_lps`` or ``centroid_lps_mm``) becomes three
millimetre columns (``centroid_lps_L``, ``centroid_lps_P``, ``centroid_lps_S``). Longer sequences (the 40-bin histogram)
are left out of the table; they stay in the JSON the modules save.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Number
from typing import Any, Sequence

_UNIT_SUFFIXES = (("_mm3", "mm3"), ("_mm2", "mm2"), ("_mm", "mm"), ("_hu", "HU"), ("_pct", "%"),
                  ("_percent", "%"), ("_voxels", "voxels"), ("_ms", "ms"), ("_seconds", "s"))
_AXES = {"lps": "LPS", "ras": "RAS"}


@dataclass
class Column:
    name: str
    unit: str
    values: list[Any]

    @property
    def numeric(self) -> bool:
        return all(v is None or (isinstance(v, Number) and not isinstance(v, bool)) for v in self.values)


def unit_of(key: str) -> str:
    """Unit label implied by a measurement key's suffix ('' when none)."""
    lowered = key.lower()
    for suffix, unit in _UNIT_SUFFIXES:
        if lowered.endswith(suffix):
            return unit
    return ""


def _flatten(key: str, value: Any) -> list[tuple[str, str, Any]]:
    """One measurement -> ``[(column name, unit, cell)]``; empty for values that do not fit a cell."""
    if isinstance(value, (str, bool, Number)) or value is None:
        return [(key, unit_of(key), value)]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == 3:
        base = key[: -len("_mm")] if key.lower().endswith("_mm") else key
        frame = base.lower().rsplit("_", 1)[-1]
        if frame in _AXES:
            return [(f"{base}_{axis}", "mm", float(v)) for axis, v in zip(_AXES[frame], value)]
    return []


def measurement_columns(rows: Sequence[dict[str, Any]]) -> list[Column]:
    """Columns (in first-seen key order) for a list of measurement dicts; missing cells are ``None``."""
    columns: dict[str, Column] = {}
    flat_rows = []
    for row in rows:
        flat = {name: (unit, cell) for key, value in row.items() for name, unit, cell in _flatten(key, value)}
        flat_rows.append(flat)
        for name, (unit, _) in flat.items():
            columns.setdefault(name, Column(name, unit, []))
    for flat in flat_rows:
        for name, column in columns.items():
            column.values.append(flat[name][1] if name in flat else None)
    return list(columns.values())
