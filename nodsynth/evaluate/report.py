"""A finished ``nodsynth evaluate`` JSON report, checked and turned into table rows for display
(the NodMAISI Slicer module shows them; no torch needed).

:func:`load_report_rows` reads a file; :func:`report_rows` takes the parsed JSON. Both return
``(kind, rows)``: ``kind`` is ``"fid"`` (2.5D FID on whole CTs), ``"nodules"`` (FID / KID / MMD on
nodule crops) or ``"froc"`` (one or several detection systems); each row is a dict with
``section``, ``metric`` and ``value`` (text). A file that is none of these raises :class:`InputError`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from ..io.tables import read_json
from ..errors import InputError
from .froc import FP_RATE_NAMES

PLANE_NAMES = {"xy": "xy (axial)", "yz": "yz (sagittal)", "zx": "zx (coronal)", "avg": "average"}
FID_KEYS = ("fid_xy", "fid_yz", "fid_zx", "fid_avg", "n_real", "n_synthetic", "n_slices_real", "n_slices_synthetic")
NODULE_METRICS = ("fid", "kid", "mmd")
FROC_KEYS = ("sensitivities", "cpm", "fps", "curve")


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


def _text(value: float) -> str:
    return f"{value:.6g}"


def _fid_rows(data: Mapping[str, Any]) -> list[dict]:
    rows = [{"section": "2.5D FID", "metric": f"FID {PLANE_NAMES[p]}", "value": _text(_number(data, f"fid_{p}", "FID report"))}
            for p in ("xy", "yz", "zx", "avg")]
    for side in ("real", "synthetic"):
        rows.append({"section": "2.5D FID", "metric": f"{side} CTs", "value": str(int(_number(data, f"n_{side}", "FID report")))})
        slices = data.get(f"n_slices_{side}")
        if not isinstance(slices, Mapping):
            raise InputError(f"FID report: 'n_slices_{side}' must give the slices per plane")
        rows.append({"section": "2.5D FID", "metric": f"{side} slices (xy / yz / zx)",
                     "value": " / ".join(str(slices.get(p, "?")) for p in ("xy", "yz", "zx"))})
    return rows


def _nodule_group_rows(section: str, data: Mapping[str, Any]) -> list[dict]:
    if "skipped" in data:
        return [{"section": section, "metric": "skipped", "value": str(data["skipped"])}]
    rows = [{"section": section, "metric": "crops real / synthetic",
             "value": f"{int(_number(data, 'n_real', section))} / {int(_number(data, 'n_synthetic', section))}"}]
    for metric in NODULE_METRICS:
        for plane in ("xy", "yz", "zx", "avg"):
            value = _text(_number(data, f"{metric}_{plane}", section))
            if metric == "kid" and plane != "avg":
                value += f" ± {_text(_number(data, f'kid_std_{plane}', section))}"
            rows.append({"section": section, "metric": f"{metric.upper()} {PLANE_NAMES[plane]}", "value": value})
    return rows


def _nodule_rows(data: Mapping[str, Any]) -> list[dict]:
    rows = _nodule_group_rows("Nodule crops", data)
    for name, group in (data.get("subtypes") or {}).items():
        rows += _nodule_group_rows(f"Nodule crops: {name}", group)
    return rows


def _sensitivity_values(data: Mapping[str, Any], where: str) -> list[float]:
    values = data.get("sensitivities")
    if not isinstance(values, list) or len(values) != len(FP_RATE_NAMES) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise InputError(f"{where}: 'sensitivities' must be {len(FP_RATE_NAMES)} numbers")
    return [float(v) for v in values]


def _with_ci(value: float, ci: Any, low_key: str, high_key: str, index: Any = None) -> str:
    if not isinstance(ci, Mapping) or ci.get(low_key) is None:
        return _text(value)
    low, high = ci[low_key], ci[high_key]
    if index is not None:
        low, high = low[index], high[index]
    return f"{_text(value)} ({_text(low)}-{_text(high)})"


def _froc_system_rows(name: str, data: Mapping[str, Any]) -> list[dict]:
    section = f"FROC: {name}"
    missing = [k for k in FROC_KEYS if k not in data]
    if missing:
        raise InputError(f"{section}: missing {', '.join(missing)}")
    ci = data.get("ci95")
    rows = [{"section": section, "metric": f"sensitivity at {rate} FP/scan",
             "value": _with_ci(value, ci, "sensitivities_lower", "sensitivities_upper", i)}
            for i, (rate, value) in enumerate(zip(FP_RATE_NAMES, _sensitivity_values(data, section)))]
    rows.append({"section": section, "metric": "CPM", "value": _with_ci(_number(data, "cpm", section), ci, "cpm_lower", "cpm_upper")})
    for stratum, numbers in (data.get("strata") or {}).items():
        value = (str(numbers["skipped"]) if "skipped" in numbers
                 else _with_ci(_number(numbers, "cpm", stratum), numbers.get("ci95"), "cpm_lower", "cpm_upper"))
        rows.append({"section": section, "metric": f"CPM, nodules {stratum}", "value": value})
    return rows


def report_rows(data: Any) -> tuple[str, list[dict]]:
    """``(kind, rows)`` of a parsed report (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise InputError("an evaluation report is a JSON object")
    if all(k in data for k in FID_KEYS) and "kid_xy" not in data:
        return "fid", _fid_rows(data)
    if all(f"{m}_xy" in data for m in NODULE_METRICS):
        return "nodules", _nodule_rows(data)
    if all(k in data for k in FROC_KEYS):
        return "froc", _froc_system_rows(str(data.get("system", "detections")), data)
    if isinstance(data.get("systems"), Mapping) and data["systems"]:
        rows = []
        for name, system in data["systems"].items():
            rows += _froc_system_rows(str(name), system)
        return "froc", rows
    raise InputError("not a nodsynth evaluation report: expected the keys of `evaluate fid` ("
                     + ", ".join(FID_KEYS[:4]) + "...), `evaluate nodules` (kid_xy, mmd_xy...) or `evaluate froc` ("
                     + ", ".join(FROC_KEYS) + ")")


def load_report_rows(path: str | os.PathLike) -> tuple[str, list[dict]]:
    """Read a report file and return :func:`report_rows` of it."""
    path = Path(path)
    data = read_json(path, "report")
    try:
        return report_rows(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
