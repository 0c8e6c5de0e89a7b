"""``cohort plan``: a spec (:mod:`.spec`) turned into ``cohort.csv`` and a batch manifest, or refused.

1. The counts become a list of nodules (subtype, bin, a diameter drawn in the bin, inner or sub-pleural).
2. Cases: as few as ``nodules_per_ct`` allows around its mean, each with ``min..max`` nodules, dealt to the
   sources in turn (a source serves several cases when the counts need more cases than sources).
3. Per source (loaded once), per case, the nodules largest first: candidate centres are drawn (seeded)
   and the rasterised mask checked against the rules of :mod:`.room`; a nodule that finds no place in
   :data:`MAX_TRIES` draws refuses the whole plan, naming the constraint. Nothing is written then.
4. Each case is one ``cohort_case`` job (the source with all its nodules; with label-map-only sources
   followed by a ``twin`` job of the painted label map).

Every draw comes from the spec's seed, paths are written relative to the output folder: the same spec and
seed give byte-identical files.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..io.atomic import write_text_atomic
from ..batch.manifest import Job
from ..batch.plan import write_manifest
from ..engines.registry import ENGINE_OPERATIONS
from ..errors import InputError
from ..histogram_library import DEFAULT_HISTOGRAM_SOURCE
from ..labelmap import load_labelmap
from ..place import resolve_lung
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..shapes import ShapeLibrary, bounding_diameter_mm
from ..volume import Volume
from ..io.volume_files import read_volume
from .nodule import PROCEDURAL, PROCEDURAL_SHAPES, LocalMask, local_mask, nodule_shape
from .room import CaseRoom, SourceLung, require_lung
from .spec import CohortSpec, Source
from .table import cohort_row, write_cohort

MAX_TRIES = 300
"""Candidate centres tried per nodule before the plan is refused."""
MAX_BOUNDING_RATIO = 2.0
"""Library shapes whose bounding sphere is wider than this many equivalent spheres (thin or scattered masks,
about 14 % of the LIDC ones) are not drawn."""
CASES_FOLDER = "cases"
PLAN_FILES = ("cohort.csv", "manifest.jsonl", "cohort.json")


@dataclass
class Planned:
    subtype: str
    bin_name: str
    diameter_mm: float
    location: str
    seed: int
    shape_source: str
    label: str = ""
    donor_patient_id: str = ""
    centre: Optional[np.ndarray] = None


@dataclass
class Case:
    case_id: str
    source: Source
    nodules: list[Planned]


def _bounding_ratio(entry: dict) -> float:
    """Bounding over equivalent-sphere diameter of a library shape's nodule (1 for an entry without them)."""
    return entry.get("bounding_diameter_mm", 1.0) / entry.get("equivalent_diameter_mm", 1.0)


def draw_shape(subtype: str, rng: np.random.Generator, library: Optional[ShapeLibrary]) -> tuple[str, str, str]:
    """``(shape_source, label, donor_patient_id)``: a library shape of the subtype (any when none has it), among
    those no more than :data:`MAX_BOUNDING_RATIO` times as wide as their equivalent sphere, with the malignancy and
    patient of its nodule; or a procedural shape (no label, no donor)."""
    if library is None:
        return f"{PROCEDURAL}:{int(rng.integers(PROCEDURAL_SHAPES))}", "", ""
    compact = [i for i, e in enumerate(library.entries) if _bounding_ratio(e) <= MAX_BOUNDING_RATIO] or list(
        range(len(library)))
    same = [i for i in compact if library.entries[i].get("subtype") == subtype] or compact
    index = same[int(rng.integers(len(same)))]
    entry = library.entries[index]
    return f"library:{index}", str(entry.get("malignancy", "")), str(entry.get("patient_id", ""))


def planned_nodules(spec: CohortSpec, rng: np.random.Generator, library: Optional[ShapeLibrary]) -> list[Planned]:
    """Every nodule the counts ask for, shuffled, with its diameter, location, seed and shape."""
    nodules = []
    for b in spec.bins:
        for _ in range(b.count):
            diameter = round(float(rng.uniform(b.lo_mm, b.hi_mm)), 2)
            diameter = min(diameter, math.nextafter(b.hi_mm, 0.0))
            seed = int(rng.integers(0, 2 ** 31 - 1))
            nodules.append(Planned(b.subtype, b.name, diameter, "inner", seed, *draw_shape(b.subtype, rng, library)))
    subpleural = int(round(spec.subpleural_fraction * len(nodules)))
    for index in rng.permutation(len(nodules))[:subpleural]:
        nodules[index].location = "subpleural"
    return [nodules[i] for i in rng.permutation(len(nodules))]


def case_sizes(total: int, per_ct: tuple[int, int], rng: np.random.Generator) -> list[int]:
    """Nodules per case: ``min..max`` each, summing to ``total``."""
    lo, hi = per_ct
    fewest, most = math.ceil(total / hi), total // lo
    if fewest > most:
        raise InputError(f"nodules_per_ct {list(per_ct)}: {total} nodule(s) cannot be split into cases of "
                         f"{lo} to {hi} nodules")
    cases = min(max(round(total / ((lo + hi) / 2.0)), fewest), most)
    sizes = np.full(cases, lo)
    for _ in range(total - lo * cases):
        open_cases = np.flatnonzero(sizes < hi)
        sizes[open_cases[int(rng.integers(len(open_cases)))]] += 1
    return [int(s) for s in sizes]


def deal_cases(spec: CohortSpec, nodules: list[Planned], rng: np.random.Generator) -> list[Case]:
    cases, used, start = [], {}, 0
    for number, size in enumerate(case_sizes(len(nodules), spec.per_ct, rng)):
        source = spec.sources[number % len(spec.sources)]
        used[source.name] = used.get(source.name, 0) + 1
        cases.append(Case(f"{source.name}_c{used[source.name]:03d}", source, nodules[start:start + size]))
        start += size
    return cases


def source_lung(source: Source) -> tuple[Volume, SourceLung]:
    """The source's grid and its lung (the label map when given, else a CT threshold)."""
    labelmap = load_labelmap(source.labelmap) if source.labelmap else None
    ct = read_volume(source.ct) if labelmap is None else None
    lung, existing = resolve_lung(ct, labelmap)
    grid = labelmap if labelmap is not None else ct
    return grid, SourceLung.from_masks(lung, existing)


def place_nodule(nodule: Planned, case: Case, grid: Volume, room: CaseRoom, spec: CohortSpec,
                 library: Optional[ShapeLibrary]) -> None:
    """Find the nodule a centre meeting every rule (or refuse the plan), and take its room."""
    shape = nodule_shape(nodule.shape_source, library)
    bounding = bounding_diameter_mm(shape, nodule.diameter_mm)
    what = f"a {nodule.diameter_mm:g} mm {nodule.subtype} nodule (bin {nodule.bin_name} mm)"
    require_lung(room.lung, bounding, f"{what} in source {case.source.name}")
    candidates = room.candidates(nodule.location, nodule.diameter_mm, bounding)
    rng = np.random.default_rng([nodule.seed, 2])
    lung_grid = room.lung.grid
    for _ in range(MAX_TRIES if candidates.size else 0):
        flat = candidates[int(rng.integers(candidates.size))]
        kji = np.array(np.unravel_index(flat, room.taken.shape))
        centre = np.array([float(f"{v:.3f}") for v in lung_grid.index_to_world(kji[::-1].astype(np.float64))])
        mask = local_mask(shape, grid, centre, nodule.diameter_mm, nodule.seed)
        on_crop = LocalMask(mask.start_kji - room.lung.start_kji, mask.array)
        if room.fits(on_crop, nodule.location):
            room.take(on_crop)
            nodule.centre = centre
            return
    rule = (f"pleura_clearance_mm {spec.pleura_clearance_mm:g}" if nodule.location == "inner"
            else "its surface within 2 mm of the pleura")
    raise InputError(f"the spec cannot be met: no room for {what}, {nodule.location} ({rule}), in case {case.case_id} "
                     f"(source {case.source.name}) with clearance_mm {spec.clearance_mm:g} from the other nodules "
                     f"(tried {MAX_TRIES if candidates.size else 0} places); ask for fewer or smaller nodules, "
                     "a smaller clearance or more sources")


def place_cases(spec: CohortSpec, cases: list[Case], library: Optional[ShapeLibrary],
                progress: ProgressFn, cancel: Optional[CancelToken]) -> None:
    for number, source in enumerate(spec.sources):
        check_cancel(cancel)
        mine = [c for c in cases if c.source is source]
        if not mine:
            continue
        progress(number / len(spec.sources), f"placing nodules in {source.name}")
        grid, lung = source_lung(source)
        for case in mine:
            room = CaseRoom(lung, spec.clearance_mm, spec.pleura_clearance_mm)
            for nodule in sorted(case.nodules, key=lambda n: -n.diameter_mm):
                place_nodule(nodule, case, grid, room, spec, library)


def plan_cohort(spec: CohortSpec, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> list[Case]:
    """Every case with its placed nodules; :class:`InputError` when the spec cannot be met."""
    rng = np.random.default_rng(spec.seed)
    library = ShapeLibrary.load(spec.shapes) if spec.shapes else None
    cases = deal_cases(spec, planned_nodules(spec, rng, library), rng)
    place_cases(spec, cases, library, progress or no_progress, cancel)
    return cases


def _relative(path: Optional[Path], folder: Path) -> str:
    return os.path.relpath(path, folder) if path else ""


def cohort_rows(spec: CohortSpec, cases: list[Case], folder: Path) -> list[dict]:
    return [cohort_row(case.case_id, number, _relative(case.source.ct, folder), _relative(case.source.labelmap, folder),
                       nodule.subtype, nodule.diameter_mm, nodule.location, nodule.centre, nodule.shape_source,
                       DEFAULT_HISTOGRAM_SOURCE, nodule.label, nodule.donor_patient_id, spec.engine, nodule.seed)
            for case in cases for number, nodule in enumerate(case.nodules, start=1)]


def case_op(spec: CohortSpec) -> str:
    """``cohort_case`` (the engine inserts nodules, or the sources are label maps only), else ``cohort_edit``."""
    return "cohort_case" if spec.labelmap_only or "inpaint" in ENGINE_OPERATIONS[spec.engine] else "cohort_edit"


def case_jobs(spec: CohortSpec, cases: list[Case], folder: Path) -> list[Job]:
    """One ``cohort_case`` (``cohort_edit``) job per case, plus its ``twin`` for label-map-only sources."""
    jobs = []
    table = folder / PLAN_FILES[0]
    for case in cases:
        out = folder / CASES_FOLDER / case.case_id
        inputs = {k: v for k, v in (("ct", case.source.ct), ("labelmap", case.source.labelmap),
                                    ("nodules", table), ("shapes", spec.shapes)) if v is not None}
        outputs = {"ids": out / "ids.nii.gz", "json": out / "case.json"}
        if case.source.labelmap is not None:
            outputs["labelmap"] = out / "labelmap.nii.gz"
        params: dict = {"case_id": case.case_id}
        if not spec.labelmap_only:
            outputs["ct"] = out / "ct.nii.gz"
            params.update(engine=spec.engine, **spec.engine_params)
        seed = case.nodules[0].seed
        jobs.append(Job(f"cohort-{case.case_id}", case_op(spec), inputs, params, seed, outputs, 0, folder))
        if spec.labelmap_only:
            twin_params = {"engine": spec.engine, **{k: v for k, v in spec.engine_params.items() if k == "weights"},
                           **({"max_tries": spec.max_tries} if spec.max_tries else {})}
            twin_inputs = {"labelmap": outputs["labelmap"], **({"qc_stats": spec.qc_stats} if spec.qc_stats else {})}
            jobs.append(Job(f"twin-{case.case_id}", "twin", twin_inputs, twin_params, seed,
                            {"ct": out / "ct.nii.gz"}, 0, folder))
    return jobs


def plan_facts(spec: CohortSpec, folder: Path) -> dict:
    """What exports and reports read from the spec: its path, seed, engine, the sources' licences, rules and bins."""
    return {"format": "nodsynth-cohort-1", "spec": _relative(spec.path, folder), "seed": spec.seed,
            "engine": spec.engine, "licences": spec.licences, "clearance_mm": spec.clearance_mm,
            "pleura_clearance_mm": spec.pleura_clearance_mm,
            "bins": [{"subtype": b.subtype, "lo_mm": b.lo_mm, "hi_mm": b.hi_mm, "count": b.count} for b in spec.bins]}


def write_plan(spec: CohortSpec, cases: list[Case], out: str | os.PathLike) -> Path:
    """``out/cohort.csv``, ``out/cohort.json`` (:func:`plan_facts`) and ``out/manifest.jsonl`` (each atomically)."""
    folder = Path(os.path.abspath(out))
    write_cohort(folder / PLAN_FILES[0], cohort_rows(spec, cases, folder))
    write_text_atomic(folder / PLAN_FILES[2], json.dumps(plan_facts(spec, folder), indent=1) + "\n")
    return write_manifest(case_jobs(spec, cases, folder), folder / PLAN_FILES[1])
