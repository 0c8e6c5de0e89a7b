"""Op ``edit``: a CT re-rendered after its label map was edited (``Engine.edit``: model-free or NodMAISI ROI).

Inputs ``ct``, ``labelmap`` (the CT's) and ``edited_labelmap`` (e.g. an ``augment`` output), all on one
grid; output ``ct``; params ``engine`` (default classic), ``weights``, ``steps``, ``margin_mm``.
There is no ``edit`` verb: its options are declared here with the shared engine options.
"""
from __future__ import annotations

import argparse

from ...cli.engine_args import add_engine_arguments
from ...engines.base import EditRequest
from ...labelmap import load_labelmap
from ...io.volume_files import read_volume, write_volume
from ..opspec import JobContext, Slot, result_facts
from ._ct_output import PARAM, add_output_format, check_output_format, ct_output

OP = "edit"
ENGINE_OPERATION = "edit"
INPUTS = {"ct": Slot("--ct"), "labelmap": Slot("--labelmap"), "edited_labelmap": Slot("--edited-labelmap")}
OUTPUTS = {"ct": Slot("--out")}
PARAMS = ("steps", "margin_mm", "engine", "weights", PARAM)
SEEDED = True
SAME_GRID = ("ct", "labelmap", "edited_labelmap")
OUTPUT_GRID = {"ct": "ct"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True)
    parser.add_argument("--labelmap", required=True)
    parser.add_argument("--edited-labelmap", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=EditRequest.steps)
    parser.add_argument("--margin-mm", type=float, default=EditRequest.margin_mm)
    parser.add_argument("--seed", type=int, default=0)
    add_engine_arguments(parser, default="classic", operations=("edit",))
    add_output_format(parser)


validate = check_output_format


def run(ctx: JobContext) -> dict:
    args = ctx.args
    request = EditRequest(read_volume(args.ct), load_labelmap(args.labelmap), load_labelmap(args.edited_labelmap),
                          steps=args.steps, seed=args.seed, margin_mm=args.margin_mm)
    result = ctx.engine().edit(request, progress=ctx.progress, cancel=ctx.cancel)
    with ct_output(ctx) as path:
        write_volume(result.ct, path, metadata=result.file_metadata())
    return result_facts(result)
