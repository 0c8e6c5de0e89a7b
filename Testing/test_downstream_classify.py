"""``nodsynth downstream classify --protocol nodmaisi-malignancy`` on real LIDC VOIs (tiny network, 1 epoch):
the AUCs equal scikit-learn's on predictions.csv, the DeLong CIs and paired tests equal a direct O(mn)
implementation written here, no patient is in two roles, folds are disjoint, and a rerun is byte-identical."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from downstream_tables import tables, write_table
from nodsynth.cli.main import main

pytestmark = pytest.mark.shared_data
TINY = ["--fractions", "100,50", "--epochs", "1", "--widen-factor", "0.0625", "--patch-voxels", "16",
        "--synthetic-ratio", "0.5", "--seed", "3", "--threads", "1"]


def direct_delong(labels, scores_list):
    """AUCs and covariance from the definition: psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise, over every
    positive-negative pair; V10 = row means, V01 = column means (DeLong et al. 1988, eq. 4-5)."""
    labels = np.asarray(labels).astype(bool)
    v10, v01, aucs = [], [], []
    for scores in scores_list:
        x, y = np.asarray(scores)[labels], np.asarray(scores)[~labels]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = labels.sum(), (~labels).sum()
    s10 = np.atleast_2d(np.cov(np.array(v10))) if m > 1 else 0
    s01 = np.atleast_2d(np.cov(np.array(v01))) if n > 1 else 0
    return np.array(aucs), s10 / m + s01 / n


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("downstream")
    real, synthetic = tables(folder, 20)
    out = folder / "out"
    assert main(["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(real),
                 "--synthetic", str(synthetic), "--out", str(out), *TINY]) == 0
    return folder, real, synthetic, out


def _groups(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["arm"], r["fraction"], r["fold"], r["run"]), []).append(r)
    return groups


def check_folds(out: Path) -> list[tuple[list, list]]:
    """Assert every fold's auc equals sklearn's on predictions.csv and its CI the direct DeLong one; returns the
    folds' (labels, scores)."""
    results = json.loads((out / "results.json").read_text())
    predictions = _groups(read_csv(out / "predictions.csv"))
    checked = []
    for arm, fractions in results["arms"].items():
        for fraction, entry in fractions.items():
            for fold in entry["folds"]:
                rows = predictions[(arm, fraction, str(fold["fold"]), str(fold["run"]))]
                labels = [int(r["label"]) for r in rows]
                scores = [float(r["score"]) for r in rows]
                assert fold["n_test"] == len(rows)
                assert fold["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
                auc, cov = direct_delong(labels, [scores])
                half = norm.ppf(0.975) * np.sqrt(cov[0, 0])
                assert fold["auc_ci95"] == pytest.approx([max(auc[0] - half, 0), min(auc[0] + half, 1)], abs=1e-12)
                checked.append((labels, scores))
    return checked


def check_comparisons(out: Path) -> int:
    """Assert every paired DeLong test equals the direct computation; returns how many."""
    results = json.loads((out / "results.json").read_text())
    predictions = _groups(read_csv(out / "predictions.csv"))
    for c in results["comparisons"]:
        a, b = (predictions[(arm, c["fraction"], str(c["fold"]), str(c["run"]))] for arm in c["arms"])
        assert [(r["case_id"], r["label"]) for r in a] == [(r["case_id"], r["label"]) for r in b]
        aucs, cov = direct_delong([int(r["label"]) for r in a], [[float(r["score"]) for r in s] for s in (a, b)])
        z = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
        assert c["auc"] == pytest.approx(list(aucs), abs=1e-12)
        assert c["z"] == pytest.approx(z, rel=1e-9)
        assert c["p_value"] == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    return len(results["comparisons"])


def check_roles(out: Path, synthetic: Path) -> dict:
    """Assert no test patient is a training patient or a synthetic nodule's patient or donor, in every unit, and
    one test set throughout; returns each unit's real training patients."""
    splits = _groups(read_csv(out / "splits.csv"))
    synthetic_rows = read_csv(synthetic)
    donors = {r["patient_id"] for r in synthetic_rows} | {r["donor_patient_id"] for r in synthetic_rows}
    synthetic_cases = {r["case_id"] for r in synthetic_rows}
    test_sets, real_train = set(), {}
    for (arm, fraction, fold, run), rows in splits.items():
        test = {r["patient_id"] for r in rows if r["role"] == "test"}
        train = {r["patient_id"] for r in rows if r["role"] == "train"}
        assert test and train and not test & train and not test & donors
        test_sets.add(frozenset(test))
        real_train[(arm, fraction, fold)] = {r["patient_id"] for r in rows
                                             if r["role"] == "train" and r["case_id"] not in synthetic_cases}
        assert (arm == "real+synthetic") == any(r["case_id"] in synthetic_cases for r in rows)
    assert len(test_sets) == 1
    return {"test": next(iter(test_sets)), "real_train": real_train}


def test_every_fold_auc_equals_sklearn_and_delong_ci_equals_direct(experiment):
    out = experiment[3]
    assert len(check_folds(out)) == 6  # 2 arms x (1 + 2 folds)
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {"real", "real+synthetic"} and set(results["arms"]["real"]) == {"100", "50"}


def test_paired_delong_equals_direct(experiment):
    assert check_comparisons(experiment[3]) == 3


def test_no_patient_in_two_roles_and_fraction_folds_are_disjoint(experiment):
    _, real, synthetic, out = experiment
    roles = check_roles(out, synthetic)
    everyone = {r["patient_id"] for r in read_csv(real)}
    for arm in ("real", "real+synthetic"):
        halves = roles["real_train"][(arm, "50", "0")], roles["real_train"][(arm, "50", "1")]
        assert not halves[0] & halves[1]
        assert halves[0] | halves[1] == roles["real_train"][(arm, "100", "0")] == everyone - roles["test"]


def test_same_seed_gives_byte_identical_predictions(experiment):
    folder, real, synthetic, out = experiment
    again = folder / "again"
    assert main(["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(real),
                 "--synthetic", str(synthetic), "--out", str(again), *TINY]) == 0
    assert (again / "predictions.csv").read_bytes() == (out / "predictions.csv").read_bytes()
    assert (out / "report.html").is_file() and (out / "roc.png").stat().st_size > 1000


def test_test_patient_among_donors_is_refused_and_nothing_written(experiment, capsys):
    folder, real, synthetic, _ = experiment
    synthetic_rows = read_csv(synthetic)
    test = write_table(folder / "bad_test.csv", [r for r in read_csv(real)
                                                 if r["patient_id"] == synthetic_rows[0]["donor_patient_id"]])
    others = write_table(folder / "others.csv", [r for r in read_csv(real) if r["patient_id"] != synthetic_rows[0]["donor_patient_id"]])
    out = folder / "refused"
    assert main(["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(others),
                 "--synthetic", str(synthetic), "--test", str(test), "--out", str(out), *TINY]) == 2
    assert "test patient(s) are also synthetic-nodule (CT or donor) patients" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("change, message", [
    ({"label": "4"}, "has label 4, but the protocol has 2 classes"),
    ({"ct": "missing.nii.gz"}, "ct file not found"),
    ({"coordX": "nan"}, "coordX must be a number"),
])
def test_bad_table_is_refused(experiment, capsys, change, message):
    folder, real, _, _ = experiment
    rows = read_csv(real)
    bad = write_table(folder / "bad.csv", [{**rows[0], **change}] + rows[1:])
    out = folder / "refused_table"
    assert main(["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(bad),
                 "--out", str(out), *TINY]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_resume_reuses_finished_units_and_refuses_other_settings(experiment, capsys):
    import shutil

    folder, real, synthetic, out = experiment
    resumed = folder / "resumed"
    shutil.copytree(out / "units", resumed / "units")
    command = ["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(real),
               "--synthetic", str(synthetic), "--out", str(resumed), *TINY]
    assert main(command) == 2
    assert "is not empty; choose a new folder or pass --resume" in capsys.readouterr().err
    for unit in (resumed / "units").glob("*.json"):
        if unit.name != "settings.json":
            saved = json.loads(unit.read_text())
            saved["scores"][0] = [0.25, 0.75]  # marks the reuse
            unit.write_text(json.dumps(saved))
            break
    assert main(command + ["--resume"]) == 0
    predictions = read_csv(resumed / "predictions.csv")
    assert sum(r["score"] == "0.75" for r in predictions) >= 1
    assert main(command + ["--resume", "--epochs", "2"]) == 2
    assert "made with other settings" in capsys.readouterr().err
