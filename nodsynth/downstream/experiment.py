"""One downstream classification experiment: arms x training fractions x folds x runs.

Every unit (arm, fraction, fold, run) trains a new network from scratch on its real training nodules (and, in
the ``real+synthetic`` arm, the run's synthetic set) and scores the one test set. Both arms of a fold start
from the same seed, so they differ by the synthetic data only. A finished unit is kept in ``DIR/units/`` (its
result, and its network as ``.pt``) so ``--resume`` skips it.

* design ``fractions`` (NodMAISI): fraction F = ``100 // F`` disjoint patient folds of the training patients;
  the synthetic set is ``synthetic_ratio`` x the full real training set.
* design ``top-up`` (HR-LDM): per run, ``validation_share`` of the real training patients are the validation
  set (early stopping on real data only); fraction F = F % of the remaining real patients retained (the
  retention ablation; 0 % = synthetic only); the synthetic set tops every minority class up to the majority
  class's count in the full real training set, at most ``max_synthetic`` nodules in all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..io.atomic import atomic_path, write_text_atomic
from ..io.tables import read_json
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
    val: tuple[Nodule, ...] = ()

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
    max_synthetic: Optional[int] = None
    init: Optional[Path] = None
    units: list[Unit] = field(default_factory=list)

    def settings(self) -> dict:
        """What makes a unit's result; a resumed folder must have been made with the same."""
        return {"protocol": self.protocol.name, "network": self.protocol.network, "widen_factor": self.widen,
                "seed": self.seed, "runs": self.runs, "fractions": list(self.fractions),
                "synthetic_ratio": self.synthetic_ratio, "max_synthetic": self.max_synthetic,
                "init": None if self.init is None else str(self.init), **self.patch.as_dict(), **self.training.as_dict(),
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
    plan = _fraction_units if experiment.protocol.design == "fractions" else _top_up_units
    units = [unit for run in range(experiment.runs) for unit in plan(experiment, run)]
    for unit in units:
        if len(unit.train) < 2:
            raise InputError(f"{unit.arm} at {unit.fraction} %, run {unit.run}: {len(unit.train)} training nodule(s) "
                             f"(no real data retained and too few synthetic nodules for the top-up); nothing to train on")
    return units


def _arms(experiment: Experiment, with_real: bool = True) -> list[str]:
    return ([REAL] if with_real else []) + ([REAL_SYNTHETIC] if experiment.synthetic else [])


def _fraction_units(experiment: Experiment, run: int) -> list[Unit]:
    count = synthetic_count(len(experiment.train_real), len(experiment.synthetic), experiment.synthetic_ratio) \
        if experiment.synthetic else 0
    pick = np.random.default_rng([experiment.seed, run, 0x5E]).choice(len(experiment.synthetic), count, replace=False)
    synthetic = tuple(experiment.synthetic[i] for i in sorted(pick))
    units = []
    for fraction in experiment.fractions:
        folds = fraction_folds((n.patient_id for n in experiment.train_real), fraction, experiment.seed, run)
        for fold, patients in enumerate(folds):
            members = set(patients)
            real = tuple(n for n in experiment.train_real if n.patient_id in members)
            units += [Unit(arm, fraction, fold, run, real + (synthetic if arm == REAL_SYNTHETIC else ()))
                      for arm in _arms(experiment)]
    return units


def top_up(real: Sequence[Nodule], synthetic: Sequence[Nodule], classes: int, cap: Optional[int],
           rng: np.random.Generator) -> tuple[Nodule, ...]:
    """Synthetic nodules that bring every class up to the majority class's count in ``real`` (as far as the
    synthetic table holds them), at most ``cap`` in all (each class's share cut in proportion)."""
    counts = np.bincount([n.label for n in real], minlength=classes)
    pools = [[n for n in synthetic if n.label == c] for c in range(classes)]
    need = np.minimum(counts.max() - counts, [len(p) for p in pools])
    if cap is not None and need.sum() > cap:
        need = np.floor(need * cap / need.sum()).astype(int)
    picked = [pools[c][i] for c in range(classes) for i in sorted(rng.choice(len(pools[c]), need[c], replace=False))]
    return tuple(picked)


def _top_up_units(experiment: Experiment, run: int) -> list[Unit]:
    rng = np.random.default_rng([experiment.seed, run, 0x70])
    patients = sorted({n.patient_id for n in experiment.train_real})
    order = [patients[i] for i in rng.permutation(len(patients))]
    n_val = int(round(experiment.protocol.validation_share * len(patients)))
    if n_val < 1 or n_val >= len(patients):
        raise InputError(f"{len(patients)} real training patient(s) cannot give a {experiment.protocol.validation_share:.0%} "
                         f"validation set and a training set")
    val = tuple(n for n in experiment.train_real if n.patient_id in set(order[:n_val]))
    pool = order[n_val:]
    full = [n for n in experiment.train_real if n.patient_id in set(pool)]
    synthetic = top_up(full, experiment.synthetic, experiment.protocol.classes, experiment.max_synthetic, rng) \
        if experiment.synthetic else ()
    units = []
    for fraction in experiment.fractions:
        kept = set(pool[:int(round(fraction / 100 * len(pool)))])
        real = tuple(n for n in full if n.patient_id in kept)
        units += [Unit(arm, fraction, 0, run, real + (synthetic if arm == REAL_SYNTHETIC else ()), val)
                  for arm in _arms(experiment, with_real=bool(real))]
    return units


def unit_seed(seed: int, unit: Unit) -> int:
    """The seed of a unit's network and batches; the same for both arms of a fold."""
    return int(np.random.SeedSequence([seed, unit.run, unit.fraction, unit.fold]).generate_state(1)[0])


def _arrays(nodules: Sequence[Nodule], patches: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([patches[n.key] for n in nodules]), np.asarray([n.label for n in nodules])


def run_unit(experiment: Experiment, unit: Unit, patches: dict, model_file: Path,
             progress: Optional[Callable] = None) -> dict:
    """Train the unit's network (saved to ``model_file``) and score the test set:
    ``{"unit": ..., "scores": [[p per class] per test nodule], ...}``."""
    import torch

    seed = unit_seed(experiment.seed, unit)
    torch.manual_seed(seed)
    model = NETWORKS[experiment.protocol.network](experiment.protocol.classes, experiment.widen)
    if experiment.init is not None:
        load_init(model, experiment.init)
    validation = _arrays(unit.val, patches) if unit.val else None
    log = train(model, *_arrays(unit.train, patches), experiment.training, seed, progress, validation)
    scores = predict(model, _arrays(experiment.test, patches)[0], experiment.training.device,
                     experiment.training.batch_size)
    with atomic_path(model_file) as tmp:
        torch.save(model.state_dict(), tmp)
    return {"unit": unit.name, "seed": seed, "n_train": len(unit.train), "n_val": len(unit.val),
            "n_synthetic": sum(n.synthetic for n in unit.train), **log, "scores": scores.tolist()}


def load_init(model, path: Path) -> None:
    """Initialise ``model`` from a saved network of the same family (e.g. a subtype model for malignancy): every
    weight whose name and shape match is loaded, the rest (the classifier layer) keeps its random start."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a state dict
        raise InputError(f"--init {path}: not a saved network ({exc.__class__.__name__})") from exc
    own = model.state_dict()
    matching = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    if len(matching) < len(own) // 2:
        raise InputError(f"--init {path}: only {len(matching)} of the network's {len(own)} weights match; "
                         f"give a network of this protocol's family and --widen-factor")
    model.load_state_dict(matching, strict=False)


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
            if len(results[unit.name].get("scores", [])) != len(experiment.test):
                raise InputError(f"{path}: scores for {len(results[unit.name].get('scores', []))} test nodules, "
                                 f"but the test set holds {len(experiment.test)}; delete it to rerun the unit")
            continue
        results[unit.name] = run_unit(experiment, unit, patches, units_dir / f"{unit.name}.pt",
                                      progress(unit.name) if progress else None)
        write_text_atomic(path, json.dumps(results[unit.name]) + "\n")
    return results
