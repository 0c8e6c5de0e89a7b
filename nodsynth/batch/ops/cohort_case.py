"""Op ``cohort_case``: every planned nodule of one cohort case in one job (:mod:`nodsynth.cohort.case`).

Inputs ``nodules`` (the plan's ``cohort.csv``), ``ct`` and/or ``labelmap`` (the case's source, one grid),
optionally ``shapes`` (the plan's shape library); outputs ``ids`` (nodule label mask, ids 1..n as the table's
``nodule_id``), ``json`` (per nodule: voxels, equivalent diameter, centroid; engine, checkpoints, seconds),
``labelmap`` (new nodules painted as label 23) and ``ct`` (nodules inserted by the engine). Params
``case_id``, ``engine`` (default classic), ``weights``, ``sampler``, ``steps``, ``margin_mm``. ``nodsynth
cohort plan`` writes these rows.
"""
from __future__ import annotations

import argparse
import json

from ...io.atomic import write_text_atomic
from ...cli.engine_args import add_engine_arguments
from ...cohort.case import EngineOptions, insert_all, nodule_facts, nodule_ids, painted_labelmap
from ...cohort.table import case_rows, read_cohort
from ...engines.base import DEFAULT_INPAINT_SAMPLER, INPAINT_SAMPLERS, EditRequest
from ...errors import InputError
from ...labelmap import load_labelmap
from ...shapes import ShapeLibrary
from ...io.volume_files import read_volume, write_volume
from ..opspec import JobContext, Slot, result_facts
from ._ct_output import PARAM, add_output_format, check_output_format, ct_output

OP = "cohort_case"
ENGINE_OPERATION = "inpaint"
INPUTS = {"nodules": Slot("--nodules", volume=False, suffix=".csv"), "ct": Slot("--ct", required=False),
          "labelmap": Slot("--labelmap", required=False), "shapes": Slot("--shapes", required=False, volume=False)}
OUTPUTS = {"ids": Slot("--out-ids"), "json": Slot("--json", volume=False, suffix=".json"),
           "labelmap": Slot("--out-labelmap", required=False), "ct": Slot("--out", required=False)}
PARAMS = ("case_id", "engine", "weights", "sampler", "steps", "margin_mm", PARAM)
SEEDED = True
SAME_GRID = ("ct", "labelmap")
OUTPUT_GRID = {"ct": "ct", "labelmap": "labelmap", "ids": "labelmap"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodules", required=True, help="the plan's cohort.csv")
    parser.add_argument("--case-id", required=True, help="the case of the table to make")
    parser.add_argument("--ct", help="source CT (HU)")
    parser.add_argument("--labelmap", help="source MAISI label map")
    parser.add_argument("--shapes", help="the plan's shape library (.npz)")
    parser.add_argument("--out-ids", required=True, help="nodule label mask to write (ids 1..n)")
    parser.add_argument("--json", required=True, help="per-nodule facts to write (JSON)")
    parser.add_argument("--out-labelmap", help="label map with the new nodules as label 23")
    parser.add_argument("--out", help="CT with the nodules inserted")
    parser.add_argument("--sampler", default=DEFAULT_INPAINT_SAMPLER, choices=INPAINT_SAMPLERS, help="HR-LDM sampler")
    parser.add_argument("--steps", type=int, help="HR-LDM / NodMAISI steps (default: the engine's)")
    parser.add_argument("--margin-mm", type=float, default=EditRequest.margin_mm, help="NodMAISI ROI edit margin (mm)")
    parser.add_argument("--seed", type=int, default=0, help="unused: each nodule has its own seed in the table")
    add_engine_arguments(parser, default="classic", operations=("inpaint", "edit"))
    add_output_format(parser)


def validate(args, job) -> None:
    if not (args.ct or args.labelmap):
        raise InputError("a cohort case needs its source: a ct and/or a labelmap input")
    for output, source in (("ct", "ct"), ("labelmap", "labelmap")):
        if output in job.outputs and source not in job.inputs:
            raise InputError(f"output '{output}' needs input '{source}'")
    check_output_format(args, job)


def run(ctx: JobContext) -> dict:
    args = ctx.args
    rows = case_rows(read_cohort(args.nodules), args.case_id)
    ct = read_volume(args.ct) if args.ct else None
    labelmap = load_labelmap(args.labelmap) if args.labelmap else None
    ids = nodule_ids(rows, labelmap if labelmap is not None else ct,
                     ShapeLibrary.load(args.shapes) if args.shapes else None)
    write_volume(ids, ctx.outputs["ids"])
    if "labelmap" in ctx.outputs:
        write_volume(painted_labelmap(labelmap, ids), ctx.outputs["labelmap"])
    facts: dict = {"case_id": args.case_id, "nodules": nodule_facts(ids, rows)}
    if "ct" in ctx.outputs:
        options = EngineOptions(args.engine, args.sampler, args.steps, args.margin_mm)
        result = insert_all(ctx.engine(), options, ct, labelmap, ids, rows, ctx.progress, ctx.cancel)
        with ct_output(ctx, ", ".join(r["seed"] for r in rows)) as path:
            write_volume(result.ct, path, metadata=result.file_metadata())
        facts.update(result_facts(result))
        facts["checkpoints"] = result.info.get("checkpoints") or {}
    write_text_atomic(ctx.outputs["json"], json.dumps(facts, indent=1, default=str))
    return {k: v for k, v in facts.items() if k != "nodules"}
