"""``nodsynth downstream classify --protocol hrldm-subtype`` / ``hrldm-malignancy`` on real LIDC VOIs (tiny
DenseNet-121, 2 epochs, 3 runs): per-bin AUROC / AUPRC equal scikit-learn's on predictions.csv, the Mann-Whitney
p-values equal scipy's, the top-up adds minority subtypes only and at most --max-synthetic, validation is real
data only, retention 0 % trains on synthetic nodules only; --init loads a subtype model."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.metrics import average_precision_score, roc_auc_score

from downstream_tables import SUBTYPE_OF_TEXTURE, lidc_rows, real_row, synthetic_rows, write_table
from nodsynth.cli.main import main
from nodsynth.downstream.metrics import mann_whitney, run_comparison
from nodsynth.downstream.networks import densenet121
from nodsynth.engines.base import SUBTYPES
from test_downstream_classify import _groups, read_csv

pytestmark = pytest.mark.shared_data
TINY = ["--epochs", "2", "--batch-size", "8", "--widen-factor", "0.0625", "--patch-voxels", "32", "--seed", "1",
        "--threads", "1"]
BINS = {"6-10": (6, 10), "10-20": (10, 20), "20-30": (20, 30)}


def _patients_with(rows, subtype, count, skip):
    found = []
    for r in rows:
        if SUBTYPE_OF_TEXTURE[r["Texture"]] == subtype and r["patient_id"] not in skip and r["patient_id"] not in found:
            found.append(r["patient_id"])
    return found[:count]


@pytest.fixture(scope="module")
def subtype_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hrldm")
    rows = lidc_rows()
    chosen = {"test": [], "train": []}
    for role, counts in (("test", (3, 3, 3)), ("train", (6, 3, 4))):
        for subtype, count in zip(SUBTYPES, counts):
            chosen[role] += _patients_with(rows, subtype, count, chosen["test"] + chosen["train"])
    tables = {role: [r for r in rows if r["patient_id"] in patients] for role, patients in chosen.items()}
    real = write_table(folder / "real.csv", [real_row(folder, r) for r in tables["train"]])
    test = write_table(folder / "test.csv", [real_row(folder, r) for r in tables["test"]])
    synthetic = write_table(folder / "synthetic.csv", synthetic_rows(folder, tables["train"][:12], tables["train"], 0,
                                                                     ["part-solid", "ground-glass"]))
    out = folder / "out"
    assert main(["downstream", "classify", "--protocol", "hrldm-subtype", "--real", str(real), "--test", str(test),
                 "--synthetic", str(synthetic), "--out", str(out), "--runs", "3", "--max-synthetic", "6",
                 "--fractions", "100,0", *TINY]) == 0
    return folder, real, test, synthetic, out


def test_per_bin_auroc_auprc_equal_sklearn(subtype_run):
    _, _, test, _, out = subtype_run
    results = json.loads((out / "results.json").read_text())
    predictions = _groups(read_csv(out / "predictions.csv"))
    diameters = {(r["case_id"], r["nodule_id"]): float(r["diameter_mm"]) for r in read_csv(test)}
    checked = 0
    for arm, fractions in results["arms"].items():
        for fraction, entry in fractions.items():
            for fold in entry["folds"]:
                rows = predictions[(arm, fraction, str(fold["fold"]), str(fold["run"]))]
                labels = np.array([int(r["label"]) for r in rows])
                d = np.array([diameters[(r["case_id"], r["nodule_id"])] for r in rows])
                for c, name in enumerate(SUBTYPES):
                    scores = np.array([float(r[f"score_{c}"]) for r in rows])
                    for size_bin, (low, high) in BINS.items():
                        inside = (d >= low) & (d < high)
                        cell = fold["per_bin"][name][size_bin]
                        y = labels[inside] == c
                        assert cell["n"] == inside.sum() and cell["n_positive"] == y.sum()
                        if 0 < y.sum() < len(y):
                            assert cell["auroc"] == pytest.approx(roc_auc_score(y, scores[inside]), abs=1e-12)
                            assert cell["auprc"] == pytest.approx(average_precision_score(y, scores[inside]), abs=1e-12)
                            checked += 1
                        else:
                            assert cell["auroc"] is None and cell["reason"]
    assert checked >= 9 * 3


def test_mann_whitney_between_arms_equals_scipy(subtype_run):
    _, _, _, _, out = subtype_run
    results = json.loads((out / "results.json").read_text())
    tested = 0
    for c in results["comparisons"]:
        values = [[f["per_bin"][c["class"]][c["bin"]][c["metric"]] for f in results["arms"][arm][c["fraction"]]["folds"]]
                  for arm in c["arms"]]
        if any(v is None for v in values[0] + values[1]):
            assert c["p_value"] is None and "needs >= 3 runs" in c["reason"]
            continue
        expected = mannwhitneyu(values[0], values[1], alternative="two-sided")
        assert c["u"] == pytest.approx(expected.statistic) and c["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
        tested += 1
    assert tested >= 3
    assert {c["fraction"] for c in results["comparisons"]} == {"100"}  # 0 % has no real arm


def test_top_up_validation_and_retention(subtype_run):
    _, real, _, synthetic, out = subtype_run
    synthetic_cases = {r["case_id"]: r for r in read_csv(synthetic)}
    real_patients = {r["patient_id"] for r in read_csv(real)}
    for (arm, fraction, fold, run), rows in _groups(read_csv(out / "splits.csv")).items():
        train = [r for r in rows if r["role"] == "train"]
        val = {r["patient_id"] for r in rows if r["role"] == "val"}
        added = [synthetic_cases[r["case_id"]] for r in train if r["case_id"] in synthetic_cases]
        assert val and val <= real_patients and not val & {r["patient_id"] for r in train if r["case_id"] not in synthetic_cases}
        assert not any(r["case_id"] in synthetic_cases for r in rows if r["role"] == "val")
        if arm == "real":
            assert not added
        else:
            assert 0 < len(added) <= 6 and {r["subtype"] for r in added} <= {"part-solid", "ground-glass"}
        if fraction == "0":
            assert arm == "real+synthetic" and len(added) == len(train)


def test_malignancy_from_a_subtype_model(subtype_run, tmp_path):
    folder, real, test, _, out = subtype_run
    model = next((out / "units").glob("real-f100-fold0-run0.pt"))
    binary = [{**r, "label": r["label"]} for r in read_csv(test)]
    assert main(["downstream", "classify", "--protocol", "hrldm-malignancy", "--real", str(real),
                 "--test", str(write_table(folder / "test_binary.csv", binary)), "--init", str(model),
                 "--out", str(tmp_path / "malignancy"), *TINY, "--epochs", "1"]) == 0
    results = json.loads((tmp_path / "malignancy" / "results.json").read_text())
    assert results["settings"]["init"] == str(model) and results["arms"]["real"]["100"]["folds"][0]["n_val"] > 0


def test_init_loads_every_weight_but_the_classifier(tmp_path):
    import torch

    from nodsynth.downstream.experiment import load_init

    subtype = densenet121(3, 0.0625)
    torch.save(subtype.state_dict(), tmp_path / "subtype.pt")
    torch.manual_seed(5)
    binary = densenet121(2, 0.0625)
    load_init(binary, tmp_path / "subtype.pt")
    mine, theirs = binary.state_dict(), subtype.state_dict()
    differ = [k for k in mine if mine[k].shape != theirs[k].shape or not torch.equal(mine[k], theirs[k])]
    assert differ == ["class_layers.out.weight", "class_layers.out.bias"]


def test_mann_whitney_needs_three_runs_and_matches_scipy_with_ties():
    assert "needs >= 3 runs" in run_comparison([0.5, 0.6], [0.7, 0.8, 0.9])["reason"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 6, rng.integers(3, 12)) / 5, rng.integers(0, 60, rng.integers(3, 12)) / 50
        expected = mannwhitneyu(a, b, alternative="two-sided")
        got = mann_whitney(a, b)
        assert got["u"] == pytest.approx(expected.statistic) and got["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
