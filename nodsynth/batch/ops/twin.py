"""Op ``twin``: a whole CT from a MAISI label map (``nodsynth twin``).

Inputs ``labelmap`` and optionally ``qc_stats`` (``nodsynth qc stats``' file: the twin is sampled again while it
fails MAISI's quality check); outputs ``ct``; params ``steps``, ``size``, ``spacing``, ``resample``, ``engine``
(default nodmaisi), ``weights``, ``max_tries``; the row's ``seed`` is the noise seed. A twin that never passes is
kept; the record's ``qc_passed`` is false and ``engine_info.qc`` holds every try's verdict.
"""
from __future__ import annotations

from ...cli.verbs import twin as verb
from ..opspec import JobContext, Slot, result_facts

OP = "twin"
ENGINE_OPERATION = "twin"
INPUTS = {"labelmap": Slot("--labelmap"), "qc_stats": Slot("--qc-stats", required=False, volume=False)}
OUTPUTS = {"ct": Slot("--out")}
PARAMS = ("steps", "size", "spacing", "resample", "engine", "weights", "max_tries")
SEEDED = True
SAME_GRID = ()
OUTPUT_GRID: dict = {}  # the grid changes with size / spacing
add_arguments = verb.add_arguments


def run(ctx: JobContext) -> dict:
    result = verb.twin_result(ctx.engine(), ctx.args, ctx.progress, ctx.cancel)
    verb.write_twin(result, ctx.outputs["ct"])
    qc = result.info.get("qc")
    return {**result_facts(result), **({"qc_passed": qc["passed"]} if qc else {})}
