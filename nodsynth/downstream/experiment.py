"""One downstream classification experiment: arms x training fractions x disjoint folds x runs.

Every unit (arm, fraction, fold, run) trains a new network from scratch on its fold's real training nodules
(and, in the ``real+synthetic`` arm, the run's synthetic set) and scores the one test set. Both arms of a
fold start from the same seed, so they differ by the synthetic data only. A finished unit is kept in
``DIR/units/`` so ``--resume`` skips it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..atomic import write_text_atomic
from ..casetables import read_json
from ..errors import InputError
from .cases import Nodule
from .networks import NETWORKS
from .patches import PatchSettings
from .protocols import Protocol
from .splits import fraction_folds
from .training import TrainSettings, predict, train

REAL, REAL_SYNTHETIC = "real", "real+synthetic"


@dataclass(frozen=True)
class Unit:
    arm: str
    fraction: int
    fold: int
    run: int
    train: tuple[Nodule, ...]

    @property
    def name(self) -> str:
        return f"{self.arm.replace('+', '_')}-f{self.fraction}-fold{self.fold}-run{self.run}"


@dataclass
class Experiment:
    protocol: Protocol
    train_real: Sequence[Nodule]
    synthetic: Sequence[Nodule]
    test: Sequence[Nodule]
    fractions: Sequence[int]
    runs: int
    seed: int
    synthetic_ratio: float
    widen: float
    patch: PatchSettings
    training: TrainSettings
    units: list[Unit] = field(default_factory=list)

    def settings(self) -> dict:
        """What makes a unit's result; a resumed folder must have been made with the same."""
        return {"protocol": self.protocol.name, "network": self.protocol.network, "widen_factor": self.widen,
                "seed": self.seed, "runs": self.runs, "fractions": list(self.fractions),
                "synthetic_ratio": self.synthetic_ratio, **self.patch.as_dict(), **self.training.as_dict(),
                "n_real_train": len(self.train_real), "n_synthetic_available": len(self.synthetic),
                "n_test": len(self.test)}


def synthetic_count(n_real_train: int, available: int, ratio: float) -> int:
    """Synthetic nodules added per unit: ``ratio`` x the full real training set; refused when too few exist."""
    wanted = int(round(ratio * n_real_train))
    if wanted > available:
        raise InputError(f"--synthetic-ratio {ratio:g} asks for {wanted} synthetic nodules ({ratio:g} x {n_real_train} "
                         f"real training nodules) but the synthetic table holds {available}; lower --synthetic-ratio")
    return wanted


def plan_units(experiment: Experiment) -> list[Unit]:
    """Every unit in a fixed order: run, fraction, fold, arm."""
    arms = [REAL] + ([REAL_SYNTHETIC] if experiment.synthetic else [])
    count = synthetic_count(len(experiment.train_real), len(experiment.synthetic), experiment.synthetic_ratio) \
        if experiment.synthetic else 0
    units = []
    for run in range(experiment.runs):
        pick = np.random.default_rng([experiment.seed, run, 0x5E]).choice(len(experiment.synthetic), count, replace=False)
        synthetic = tuple(experiment.synthetic[i] for i in sorted(pick))
        for fraction in experiment.fractions:
            folds = fraction_folds((n.patient_id for n in experiment.train_real), fraction, experiment.seed, run)
            for fold, patients in enumerate(folds):
                members = set(patients)
                real = tuple(n for n in experiment.train_real if n.patient_id in members)
                for arm in arms:
                    units.append(Unit(arm, fraction, fold, run, real + (synthetic if arm == REAL_SYNTHETIC else ())))
    return units


def unit_seed(seed: int, unit: Unit) -> int:
    """The seed of a unit's network and batches; the same for both arms of a fold."""
    return int(np.random.SeedSequence([seed, unit.run, unit.fraction, unit.fold]).generate_state(1)[0])


def run_unit(experiment: Experiment, unit: Unit, patches: dict, progress: Optional[Callable] = None) -> dict:
    """Train the unit's network and score the test set: ``{"unit": ..., "scores": [[p per class] per test nodule]}``."""
    seed = unit_seed(experiment.seed, unit)
    import torch

    torch.manual_seed(seed)
    model = NETWORKS[experiment.protocol.network](experiment.protocol.classes, experiment.widen)
    x = np.stack([patches[n.key] for n in unit.train])
    y = np.asarray([n.label for n in unit.train])
    train(model, x, y, experiment.training, seed, progress)
    test_x = np.stack([patches[n.key] for n in experiment.test])
    scores = predict(model, test_x, experiment.training.device, experiment.training.batch_size)
    return {"unit": unit.name, "seed": seed, "n_train": len(unit.train), "scores": scores.tolist()}


def unit_results(experiment: Experiment, units_dir: Path, patches: dict, resume: bool,
                 progress: Optional[Callable[[str], Callable]] = None) -> dict[str, dict]:
    """Every unit's result by name, run now or (with ``resume``) read from ``units_dir``; each written as it ends."""
    settings_file = units_dir / "settings.json"
    settings = experiment.settings()
    if resume and settings_file.is_file() and read_json(settings_file, "resume settings") != json.loads(json.dumps(settings)):
        raise InputError(f"{settings_file}: the folder was made with other settings; resume with the same options")
    write_text_atomic(settings_file, json.dumps(settings, indent=1) + "\n")
    results = {}
    for unit in experiment.units:
        path = units_dir / f"{unit.name}.json"
        if resume and path.is_file():
            results[unit.name] = read_json(path, "unit result")
            continue
        results[unit.name] = run_unit(experiment, unit, patches, progress(unit.name) if progress else None)
        write_text_atomic(path, json.dumps(results[unit.name]) + "\n")
    return results
