"""A twin that must pass the quality check: sampled again with a new seed until it passes, as MAISI's sampler does.

MAISI's sampler tries another candidate mask when a CT fails; with one label map per scan the faithful analogue
is a new seed. Every try's verdict is kept in ``result.info["qc"]``; a CT that never passes is returned (kept)
with ``passed: false``, as MAISI keeps its last candidate.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np

from ..engines.base import Engine, SynthesisResult, TwinRequest
from ..errors import InputError
from ..progress import CancelToken, ProgressFn, scaled_progress
from ..volume import Volume, same_grid
from .check import check_ct, verdict_line, verdict_record

DEFAULT_MAX_TRIES = 2
"""Tries in all (the first included), MAISI's ``max_try_time``."""


def retry_seed(seed: Optional[int], attempt: int) -> Optional[int]:
    """The seed of try ``attempt`` (0-based): the requested seed first, then seeds derived from it (31-bit)."""
    if seed is None or attempt == 0:
        return seed
    return int(np.random.SeedSequence([int(seed), attempt]).generate_state(1)[0] >> 1)


def labels_on_ct_grid(labelmap: Volume, ct: Volume) -> Volume:
    """The label map on the CT's grid (nearest neighbour when the twin was made on another grid)."""
    if same_grid(labelmap, ct) and labelmap.array.shape == ct.array.shape:
        return labelmap
    from ..engines.maisi.grid import resample_onto

    return resample_onto(labelmap, ct, nearest=True, default_value=0)


def twin_with_qc(engine: Engine, request: TwinRequest, statistics: Mapping[str, Mapping[str, float]],
                 max_tries: int = DEFAULT_MAX_TRIES, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """The first twin that passes the check, else the last one; ``info["qc"]`` holds every try's verdict."""
    if max_tries < 1:
        raise InputError(f"--max-tries must be at least 1, got {max_tries}")
    if request.initial_noise is not None and max_tries > 1:
        raise InputError("a twin from fixed initial noise cannot be regenerated: give a seed or --max-tries 1")
    tries = []
    for attempt in range(max_tries):
        seeded = dataclasses.replace(request, seed=retry_seed(request.seed, attempt))
        part = scaled_progress(progress, attempt / max_tries, (attempt + 1) / max_tries)
        result = engine.twin(seeded, part, cancel)
        verdicts = check_ct(result.ct, labels_on_ct_grid(request.labelmap, result.ct), statistics)
        tries.append({"try": attempt + 1, "seed": seeded.seed, "verdict": verdict_line(verdicts),
                      **verdict_record(verdicts)})
        part(1.0, f"quality check, try {attempt + 1} of {max_tries}: {tries[-1]['verdict']}")
        if tries[-1]["passed"]:
            break
    result.info["qc"] = {"passed": tries[-1]["passed"], "tries": tries}
    return result


def qc_header(qc: Mapping) -> str:
    """The CT header's record of the check: 'passed on try N of M' or 'FAILED all N tries'."""
    tries = qc["tries"]
    return f"passed on try {len(tries)}" if qc["passed"] else f"FAILED all {len(tries)} tries"
