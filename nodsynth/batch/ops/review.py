"""Op ``review``: per-case fidelity numbers of a real / synthetic pair (``nodsynth review compare``).

Inputs ``real``, ``synthetic`` and optionally ``labelmap`` (MAISI labels of the real CT), ``mask``
(conditioning nodule masks instead of label 23), ``edited_labelmap`` or ``changed`` (an ROI edit);
outputs ``json`` (the case as ``review.json`` holds it) and optionally ``csv`` (one row per nodule);
params ``margin_mm``. The HTML report with images is ``nodsynth review compare --manifest`` over the
same pairs.
"""
from __future__ import annotations

import argparse
import json

from ...io.atomic import write_csv_atomic, write_text_atomic
from ...review.compare import NODULE_COLUMNS, compare_case
from ...io.volume_files import read_volume
from ..opspec import JobContext, Slot

OP = "review"
ENGINE_OPERATION = None
INPUTS = {"real": Slot("--real"), "synthetic": Slot("--synthetic"), "labelmap": Slot("--labelmap", required=False),
          "mask": Slot("--mask", required=False), "edited_labelmap": Slot("--edited-labelmap", required=False),
          "changed": Slot("--changed", required=False)}
OUTPUTS = {"json": Slot("--json", volume=False, suffix=".json"),
           "csv": Slot("--csv", required=False, volume=False, suffix=".csv")}
PARAMS = ("margin_mm",)
SEEDED = False
SAME_GRID = ("real", "synthetic", "labelmap", "mask", "edited_labelmap", "changed")
OUTPUT_GRID: dict = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``nodsynth review compare`` for one pair, written to files instead of a folder."""
    for slot in INPUTS.values():
        parser.add_argument(slot.option, required=slot.required)
    parser.add_argument("--margin-mm", type=float, default=3.0)
    parser.add_argument("--json", required=True)
    parser.add_argument("--csv")


def _optional(path):
    return None if path is None else read_volume(path)


def run(ctx: JobContext) -> dict:
    args = ctx.args
    case = compare_case(read_volume(args.real), read_volume(args.synthetic), _optional(args.labelmap),
                        _optional(args.mask), _optional(args.edited_labelmap), _optional(args.changed),
                        args.margin_mm, ctx.job.id, progress=ctx.progress, cancel=ctx.cancel)
    write_text_atomic(ctx.outputs["json"], json.dumps(case.to_dict(), indent=1) + "\n")
    nodules = case.nodule_rows()
    if "csv" in ctx.outputs:
        write_csv_atomic(ctx.outputs["csv"], nodules, NODULE_COLUMNS)
    return {"nodules": len(nodules), "reproduced": sum(1 for r in nodules if r["reproduced"])}
