"""Op ``segment``: the nodule at a point of a CT, segmented and measured (``nodsynth segment``).

Inputs ``ct`` and optionally ``lung`` (lung mask or MAISI label map); outputs ``mask`` and optionally
``json`` (segmentation info and measurements); params ``point`` (required, LPS mm or RAS with
``ras``), ``box``, ``method``, ``expand_mm``, ``no_fill_holes``, ``max_voi_mm``, ``force`` (keep a
segmentation refused as "no nodule at this point"; without it such a row fails with that reason).
"""
from __future__ import annotations

from ...cli.common import parse_triple
from ...cli.verbs import segment as verb
from ...errors import InputError
from ..opspec import JobContext, Slot

OP = "segment"
ENGINE_OPERATION = None
INPUTS = {"ct": Slot("--ct"), "lung": Slot("--lung", required=False)}
OUTPUTS = {"mask": Slot("--out"), "json": Slot("--json", required=False, volume=False, suffix=".json")}
PARAMS = ("point", "ras", "box", "method", "expand_mm", "no_fill_holes", "max_voi_mm", "force")
SEEDED = False
SAME_GRID = ("ct", "lung")
OUTPUT_GRID = {"mask": "ct"}
add_arguments = verb.add_arguments


def validate(args, job) -> None:
    if args.point is None:
        raise InputError("segment needs params.point (x,y,z in mm)")
    parse_triple(args.point, "point")
    if args.box:
        parse_triple(args.box, "box")


def run(ctx: JobContext) -> dict:
    result, measurements = verb.segment_single(ctx.args)
    verb.write_single(ctx.args, result, measurements, mask_name=ctx.job.outputs["mask"])
    return {"voxels": result.voxel_count, "volume_mm3": measurements.volume_mm3, "subtype": measurements.subtype}
