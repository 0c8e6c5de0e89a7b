"""The experiment's tables: ``splits.csv``, ``predictions.csv`` and ``results.json`` (with DeLong statistics).

* splits: ``arm, fraction, fold, run, case_id, nodule_id, patient_id, role`` (train | val | test);
* predictions: ``arm, fraction, fold, run, case_id, nodule_id, label, score`` (binary: probability of
  label 1; more classes: ``score_<class>`` columns instead);
* results: per arm and fraction (keys are strings) the folds' ``auc`` with its DeLong ``auc_ci95`` (``null``
  with a ``reason`` when the test set holds one class) and ``auc_mean``; ``comparisons`` holds DeLong's paired
  test of the two arms on each fold (``[]`` with one arm).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .delong import auc_ci, delong, paired_test
from .experiment import REAL, REAL_SYNTHETIC, Experiment, Unit

SPLIT_COLUMNS = ("arm", "fraction", "fold", "run", "case_id", "nodule_id", "patient_id", "role")
KEY_COLUMNS = ("arm", "fraction", "fold", "run", "case_id", "nodule_id", "label")


def _unit_cells(unit: Unit) -> dict:
    return {"arm": unit.arm, "fraction": unit.fraction, "fold": unit.fold, "run": unit.run}


def split_rows(experiment: Experiment) -> list[dict]:
    rows = []
    for unit in experiment.units:
        for role, nodules in (("train", unit.train), ("test", experiment.test)):
            rows += [{**_unit_cells(unit), "case_id": n.case_id, "nodule_id": n.nodule_id,
                      "patient_id": n.patient_id, "role": role} for n in nodules]
    return rows


def prediction_columns(classes: int) -> list[str]:
    return list(KEY_COLUMNS) + (["score"] if classes == 2 else [f"score_{c}" for c in range(classes)])


def prediction_rows(experiment: Experiment, results: dict[str, dict]) -> list[dict]:
    """Test-set scores of every unit; a score is written with all its digits (``repr``)."""
    rows = []
    for unit in experiment.units:
        for nodule, probabilities in zip(experiment.test, results[unit.name]["scores"]):
            scores = {"score": repr(float(probabilities[1]))} if len(probabilities) == 2 else \
                {f"score_{c}": repr(float(p)) for c, p in enumerate(probabilities)}
            rows.append({**_unit_cells(unit), "case_id": nodule.case_id, "nodule_id": nodule.nodule_id,
                         "label": nodule.label, **scores})
    return rows


def fold_auc(labels: Sequence[int], scores: Sequence[float]) -> dict:
    """``auc`` and DeLong ``auc_ci95`` of one fold's binary test scores; ``null`` with a reason for one class."""
    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        return {"auc": None, "auc_ci95": None, "reason": f"the test set holds only label {int(labels[0])}"}
    aucs, covariance = delong(labels, np.asarray(scores, dtype=np.float64))
    return {"auc": float(aucs[0]), "auc_ci95": auc_ci(float(aucs[0]), float(covariance[0, 0]))}


def _positive_scores(result: dict) -> np.ndarray:
    return np.asarray([p[1] for p in result["scores"]], dtype=np.float64)


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def results_document(experiment: Experiment, results: dict[str, dict]) -> dict:
    """The ``results.json`` document of a binary protocol."""
    labels = [n.label for n in experiment.test]
    arms: dict[str, dict] = {}
    for unit in experiment.units:
        fold = {"fold": unit.fold, "run": unit.run, "n_train": len(unit.train), "n_test": len(experiment.test),
                **fold_auc(labels, _positive_scores(results[unit.name]))}
        arms.setdefault(unit.arm, {}).setdefault(str(unit.fraction), {"folds": []})["folds"].append(fold)
    for fractions in arms.values():
        for entry in fractions.values():
            entry["auc_mean"] = _mean([f["auc"] for f in entry["folds"]])
    return {"protocol": experiment.protocol.name, "arms": arms,
            "comparisons": comparisons(experiment, results, labels), "settings": experiment.settings()}


def comparisons(experiment: Experiment, results: dict[str, dict], labels: Sequence[int]) -> list[dict]:
    """DeLong's paired test, ``real`` vs ``real+synthetic``, on every fraction, fold and run."""
    out = []
    by_arm = {(u.arm, u.fraction, u.fold, u.run): u for u in experiment.units}
    for (arm, fraction, fold, run), unit in by_arm.items():
        other = by_arm.get((REAL_SYNTHETIC, fraction, fold, run))
        if arm != REAL or other is None:
            continue
        entry = {"fraction": str(fraction), "fold": fold, "run": run, "arms": [REAL, REAL_SYNTHETIC],
                 "test": "DeLong paired, two-sided"}
        if len(set(labels)) < 2:
            out.append({**entry, "z": None, "p_value": None, "reason": "the test set holds one class"})
            continue
        test = paired_test(labels, _positive_scores(results[unit.name]), _positive_scores(results[other.name]))
        out.append({**entry, "auc": [test.pop("auc_a"), test.pop("auc_b")], **test})
    return out
