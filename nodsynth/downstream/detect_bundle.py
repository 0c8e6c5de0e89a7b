"""What a MONAI ``lung_nodule_ct_detection`` bundle folder states: its network, anchors, box selection,
sliding window and CT preprocessing, read from ``configs/inference.json``, and where its weights are.

The bundle (Project-MONAI model-zoo) is a RetinaNet on a 3D ResNet-50 whose ``conv1_t_stride`` /
``conv1_t_size`` and FPN ``returned_layers`` are written in the config's ``backbone`` and
``feature_extractor`` expressions; the config is read as data (its ``$`` expressions are never run).
Every value this tool needs must be in the config; a bundle without it, or without ``models/model.pt``,
is refused with the missing item named.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.tables import read_json
from ..errors import InputError

CONFIG = Path("configs") / "inference.json"
WEIGHTS = Path("models") / "model.pt"
RESNET_DEPTHS = {"resnet50": [3, 4, 6, 3]}
"""ResNet variants the bundle's backbone may name -> their bottleneck layer counts."""


@dataclass(frozen=True)
class BundleSettings:
    """The bundle's parameters (image axes x, y, z of the RAS-oriented, resampled CT)."""

    weights: Path
    resnet_layers: list[int]
    conv1_t_stride: list[int]
    conv1_t_size: list[int]
    returned_layers: list[int]
    num_classes: int
    num_anchors: int
    size_divisible: list[int]
    feature_map_scales: list[int]
    base_anchor_shapes: list[list[float]]
    score_thresh: float
    topk_candidates_per_level: int
    nms_thresh: float
    detections_per_img: int
    window_voxels: list[int]
    window_overlap: float
    window_mode: str
    axcodes: str
    spacing_mm: list[float]
    intensity: dict[str, Any]
    """``ScaleIntensityRanged`` arguments: a_min, a_max, b_min, b_max, clip."""


def _resolved(config: dict, value: Any, where: Path) -> Any:
    """``value``, or the top-level entry it names when it is an ``@name`` reference."""
    return _need(config, value[1:], where) if isinstance(value, str) and value.startswith("@") else value


def _need(config: dict, key: str, where: Path) -> Any:
    """``config[key]`` (references followed)."""
    if key not in config:
        raise InputError(f"{where}: the bundle config has no {key!r}")
    return _resolved(config, config[key], where)


def _call_arguments(expression: str, call: str, where: Path) -> dict[str, str]:
    """Keyword arguments (as written) of ``call(...)`` inside a config expression."""
    found = re.search(re.escape(call) + r"\(([^)]*)\)", expression)
    if found is None:
        raise InputError(f"{where}: the bundle config does not call {call}(...)")
    return {k: v.strip() for k, v in re.findall(r"(\w+)\s*=\s*(\[[^\]]*\]|'[^']*'|[^,]+)", found.group(1))}


def _numbers(text: str, cast=int) -> list:
    return [cast(v) for v in re.findall(r"-?[\d.]+", text)]


def _transform(config: dict, target: str, where: Path) -> dict:
    """The first preprocessing transform ``target``. Its ``_disabled_`` switch is not read: the bundle turns
    ``Spacingd`` off for LUNA16 images it resampled beforehand; the CTs here are raw (``whether_raw_luna16``)."""
    for item in _need(config, "preprocessing", where).get("transforms", []):
        if item.get("_target_") == target:
            return item
    raise InputError(f"{where}: the bundle's preprocessing has no {target}")


def _backbone(config: dict, where: Path) -> tuple[list[int], list[int], list[int]]:
    expression = str(_need(config, "backbone", where))
    kind = re.search(r"resnet\.(resnet\d+)\(", expression)
    if kind is None or kind.group(1) not in RESNET_DEPTHS:
        raise InputError(f"{where}: the bundle's backbone is not one of {', '.join(RESNET_DEPTHS)}: {expression}")
    arguments = _call_arguments(expression, kind.group(1), where)
    if "conv1_t_stride" not in arguments or "conv1_t_size" not in arguments:
        raise InputError(f"{where}: the bundle's backbone states no conv1_t_stride / conv1_t_size: {expression}")
    return RESNET_DEPTHS[kind.group(1)], _numbers(arguments["conv1_t_stride"]), _numbers(arguments["conv1_t_size"])


def _returned_layers(config: dict, where: Path) -> list[int]:
    expression = str(_need(config, "feature_extractor", where))
    found = re.search(r"resnet_fpn_feature_extractor\([^\[]*(\[[^\]]*\])", expression)
    if found is None:
        raise InputError(f"{where}: the bundle's feature_extractor names no returned layers: {expression}")
    return _numbers(found.group(1))


def _detector_call(config: dict, method: str, where: Path) -> dict[str, str]:
    for operation in _need(config, "detector_ops", where):
        if method in str(operation):
            return _call_arguments(str(operation), method, where)
    raise InputError(f"{where}: the bundle's detector_ops do not call {method}")


def _window(config: dict, arguments: dict[str, str], where: Path) -> list[int]:
    roi = arguments.get("roi_size", "")
    return [int(v) for v in _resolved(config, roi, where)] if roi.startswith("@") else _numbers(roi)


def read_bundle(folder: Path) -> BundleSettings:
    """The settings of the bundle in ``folder``; :class:`InputError` naming what is missing."""
    folder = Path(folder)
    where = folder / CONFIG
    if not folder.is_dir():
        raise InputError(f"the bundle folder {folder} does not exist")
    if not where.is_file():
        raise InputError(f"{folder} is not a MONAI bundle: {CONFIG} is missing")
    if not (folder / WEIGHTS).is_file():
        raise InputError(f"the bundle {folder} has no weights: {WEIGHTS} is missing (put the trained model.pt there; "
                         f"nothing is downloaded)")
    config = read_json(where, "bundle config")
    if not isinstance(config, dict):
        raise InputError(f"{where}: a bundle config is a JSON object")
    layers, stride, size = _backbone(config, where)
    anchors = _need(config, "anchor_generator", where)
    network = _need(config, "network_def", where)
    selector = _detector_call(config, "set_box_selector_parameters", where)
    inferer = _detector_call(config, "set_sliding_window_inferer", where)
    scale = _transform(config, "ScaleIntensityRanged", where)
    try:
        return BundleSettings(
            weights=folder / WEIGHTS, resnet_layers=layers, conv1_t_stride=stride, conv1_t_size=size,
            returned_layers=_returned_layers(config, where),
            num_classes=int(_resolved(config, network["num_classes"], where)),
            num_anchors=int(_resolved(config, network["num_anchors"], where)),
            size_divisible=[int(v) for v in _resolved(config, network["size_divisible"], where)],
            feature_map_scales=[int(v) for v in anchors["feature_map_scales"]],
            base_anchor_shapes=[[float(v) for v in s] for s in anchors["base_anchor_shapes"]],
            score_thresh=float(selector["score_thresh"]), topk_candidates_per_level=int(selector["topk_candidates_per_level"]),
            nms_thresh=float(selector["nms_thresh"]), detections_per_img=int(selector["detections_per_img"]),
            window_voxels=_window(config, inferer, where), window_overlap=float(inferer.get("overlap", 0.25)),
            window_mode=inferer.get("mode", "'constant'").strip("'\""),
            axcodes=str(_transform(config, "Orientationd", where)["axcodes"]),
            spacing_mm=[float(v) for v in _transform(config, "Spacingd", where)["pixdim"]],
            intensity={k: (bool(scale[k]) if k == "clip" else float(scale[k]))
                       for k in ("a_min", "a_max", "b_min", "b_max", "clip")})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: the bundle config lacks or garbles a detection parameter ({exc})") from None
