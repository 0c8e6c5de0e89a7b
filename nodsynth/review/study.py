"""Build a blinded reading study (``nodsynth turing build``), as HR-LDM's visual Turing test.

From real and synthetic nodules (:mod:`.study_inputs`) the builder draws ``n_real`` + ``n_synthetic``
balanced over subtype and size (:mod:`.balance`), gives every case a random id per phase (the same
nodule gets a different id in each phase) and a random reading order per phase, and writes:

* ``cropped/<id>.nii`` + ``cropped/<id>.png``: a cube around the nodule (``cube_mm``, isotropic
  spacing) and its axial / coronal / sagittal montage;
* ``full/<id>.nii``: the lung box (or the whole CT) with the full context;
* with ``volume_format="dicom"`` each case volume is a CT series folder ``<phase>/<id>/`` instead of
  ``<phase>/<id>.nii`` (:func:`.blinded.write_case_dicom`);
* ``study.json``: what a reader (or the Slicer reading session) needs - phases, the cases of each
  phase in reading order with their files and the nodule's point in the case volume (LPS mm) - and
  the SHA-256 of the key;
* ``balance.json`` (how subtypes and sizes spread), never opened while reading;
* the key (:mod:`.key`) *beside* ``out``, never in it: ``<out>.key.csv`` by default. It records the
  seed; without one a fresh random seed is drawn (:func:`draw_seed`), so no two default studies share
  ids or order, and giving the recorded seed rebuilds the same study.

Every case is written by the no-tell rules of :mod:`.blinded`; files are created in an order
unrelated to their source paths and all get the same time stamps. Spacing defaults: the cropped cubes
take the finest voxel spacing of the chosen CTs (isotropic), the full-context volumes the coarsest
spacing per axis. Everything goes into a staging folder that becomes ``out`` only when complete; the
key is removed again when the study cannot be completed.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io.atomic import staged_folder, write_text_atomic
from ..errors import InputError
from ..place import lung_from_ct
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress, scaled_progress
from ..segment.postprocess import lung_region
from ..io.volume_files import read_volume, read_volume_grid
from ..weights import sha256_of
from .balance import allocate, balance_table, choose, size_bin
from .blinded import box_of_mask, cropped_case, full_case, write_case_dicom, write_case_volume, write_montage
from .key import STUDY_FILE, KeyRow, default_key_path, key_text
from .study_inputs import StudyInput, check_distinct, describe_inputs

PHASES = ("cropped", "full")
"""Reading phases in the order they are read (all cropped cases before the full-context ones)."""
FULL_CONTEXTS = ("lung-box", "whole")
VOLUME_FORMATS = ("nifti", "dicom")
DEFAULT_CUBE_MM = 64.0
STUDY_FORMAT = "nodsynth-turing-study-1"
ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ID_LENGTH = 6


@dataclass(frozen=True)
class StudyCase:
    """One case of one phase: the input nodule it shows and its blinded id."""

    phase: str
    case_id: str
    item: StudyInput


def parse_phases(text: str) -> list[str]:
    """``"cropped,full"`` -> phases in reading order (cropped first); unknown or repeated names are errors."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PHASES))
    if unknown or not names or len(set(names)) != len(names):
        raise InputError(f"phases must be distinct names from {', '.join(PHASES)}, got {text!r}")
    return [p for p in PHASES if p in names]


def random_ids(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct random ids of :data:`ID_LENGTH` characters (no 0/O, 1/I look-alikes)."""
    ids: list[str] = []
    while len(ids) < count:
        candidate = "".join(rng.choice(list(ID_ALPHABET), ID_LENGTH))
        if candidate not in ids:
            ids.append(candidate)
    return ids


def select(real: Sequence[StudyInput], synthetic: Sequence[StudyInput], n_real: int, n_synthetic: int,
           rng: np.random.Generator) -> tuple[list[StudyInput], dict]:
    """The balanced choice of described inputs and the balance table."""
    strata = {side: [(i.subtype, size_bin(i.diameter_mm)) for i in items]
              for side, items in (("real", real), ("synthetic", synthetic))}
    counts_real, counts_synthetic = allocate(Counter(strata["real"]), Counter(strata["synthetic"]), n_real,
                                             n_synthetic)
    chosen_real = [real[i] for i in choose(strata["real"], counts_real, rng)]
    chosen_synthetic = [synthetic[i] for i in choose(strata["synthetic"], counts_synthetic, rng)]
    table = balance_table({"real": [(i.subtype, size_bin(i.diameter_mm)) for i in chosen_real],
                           "synthetic": [(i.subtype, size_bin(i.diameter_mm)) for i in chosen_synthetic]}, strata)
    return chosen_real + chosen_synthetic, table


def draw_seed() -> int:
    """A fresh random seed (128 bits from the operating system's entropy)."""
    return int(np.random.SeedSequence().entropy)


def _key_path(key_path: Optional[str | os.PathLike], out: Path) -> Path:
    """The key's path: ``key_path`` or ``<out>.key.csv``; refused inside ``out`` or when it exists."""
    path = Path(key_path) if key_path is not None else default_key_path(out)
    if path.resolve().is_relative_to(out.resolve()):
        raise InputError(f"the key {path} would lie inside the study folder {out} that readers receive; "
                         "write it beside the folder (default <out>.key.csv)")
    if path.exists():
        raise InputError(f"the key {path} already exists; choose a new key file")
    return path


def _spacing(paths: Sequence[Path]) -> np.ndarray:
    """``(n, 3)`` voxel spacings (mm, i j k) read from the headers of the given files."""
    return np.asarray([read_volume_grid(path).spacing for path in sorted(set(paths))], dtype=np.float64)


def _check_request(real: Sequence[StudyInput], synthetic: Sequence[StudyInput], n_real: int, n_synthetic: int,
                   cube_mm: float, full_context: str, spacings_mm: Sequence) -> None:
    for name, asked, held in (("real", n_real, len(real)), ("synthetic", n_synthetic, len(synthetic))):
        if asked < 0:
            raise InputError(f"the number of {name} cases must be >= 0, got {asked}")
        if asked > held:
            raise InputError(f"the study asks for {asked} {name} cases but the {name} manifest holds only {held} "
                             "nodule(s)")
    if n_real + n_synthetic == 0:
        raise InputError("the study asks for no cases")
    if not (np.isfinite(cube_mm) and cube_mm > 0):
        raise InputError(f"the cube edge must be positive millimetres, got {cube_mm}")
    if full_context not in FULL_CONTEXTS:
        raise InputError(f"full context must be one of {', '.join(FULL_CONTEXTS)}, got {full_context!r}")
    for spacing in spacings_mm:
        values = np.asarray(spacing, np.float64) if spacing is not None else np.ones(1)
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise InputError(f"a study spacing must be positive millimetres, got {spacing}")


class _SourceCache:
    """The last CT read (as a SimpleITK image) and its full-context volume, so a CT holding many
    nodules is read and resampled once."""

    def __init__(self, full_context: str, full_spacing_mm: Sequence[float]) -> None:
        self.full_context, self.full_spacing_mm = full_context, full_spacing_mm
        self.key: Optional[tuple] = None
        self.ct = self.image = self.full = self.full_centre = None

    def load(self, item: StudyInput, need_full: bool) -> None:
        """Make ``ct`` / ``image`` (and ``full`` when needed) those of ``item``'s CT."""
        key = (item.ct, item.labelmap, item.lung)
        if key != self.key:
            self.ct = read_volume(item.ct)
            self.key, self.image, self.full = key, self.ct.to_sitk(), None
        if need_full and self.full is None:
            if self.full_context == "whole":
                low, high = self.ct.world_bounds_lps()
            else:
                lung_source = item.labelmap or item.lung
                lung = (self.ct.with_array(lung_region(read_volume(lung_source), self.ct))
                        if lung_source else lung_from_ct(self.ct))
                low, high = box_of_mask(lung)
            self.full, self.full_centre = full_case(self.image, low, high, self.full_spacing_mm)


def build_study(real: Sequence[StudyInput], synthetic: Sequence[StudyInput], out: str | os.PathLike,
                n_real: int, n_synthetic: int, phases: Sequence[str] = PHASES, seed: Optional[int] = None,
                cube_mm: float = DEFAULT_CUBE_MM, cropped_spacing_mm: Optional[float] = None,
                full_spacing_mm: Optional[Sequence[float]] = None, full_context: str = "lung-box",
                progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                key_path: Optional[str | os.PathLike] = None, volume_format: str = "nifti") -> dict:
    """Write the study folder ``out`` and its key (see the module docstring); returns the study summary
    with the balance, the key's path (``key_path``) and the ``seed``."""
    report = progress or no_progress
    phases = parse_phases(",".join(phases))
    _check_request(real, synthetic, n_real, n_synthetic, cube_mm, full_context, (cropped_spacing_mm, full_spacing_mm))
    if volume_format not in VOLUME_FORMATS:
        raise InputError(f"unknown case volume format {volume_format!r}; use one of {', '.join(VOLUME_FORMATS)}")
    if volume_format == "dicom":
        from ..io.dicom.series import pydicom_module

        pydicom_module()  # refused before any work when pydicom is missing
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} already exists and is not an empty folder; choose a new study folder")
    key_path = _key_path(key_path, out)
    seed = draw_seed() if seed is None else seed
    real = describe_inputs(real, scaled_progress(report, 0.0, 0.05), cancel)
    synthetic = describe_inputs(synthetic, scaled_progress(report, 0.05, 0.1), cancel)
    check_distinct([*real, *synthetic])
    rng = np.random.default_rng(seed)
    chosen, balance = select(real, synthetic, n_real, n_synthetic, rng)
    spacings = _spacing([i.ct for i in chosen])
    cropped_spacing = float(cropped_spacing_mm) if cropped_spacing_mm is not None else float(spacings.min())
    full_spacing = (np.asarray(full_spacing_mm, np.float64) * np.ones(3) if full_spacing_mm is not None
                    else spacings.max(axis=0))
    ids = iter(random_ids(len(chosen) * len(phases), rng))
    cases = {phase: [StudyCase(phase, next(ids), chosen[i]) for i in rng.permutation(len(chosen))]
             for phase in phases}

    work = writing_order([c for phase in phases for c in cases[phase]], rng)
    entries: dict = {phase: {} for phase in phases}
    cache = _SourceCache(full_context, full_spacing)
    try:
        with staged_folder(out) as stage:
            for done, case in enumerate(work):
                check_cancel(cancel)
                report(0.1 + 0.88 * done / len(work), f"{case.phase} {case.case_id}")
                try:
                    cache.load(case.item, case.phase == "full")
                    entries[case.phase][case.case_id] = _write_case(stage, case, cache, cube_mm, cropped_spacing,
                                                                     volume_format)
                except InputError as exc:
                    raise InputError(f"{case.item.truth} nodule {case.item.source} ({case.item.ct}): {exc}") from exc
            key_rows = [KeyRow(c.case_id, c.phase, c.item.truth, c.item.source, c.item.subtype, c.item.diameter_mm)
                        for phase in phases for c in cases[phase]]
            write_text_atomic(key_path, key_text(key_rows, seed))
            summary = {"format": STUDY_FORMAT, "phases": phases, "cube_mm": float(cube_mm),
                       "spacing_mm": {"cropped": [cropped_spacing] * 3, "full": [float(v) for v in full_spacing]},
                       "full_context": full_context,
                       "cases": {phase: [entries[phase][c.case_id] for c in cases[phase]] for phase in phases},
                       "key_sha256": sha256_of(key_path)}
            write_text_atomic(stage / STUDY_FILE, json.dumps(summary, indent=1) + "\n")
            write_text_atomic(stage / "balance.json", json.dumps(balance, indent=1) + "\n")
            same_times(stage)
    except BaseException:  # no key without its study
        key_path.unlink(missing_ok=True)
        raise
    report(1.0, "study written")
    return {**summary, "balance": balance, "key_path": key_path, "seed": seed}


def writing_order(work: Sequence[StudyCase], rng: np.random.Generator) -> list[StudyCase]:
    """Cases grouped by source CT (each CT is read once) with the groups and the cases in each in random
    order: files are created in an order that says nothing about their source paths (inode numbers)."""
    groups: dict = {}
    for case in work:
        groups.setdefault((case.item.ct, case.item.labelmap, case.item.lung), []).append(case)
    ordered, order = list(groups.values()), []
    for g in rng.permutation(len(ordered)):
        order += [ordered[g][i] for i in rng.permutation(len(ordered[g]))]
    return order


def same_times(folder: Path) -> None:
    """Give every file and folder under ``folder`` the same access and modification time (now, whole
    seconds), so times do not tell the order the cases were written in."""
    now = float(int(time.time()))
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (now, now))


def _write_case(stage: Path, case: StudyCase, cache: _SourceCache, cube_mm: float, spacing_mm: float,
                volume_format: str = "nifti") -> dict:
    """Write one case's files; returns its ``study.json`` entry."""
    folder = stage / case.phase
    volume_name = f"{case.case_id}.nii" if volume_format == "nifti" else case.case_id
    entry = {"case_id": case.case_id, "volume": f"{case.phase}/{volume_name}"}
    centre = np.asarray(case.item.centre_lps_mm, np.float64)
    cache.ct.world_to_kji(centre)  # raises when the centre lies outside its CT
    if case.phase == "cropped":
        volume = cropped_case(cache.image, centre, cube_mm, spacing_mm)
        write_montage(volume, folder / f"{case.case_id}.png")
        entry.update(montage=f"{case.phase}/{case.case_id}.png", point_lps_mm=[0.0, 0.0, 0.0])
    else:
        volume = cache.full
        entry["point_lps_mm"] = [round(float(v), 3) for v in centre - cache.full_centre]
    if volume_format == "nifti":
        write_case_volume(volume, folder / volume_name)
    else:
        write_case_dicom(volume, folder / volume_name, case.case_id)
    return entry
