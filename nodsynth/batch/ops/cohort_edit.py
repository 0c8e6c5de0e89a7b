"""Op ``cohort_edit``: op ``cohort_case`` for engines that insert through a label-map edit (NodMAISI ROI edit):
each nodule of the case painted as label 23 and the CT re-rendered around it (``Engine.edit``). The same
inputs, outputs and params as :mod:`.cohort_case`; ``nodsynth cohort plan`` writes these rows for such engines."""
from __future__ import annotations

from .cohort_case import (INPUTS, OUTPUT_GRID, OUTPUTS, PARAMS, SAME_GRID, SEEDED, add_arguments, run,  # noqa: F401
                          validate)

OP = "cohort_edit"
ENGINE_OPERATION = "edit"
