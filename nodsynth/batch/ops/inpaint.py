"""Op ``inpaint``: a nodule put into a CT (``nodsynth inpaint``).

Inputs ``ct`` and optionally ``labelmap``, ``lung``, ``mask``, ``shapes`` (library .npz), ``histogram``
(a file); outputs ``ct`` and optionally ``mask`` (the inserted nodule) and ``json`` (centre, engine,
timing). Params: the verb's options (``point``, ``ras``, ``sample``, ``diameter_mm``, ``subtype``,
``histogram`` as ``preset``/``preset:K``, ``engine``, ...) and ``output_format`` (:mod:`._ct_output`); the row's ``seed`` picks the place, shape
and texture.
"""
from __future__ import annotations

from ...cli.verbs import inpaint as verb
from ...errors import InputError
from ..opspec import JobContext, Slot, result_facts
from ._ct_output import PARAM, add_output_format, check_output_format, ct_output

OP = "inpaint"
ENGINE_OPERATION = "inpaint"
INPUTS = {"ct": Slot("--ct"), "labelmap": Slot("--labelmap", required=False), "lung": Slot("--lung", required=False),
          "mask": Slot("--mask", required=False), "shapes": Slot("--shapes", required=False, volume=False),
          "histogram": Slot("--histogram", required=False, volume=False)}
OUTPUTS = {"ct": Slot("--out"), "mask": Slot("--out-mask", required=False),
           "json": Slot("--json", required=False, volume=False, suffix=".json")}
PARAMS = ("point", "ras", "sample", "diameter_mm", "elongation", "lobulation", "spiculation", "subtype",
          "histogram", "sampler", "steps", "engine", "weights", PARAM)
SEEDED = True
SAME_GRID = ("ct", "labelmap", "lung", "mask")
OUTPUT_GRID = {"ct": "ct", "mask": "ct"}


def add_arguments(parser) -> None:
    verb.add_arguments(parser)
    add_output_format(parser)


def validate(args, job) -> None:
    check_output_format(args, job)
    if "histogram" in job.inputs and "histogram" in job.params:
        raise InputError("give the histogram either as an input file or as params.histogram (preset, preset:K)")


def run(ctx: JobContext) -> dict:
    args = ctx.args
    request, centre = verb.inpaint_request(args)
    result = ctx.engine().inpaint(request, progress=ctx.progress, cancel=ctx.cancel)
    summary = verb.inpaint_summary(args, request, result, centre)
    with ct_output(ctx) as path:
        args.out = str(path)
        verb.write_inpaint_outputs(args, result, summary)
    return {**result_facts(result), "summary": summary}
