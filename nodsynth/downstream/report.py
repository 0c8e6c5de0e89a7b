"""``report.html`` of a downstream experiment with its PNGs: ROC curves per arm (every fold of the largest
fraction), AUC vs training fraction (fold mean; bars: mean DeLong 95 % CI), the folds and comparisons, and
AUC per nodule-diameter bin (6-10, 10-20, 20-30 mm; test nodules with a ``diameter_mm``)."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..io.atomic import write_text_atomic
from ..overlay import save_image
from .experiment import Experiment
from .outputs import class_names, fold_auc
from .plots import Series, line_plot

DIAMETER_BINS_MM = ((6.0, 10.0), (10.0, 20.0), (20.0, 30.0))


def _roc_image(experiment: Experiment, results: dict):
    from sklearn.metrics import roc_curve

    labels = np.asarray([n.label for n in experiment.test])
    fraction = max(experiment.fractions)
    binary = experiment.protocol.classes == 2
    series = []
    for unit in experiment.units:
        if unit.fraction != fraction or (not binary and unit.run > 0):
            continue
        scores = np.asarray(results[unit.name]["scores"])
        for c, name in enumerate(class_names(experiment)):
            if (binary and c == 0) or len(set((labels == c).tolist())) < 2:
                continue
            fpr, tpr, _ = roc_curve(labels == c, scores[:, c])
            label = f"{unit.arm} fold {unit.fold} run {unit.run}" if binary else f"{unit.arm} {name} vs rest"
            series.append(Series(label, fpr, tpr))
    return line_plot(series, (0, 1), (0, 1), f"ROC, {fraction} % of the training patients",
                     "1 - specificity", "sensitivity", diagonal=True)


def _fraction_image(document: dict):
    series = []
    for arm, fractions in document["arms"].items():
        keys = sorted((k for k in fractions if fractions[k]["auc_mean"] is not None), key=int)
        cis = [[f["auc_ci95"] for f in fractions[k]["folds"] if f["auc_ci95"]] for k in keys]
        bars = all(cis)
        series.append(Series(arm, [int(k) for k in keys], [fractions[k]["auc_mean"] for k in keys],
                             [float(np.mean([c[0] for c in ci])) for ci in cis] if bars else None,
                             [float(np.mean([c[1] for c in ci])) for ci in cis] if bars else None))
    return line_plot(series, (0, 100), (0, 1), "AUC vs training fraction (mean of folds, mean DeLong 95 % CI)",
                     "training patients (%)", "AUC")


def bin_rows(experiment: Experiment, results: dict) -> list[dict]:
    """Fold-mean AUC per arm, fraction and diameter bin (``None`` where a bin holds one class)."""
    rows = []
    diameters = np.asarray([np.nan if n.diameter_mm is None else n.diameter_mm for n in experiment.test])
    labels = np.asarray([n.label for n in experiment.test])
    for low, high in DIAMETER_BINS_MM:
        inside = (diameters >= low) & (diameters < high)
        per_key: dict[tuple, list] = {}
        for unit in experiment.units:
            scores = np.asarray([p[1] for p in results[unit.name]["scores"]])[inside]
            auc = fold_auc(labels[inside], scores)["auc"] if inside.any() else None
            per_key.setdefault((unit.arm, unit.fraction), []).append(auc)
        for (arm, fraction), aucs in per_key.items():
            known = [a for a in aucs if a is not None]
            rows.append({"bin": f"{low:g}-{high:g} mm", "arm": arm, "fraction": fraction, "n_test": int(inside.sum()),
                         "auc_mean": float(np.mean(known)) if known else None})
    return rows


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(out_dir: Path, experiment: Experiment, results: dict, document: dict) -> Path:
    """Write ``roc.png``, ``auc_by_fraction.png`` and ``report.html`` into ``out_dir``."""
    save_image(out_dir / "roc.png", _roc_image(experiment, results))
    save_image(out_dir / "auc_by_fraction.png", _fraction_image(document))
    folds = [{"arm": arm, "fraction": k, "fold": f["fold"], "run": f["run"], "n_train": f["n_train"],
              "n_test": f["n_test"], "auc": f["auc"],
              "auc 95% CI": "-" if not f["auc_ci95"] else f"{f['auc_ci95'][0]:.3f}-{f['auc_ci95'][1]:.3f}"}
             for arm, fractions in document["arms"].items() for k, e in fractions.items() for f in e["folds"]]
    keys = ("fraction", "fold", "run", "z", "p_value") if experiment.protocol.classes == 2 else \
        ("fraction", "class", "bin", "metric", "u", "p_value")
    tests = [{k: c.get(k) for k in keys} for c in document["comparisons"]]
    bins = bin_rows(experiment, results) if experiment.protocol.classes == 2 else [
        {"arm": arm, "fraction": f, "class": name, "bin": b, **cell}
        for arm, fractions in document["per_bin_summary"].items() for f, classes in fractions.items()
        for name, cells in classes.items() for b, cell in cells.items()]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(document['protocol'])}</title>"
            "<style>body{font-family:sans-serif;max-width:1350px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>Downstream classification: {html.escape(document['protocol'])}</h1>"
            "<img src='roc.png' alt='ROC curves'><img src='auc_by_fraction.png' alt='AUC by training fraction'>"
            f"<h2>Folds (DeLong 95 % CI)</h2>{_table(folds)}<h2>Tests, real vs real+synthetic</h2>"
            f"{_table(tests)}<h2>AUC per nodule diameter bin</h2>{_table(bins)}</body></html>\n")
    return write_text_atomic(out_dir / "report.html", page)
