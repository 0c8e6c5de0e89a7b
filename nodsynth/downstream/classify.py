"""``nodsynth downstream classify`` end to end: read the tables, split by patient, train every unit, write
``splits.csv``, ``predictions.csv``, ``results.json`` and the report into the output folder.

Everything that can be refused (tables, labels, roles, fractions, synthetic count) is checked before any
output is written. Each output file is written atomically; finished units stay in ``DIR/units/``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..io.atomic import write_csv_atomic, write_text_atomic
from ..engines.base import SUBTYPES
from ..errors import InputError
from .cases import Nodule, read_nodules
from .networks import require_patch_fits
from .experiment import Experiment, plan_units, unit_results
from .outputs import SPLIT_COLUMNS, prediction_columns, prediction_rows, results_document, split_rows
from .patches import PatchSettings, load_patches
from .protocols import protocol as get_protocol
from .report import write_report
from .splits import draw_test_patients, parse_fractions, parse_retention, require_disjoint_roles
from .training import TrainSettings


@dataclass(frozen=True)
class ClassifyOptions:
    protocol: str
    real: Path
    synthetic: Optional[Path] = None
    test: Optional[Path] = None
    fractions: Optional[str] = None
    synthetic_ratio: float = 1.0
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    runs: int = 1
    seed: int = 0
    device: str = "cpu"
    widen_factor: float = 1.0
    patch_voxels: Optional[tuple[int, int, int]] = None
    max_synthetic: Optional[int] = None
    init: Optional[Path] = None
    patience: Optional[int] = None


def require_labels(nodules: Sequence[Nodule], classes: int, what: str) -> None:
    """Refuse a label outside ``0 .. classes - 1``."""
    bad = [n for n in nodules if n.label >= classes]
    if bad:
        raise InputError(f"{what}: case {bad[0].case_id} nodule {bad[0].nodule_id} has label {bad[0].label}, but the "
                         f"protocol has {classes} classes (labels 0..{classes - 1}); binarise malignancy scores first")


def with_subtype_labels(nodules: Sequence[Nodule], what: str) -> list[Nodule]:
    """The nodules labelled by their ``subtype`` column (solid 0, part-solid 1, ground-glass 2)."""
    bad = [n for n in nodules if n.subtype not in SUBTYPES]
    if bad:
        raise InputError(f"{what}: case {bad[0].case_id} nodule {bad[0].nodule_id} has subtype {bad[0].subtype!r}; "
                         f"this protocol needs one of {', '.join(SUBTYPES)}")
    return [replace(n, label=SUBTYPES.index(n.subtype)) for n in nodules]


def split_tables(real: Sequence[Nodule], synthetic: Sequence[Nodule], test: Optional[Sequence[Nodule]],
                 seed: int) -> tuple[list[Nodule], list[Nodule]]:
    """``(real training nodules, test nodules)``; no test patient in any other role (refused)."""
    if test is None:
        chosen = draw_test_patients(real, synthetic, seed)
        test = [n for n in real if n.patient_id in chosen]
        real = [n for n in real if n.patient_id not in chosen]
    require_disjoint_roles(real, synthetic, test)
    return list(real), list(test)


def build_experiment(options: ClassifyOptions) -> Experiment:
    """The checked experiment, units planned (refusals happen here, before anything is written)."""
    protocol = get_protocol(options.protocol)
    real = read_nodules(options.real, False, "real classification table")
    synthetic = read_nodules(options.synthetic, True, "synthetic classification table") if options.synthetic else []
    test = read_nodules(options.test, False, "test classification table") if options.test else None
    if protocol.target == "subtype":
        real, synthetic = with_subtype_labels(real, "--real"), with_subtype_labels(synthetic, "--synthetic")
        test = None if test is None else with_subtype_labels(test, "--test")
    for nodules, what in ((real, "--real"), (synthetic, "--synthetic"), (test or [], "--test")):
        require_labels(nodules, protocol.classes, what)
    if not options.synthetic_ratio > 0 or (options.max_synthetic is not None and options.max_synthetic < 0):
        raise InputError(f"--synthetic-ratio must be positive and --max-synthetic at least 0, got "
                         f"{options.synthetic_ratio} and {options.max_synthetic}")
    if options.init is not None and protocol.name != "hrldm-malignancy":
        raise InputError("--init (a subtype model's weights) is for --protocol hrldm-malignancy")
    train_real, test = split_tables(real, synthetic, test, options.seed)
    patch = PatchSettings(options.patch_voxels or protocol.patch_voxels_xyz, protocol.spacing_xyz_mm, protocol.clip_hu,
                          protocol.normalisation)
    require_patch_fits(protocol.network, patch.size_xyz)
    training = TrainSettings(options.epochs or protocol.epochs, options.batch_size or protocol.batch_size,
                             options.lr or protocol.learning_rate, options.device,
                             protocol.patience if options.patience is None else options.patience)
    fractions = parse_fractions(options.fractions or "100,50,20,10") if protocol.design == "fractions" else \
        parse_retention(options.fractions or "100")
    experiment = Experiment(protocol, train_real, synthetic, test, fractions, options.runs, options.seed,
                            options.synthetic_ratio, options.widen_factor, patch, training, options.max_synthetic,
                            options.init)
    experiment.units = plan_units(experiment)
    return experiment


def _require_output_folder(out_dir: Path, resume: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a folder")
    if not resume and out_dir.is_dir() and any(out_dir.iterdir()):
        raise InputError(f"--out {out_dir} is not empty; choose a new folder or pass --resume")


def classify(options: ClassifyOptions, out_dir: Path, resume: bool = False,
             progress: Optional[Callable[[str], Callable]] = None) -> dict:
    """Run the experiment into ``out_dir`` and return the ``results.json`` document."""
    from ..segment.checks import read_ct

    out_dir = Path(out_dir)
    _require_output_folder(out_dir, resume)
    experiment = build_experiment(options)
    needed = {n.key: n for unit in experiment.units for n in unit.train + unit.val}
    needed.update({n.key: n for n in experiment.test})
    patches = load_patches(list(needed.values()), experiment.patch, read_ct, progress("patches") if progress else None)
    results = unit_results(experiment, out_dir / "units", patches, resume, progress)
    document = results_document(experiment, results)
    write_csv_atomic(out_dir / "splits.csv", split_rows(experiment), SPLIT_COLUMNS)
    write_csv_atomic(out_dir / "predictions.csv", prediction_rows(experiment, results),
                     prediction_columns(experiment.protocol.classes))
    write_text_atomic(out_dir / "results.json", json.dumps(document, indent=1) + "\n")
    write_report(out_dir, experiment, results, document)
    return document
