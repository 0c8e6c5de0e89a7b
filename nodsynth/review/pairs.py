"""Review many real / synthetic pairs into one report folder (``nodsynth review compare``).

A pairs manifest is a CSV with the columns ``real,synthetic`` and optionally ``case_id``,
``labelmap``, ``mask``, ``edited_labelmap`` and ``changed`` (see :func:`~.compare.compare_case`);
paths are relative to the manifest's folder. :func:`review_pairs` compares each pair, draws each
nodule's triplet and writes the report (:mod:`.report`) into a staging folder that becomes the
output folder only when everything succeeded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..io.atomic import staged_folder
from ..errors import InputError
from ..overlay import save_image
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress, scaled_progress
from ..io.volume_files import read_volume
from .compare import CaseComparison, compare_case
from ..io.tables import existing_file, read_rows
from .report import image_name, write_report
from .triplets import nodule_triplet

PAIR_FILE_COLUMNS = ("real", "synthetic", "labelmap", "mask", "edited_labelmap", "changed")


@dataclass(frozen=True)
class ReviewPair:
    """One real / synthetic pair and its optional label maps and masks (paths)."""

    case_id: str
    real: Path
    synthetic: Path
    labelmap: Optional[Path] = None
    mask: Optional[Path] = None
    edited_labelmap: Optional[Path] = None
    changed: Optional[Path] = None


def read_pairs(path: str | os.PathLike) -> list[ReviewPair]:
    """The pairs of a manifest; every named file must exist and case ids must be unique."""
    path = Path(path)
    pairs = []
    for line, row in read_rows(path, ("real", "synthetic"), "pairs manifest"):
        files = {c: existing_file(path, line, c, row.get(c, "")) for c in PAIR_FILE_COLUMNS}
        if files["real"] is None or files["synthetic"] is None:
            raise InputError(f"{path} line {line}: both real and synthetic must name a CT")
        pairs.append(ReviewPair(case_id=row.get("case_id") or f"{files['synthetic'].name.split('.')[0]}_{line}",
                                **files))
    seen = set()
    for pair in pairs:
        if pair.case_id in seen:
            raise InputError(f"{path}: case_id {pair.case_id!r} appears more than once")
        seen.add(pair.case_id)
    return pairs


def _optional(path: Optional[Path]):
    return None if path is None else read_volume(path)


def review_pairs(pairs: Sequence[ReviewPair], out: str | os.PathLike, margin_mm: float = 3.0, images: bool = True,
                 progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> list[CaseComparison]:
    """Compare every pair and write the report folder ``out`` (which must not exist or be empty)."""
    report = progress or no_progress
    if not pairs:
        raise InputError("no pairs to review")
    cases = []
    with staged_folder(out) as stage:
        image_files = {}
        for number, pair in enumerate(pairs):
            check_cancel(cancel)
            report(number / len(pairs), pair.case_id)
            real = read_volume(pair.real)
            synthetic = read_volume(pair.synthetic)
            case = compare_case(real, synthetic, _optional(pair.labelmap), _optional(pair.mask),
                                _optional(pair.edited_labelmap), _optional(pair.changed), margin_mm, pair.case_id,
                                progress=scaled_progress(report, number / len(pairs), (number + 0.9) / len(pairs)),
                                cancel=cancel)
            if images:
                for nodule in case.nodules:
                    name = image_name(case.case_id, nodule.number)
                    save_image(stage / name, nodule_triplet(real, synthetic, nodule))
                    image_files[(case.case_id, nodule.number)] = name
            cases.append(case)
        write_report(stage, cases, image_files)
    report(1.0, "report written")
    return cases
