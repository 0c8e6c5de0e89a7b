"""Op ``twin``: a whole CT from a MAISI label map (``nodsynth twin``).

Inputs ``labelmap`` and optionally ``qc_stats`` (``nodsynth qc stats``' file: the twin is sampled again while it
fails MAISI's quality check); outputs ``ct``; params ``steps``, ``size``, ``spacing``, ``resample``, ``engine``
(default nodmaisi), ``weights``, ``max_tries``, ``output_format`` (:mod:`._ct_output`); the row's ``seed`` is the
noise seed. A twin that never passes is
kept; the record's ``qc_passed`` is false and ``engine_info.qc`` holds every try's verdict.
"""
from __future__ import annotations

from ...cli.verbs import twin as verb
from ..opspec import JobContext, Slot, result_facts
from ._ct_output import PARAM, add_output_format, check_output_format, ct_output

OP = "twin"
ENGINE_OPERATION = "twin"
INPUTS = {"labelmap": Slot("--labelmap"), "qc_stats": Slot("--qc-stats", required=False, volume=False)}
OUTPUTS = {"ct": Slot("--out")}
PARAMS = ("steps", "size", "spacing", "resample", "engine", "weights", "max_tries", PARAM)
SEEDED = True
SAME_GRID = ()
OUTPUT_GRID: dict = {}  # the grid changes with size / spacing
validate = check_output_format


def add_arguments(parser) -> None:
    verb.add_arguments(parser)
    add_output_format(parser)


def run(ctx: JobContext) -> dict:
    result = verb.twin_result(ctx.engine(), ctx.args, ctx.progress, ctx.cancel)
    with ct_output(ctx) as path:
        verb.write_twin(result, path)
    qc = result.info.get("qc")
    return {**result_facts(result), **({"qc_passed": qc["passed"]} if qc else {})}
