"""The experiment's tables: ``splits.csv``, ``predictions.csv`` and ``results.json`` (with DeLong statistics).

* splits: ``arm, fraction, fold, run, case_id, nodule_id, patient_id, role`` (train | val | test);
* predictions: ``arm, fraction, fold, run, case_id, nodule_id, label, score`` (binary: probability of
  label 1; more classes: ``score_<class>`` columns instead);
* results: per arm and fraction (keys are strings) the folds' ``auc`` with its DeLong ``auc_ci95`` (``null``
  with a ``reason`` when the test set holds one class) and ``auc_mean``; ``comparisons`` holds DeLong's paired
  test of the two arms on each fold (``[]`` with one arm). A multi-class protocol (``hrldm-subtype``) gives
  per fold the macro one-vs-rest ``auc`` (no DeLong CI: ``auc_ci95`` null) and ``per_bin`` AUROC / AUPRC per
  class x size bin; ``per_bin_summary`` their mean and SD over runs per arm and fraction, and ``comparisons``
  the two-sided Mann-Whitney U test between the arms over runs per fraction, class, bin and metric.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..engines.base import SUBTYPES
from .delong import auc_ci, delong, paired_test
from .experiment import REAL, REAL_SYNTHETIC, Experiment, Unit
from .metrics import MIN_RUNS, one_vs_rest, run_comparison

SPLIT_COLUMNS = ("arm", "fraction", "fold", "run", "case_id", "nodule_id", "patient_id", "role")
KEY_COLUMNS = ("arm", "fraction", "fold", "run", "case_id", "nodule_id", "label")


def _unit_cells(unit: Unit) -> dict:
    return {"arm": unit.arm, "fraction": unit.fraction, "fold": unit.fold, "run": unit.run}


def split_rows(experiment: Experiment) -> list[dict]:
    rows = []
    for unit in experiment.units:
        for role, nodules in (("train", unit.train), ("val", unit.val), ("test", experiment.test)):
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


def class_names(experiment: Experiment) -> list[str]:
    return list(SUBTYPES) if experiment.protocol.target == "subtype" else [str(c) for c in range(experiment.protocol.classes)]


def _multi_class_fold(experiment: Experiment, result: dict) -> dict:
    labels = [n.label for n in experiment.test]
    scores = np.asarray(result["scores"])
    per_class = [fold_auc((np.asarray(labels) == c).astype(int), scores[:, c])["auc"]
                 for c in range(experiment.protocol.classes)]
    return {"auc": _mean(per_class), "auc_ci95": None,
            "reason": "auc is the macro one-vs-rest AUROC; DeLong CIs are for binary protocols (see per_bin)",
            "per_bin": one_vs_rest(labels, scores, [n.diameter_mm for n in experiment.test], class_names(experiment))}


def results_document(experiment: Experiment, results: dict[str, dict]) -> dict:
    """The ``results.json`` document (see the module docstring)."""
    labels = [n.label for n in experiment.test]
    binary = experiment.protocol.classes == 2
    arms: dict[str, dict] = {}
    for unit in experiment.units:
        result = results[unit.name]
        fold = {"fold": unit.fold, "run": unit.run, "n_train": len(unit.train), "n_test": len(experiment.test),
                **({"n_val": len(unit.val), "best_epoch": result.get("best_epoch")} if unit.val else {}),
                **(fold_auc(labels, _positive_scores(result)) if binary else _multi_class_fold(experiment, result))}
        arms.setdefault(unit.arm, {}).setdefault(str(unit.fraction), {"folds": []})["folds"].append(fold)
    for fractions in arms.values():
        for entry in fractions.values():
            entry["auc_mean"] = _mean([f["auc"] for f in entry["folds"]])
    document = {"protocol": experiment.protocol.name, "arms": arms}
    if binary:
        document["comparisons"] = comparisons(experiment, results, labels)
    else:
        document["per_bin_summary"] = per_bin_summary(arms)
        document["comparisons"] = run_comparisons(arms)
    return {**document, "settings": experiment.settings()}


def _per_bin_values(folds: Sequence[dict], name: str, size_bin: str, metric: str) -> list[Optional[float]]:
    return [f["per_bin"][name][size_bin][metric] for f in folds]


def per_bin_summary(arms: dict) -> dict:
    """Mean and SD (ddof 1; null under two values) over runs of AUROC and AUPRC per arm, fraction, class, bin."""
    out: dict = {}
    for arm, fractions in arms.items():
        for fraction, entry in fractions.items():
            for name, bins in entry["folds"][0]["per_bin"].items():
                for size_bin in bins:
                    cell = {"runs": len(entry["folds"])}
                    for metric in ("auroc", "auprc"):
                        known = [v for v in _per_bin_values(entry["folds"], name, size_bin, metric) if v is not None]
                        cell[f"{metric}_mean"] = float(np.mean(known)) if known else None
                        cell[f"{metric}_sd"] = float(np.std(known, ddof=1)) if len(known) > 1 else None
                    out.setdefault(arm, {}).setdefault(fraction, {}).setdefault(name, {})[size_bin] = cell
    return out


def run_comparisons(arms: dict) -> list[dict]:
    """Two-sided Mann-Whitney U between the arms' per-run AUROC / AUPRC per fraction, class and bin
    (``null`` with the reason under ``MIN_RUNS`` runs)."""
    out = []
    if REAL not in arms or REAL_SYNTHETIC not in arms:
        return out
    for fraction, entry in arms[REAL].items():
        other = arms[REAL_SYNTHETIC].get(fraction)
        if other is None:
            continue
        for name, bins in entry["folds"][0]["per_bin"].items():
            for size_bin in bins:
                for metric in ("auroc", "auprc"):
                    out.append({"fraction": fraction, "class": name, "bin": size_bin, "metric": metric,
                                "arms": [REAL, REAL_SYNTHETIC], "test": f"Mann-Whitney U, two-sided, >= {MIN_RUNS} runs",
                                **run_comparison(_per_bin_values(entry["folds"], name, size_bin, metric),
                                                 _per_bin_values(other["folds"], name, size_bin, metric))})
    return out


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
