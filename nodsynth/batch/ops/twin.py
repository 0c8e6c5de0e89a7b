"""Op ``twin``: a whole CT from a MAISI label map (``nodsynth twin``).

Inputs ``labelmap``; outputs ``ct``; params ``steps``, ``size``, ``spacing``, ``resample``, ``engine``
(default nodmaisi), ``weights``; the row's ``seed`` is the noise seed.
"""
from __future__ import annotations

from ...cli.verbs import twin as verb
from ...volume import write_volume
from ..opspec import JobContext, Slot, result_facts

OP = "twin"
ENGINE_OPERATION = "twin"
INPUTS = {"labelmap": Slot("--labelmap")}
OUTPUTS = {"ct": Slot("--out")}
PARAMS = ("steps", "size", "spacing", "resample", "engine", "weights")
SEEDED = True
SAME_GRID = ()
OUTPUT_GRID: dict = {}  # the grid changes with size / spacing
add_arguments = verb.add_arguments


def run(ctx: JobContext) -> dict:
    result = ctx.engine().twin(verb.twin_request(ctx.args), progress=ctx.progress, cancel=ctx.cancel)
    write_volume(result.ct, ctx.outputs["ct"], metadata=result.file_metadata())
    return result_facts(result)
