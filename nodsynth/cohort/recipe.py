"""The NodMAISI recipe as a preset: every nodule of every source label map shrunk with the paper's Algorithm 1
(``augment --method paper``, at most N = 50 steps) to one percent of its volume, then a whole-CT twin of each
shrunken map (``twin``, NodMAISI; with QC statistics, regenerated while it fails, up to ``max_tries``).

It is a ``batch plan`` spec of two steps, expanded by the same code (:mod:`nodsynth.batch.plan`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from ..batch.manifest import Job
from ..batch.plan import expand_step, spec_cases

RECIPE_ENGINE = "nodmaisi"


def recipe_steps(percent: float, seed: int, qc_stats: Optional[Path], max_tries: Optional[int]) -> list[dict]:
    twin: dict = {"op": "twin", "seeds": [seed], "params": {"engine": RECIPE_ENGINE}}
    if max_tries is not None:
        twin["params"]["max_tries"] = max_tries
    if qc_stats is not None:
        twin["inputs"] = {"labelmap": "prev.labelmap", "qc_stats": "case.qc_stats"}
    return [{"op": "augment", "percents": [percent], "params": {"method": "paper"}}, twin]


def recipe_jobs(labelmaps: Sequence[str], percent: float, out: str | os.PathLike, seed: int = 0,
                qc_stats: Optional[str | os.PathLike] = None, max_tries: Optional[int] = None) -> list[Job]:
    """The recipe's jobs for the label map files (relative to the current folder)."""
    folder = Path.cwd()
    items = spec_cases({"labelmap": [str(p) for p in labelmaps]}, folder)
    qc = Path(os.path.abspath(qc_stats)) if qc_stats else None
    for item in items:
        if qc is not None:
            item.case_files["qc_stats"] = qc
    jobs: list[Job] = []
    for number, step in enumerate(recipe_steps(percent, seed, qc, max_tries), start=1):
        step_jobs, items = expand_step(step, number, items, Path(os.path.abspath(out)), folder)
        jobs += step_jobs
    return jobs

