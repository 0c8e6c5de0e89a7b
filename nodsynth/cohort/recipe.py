"""The NodMAISI recipe as a preset: every nodule of every source label map shrunk with the paper's Algorithm 1
(``augment --method paper``, at most N = 50 steps) to one percent of its volume, then a whole-CT twin of each
shrunken map (``twin``, NodMAISI; with QC statistics, regenerated while it fails, up to ``max_tries``).

The jobs are a ``batch plan`` spec of two steps, expanded by the same code (:mod:`nodsynth.batch.plan`); the
shrink's ``ids`` output numbers each shrunken nodule as its real nodule (:mod:`.source_nodules`). Beside the
manifest the recipe writes a plan folder as ``cohort plan`` does (``cohort.csv``, ``cohort.json``), so ``cohort
export`` reads it: one case per label map, one row per shrunken nodule, worked out at plan time by the same
deterministic shrink (centroid, equivalent-sphere diameter, inner / sub-pleural), with the ``label`` and
``donor_patient_id`` of the real nodule it was drawn from (:mod:`.nodule_table`; without a table no label and the
source's patient, the label map's file stem).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io.atomic import write_text_atomic
from ..augment import nodule_components, resize_series
from ..batch.manifest import Job
from ..batch.plan import expand_step, spec_cases, write_manifest
from ..errors import InputError
from ..labelmap import load_labelmap
from ..progress import ProgressFn, no_progress
from .case import nodule_facts
from .nodule_table import NoduleTable, real_nodule_facts
from .plan import PLAN_FILES, _relative
from .source_nodules import pleura_location, resized_ids
from .table import cohort_row, write_cohort

RECIPE_ENGINE = "nodmaisi"
METHOD = "paper"


def recipe_steps(percent: float, seed: int, qc_stats: Optional[Path], max_tries: Optional[int]) -> list[dict]:
    twin: dict = {"op": "twin", "seeds": [seed], "params": {"engine": RECIPE_ENGINE}}
    if max_tries is not None:
        twin["params"]["max_tries"] = max_tries
    if qc_stats is not None:
        twin["inputs"] = {"labelmap": "prev.labelmap", "qc_stats": "case.qc_stats"}
    return [{"op": "augment", "percents": [percent], "params": {"method": METHOD}, "outputs": ["labelmap", "ids"]},
            twin]


def recipe_jobs(labelmaps: Sequence[str], percent: float, out: str | os.PathLike, seed: int = 0,
                qc_stats: Optional[str | os.PathLike] = None,
                max_tries: Optional[int] = None) -> tuple[list[Job], dict[str, dict[str, str]]]:
    """The recipe's jobs for the label map files (relative to the current folder), and per case (label map) the
    ids of its shrink job and its twin job."""
    folder = Path.cwd()
    items = spec_cases({"labelmap": [str(p) for p in labelmaps]}, folder)
    cases = [item.case for item in items]
    qc = Path(os.path.abspath(qc_stats)) if qc_stats else None
    for item in items:
        if qc is not None:
            item.case_files["qc_stats"] = qc
    steps = []
    for number, step in enumerate(recipe_steps(percent, seed, qc, max_tries), start=1):
        step_jobs, items = expand_step(step, number, items, Path(os.path.abspath(out)), folder)
        steps.append(step_jobs)
    case_jobs = {case: {"ids": shrink.id, "ct": twin.id} for case, shrink, twin in zip(cases, *steps)}
    return steps[0] + steps[1], case_jobs


def shrunk_rows(case_id: str, labelmap_path: Path, percent: float, seed: int, table: Optional[NoduleTable],
                folder: Path) -> list[dict]:
    """One ``cohort.csv`` row per nodule of the label map, as the recipe's shrink will make it."""
    labelmap = load_labelmap(labelmap_path)
    inherited = real_nodule_facts(table, labelmap_path, labelmap, nodule_components(labelmap))
    shrunk = resize_series(labelmap, "all", [percent], method=METHOD)[0].labelmap
    ids = resized_ids(labelmap, shrunk)
    rows = []
    for made in nodule_facts(ids, [{"nodule_id": n} for n in inherited]):
        number = made["nodule_id"]
        if made["voxels"] == 0:
            raise InputError(f"{labelmap_path}: nodule {number} has no voxel left at {percent:g} %")
        facts = inherited[number]
        rows.append(cohort_row(case_id, number, "", _relative(labelmap_path, folder), facts.subtype,
                               made["equivalent_diameter_mm"], pleura_location(shrunk, np.asarray(ids.array) == number),
                               np.asarray(made["centroid_lps_mm"]), f"recipe:{case_id}#{number}", "", facts.label,
                               facts.donor_patient_id, RECIPE_ENGINE, seed))
    return rows


def write_recipe(labelmaps: Sequence[str], percent: float, out: str | os.PathLike, seed: int = 0,
                 qc_stats: Optional[str | os.PathLike] = None, max_tries: Optional[int] = None,
                 nodules: Optional[str | os.PathLike] = None, licence: Optional[str] = None,
                 progress: Optional[ProgressFn] = None) -> tuple[Path, list[dict]]:
    """``out/cohort.csv``, ``out/cohort.json`` and ``out/manifest.jsonl`` (each atomically, after every label map
    and table row was checked); the manifest's path and the rows."""
    report = progress or no_progress
    folder = Path(os.path.abspath(out))
    table = NoduleTable.read(nodules) if nodules is not None else None
    jobs, case_jobs = recipe_jobs(labelmaps, percent, folder, seed, qc_stats, max_tries)
    rows = []
    for number, (case_id, path) in enumerate(zip(case_jobs, labelmaps)):
        report(number / len(labelmaps), f"shrinking the nodules of {case_id}")
        rows += shrunk_rows(case_id, Path(os.path.abspath(path)), percent, seed, table, folder)
    facts = {"format": "nodsynth-cohort-1", "recipe": {"percent": percent, "method": METHOD}, "seed": seed,
             "engine": RECIPE_ENGINE, "licences": {"labelmap": licence} if licence else {},
             "nodules": _relative(Path(os.path.abspath(nodules)), folder) if nodules else "", "case_jobs": case_jobs}
    write_cohort(folder / PLAN_FILES[0], rows)
    write_text_atomic(folder / PLAN_FILES[2], json.dumps(facts, indent=1) + "\n")
    return write_manifest(jobs, folder / PLAN_FILES[1]), rows
