"""Benchmark ``nodsynth downstream classify --protocol nodmaisi-malignancy`` on the real LIDC VOIs (CPU).

    python Testing/benchmarks/bench_downstream.py lidc --work /tmp/ds --widen-factor 0.0625 --epochs 2 --json out.json
    python Testing/benchmarks/bench_downstream.py fold --work /tmp/ds --json fold.json

``lidc``: all LIDC nodules of malignancy 1-2 (label 0) or 4-5 (label 1), 3 dropped, and synthetic nodules made
model-free from the nodules of 70 % of the patients (``Testing/downstream_tables.py``); the default fractions
100,50,20,10, arms real and real+synthetic, run twice with the same seed. Checked: every fold's AUC equals
scikit-learn's on predictions.csv, the DeLong CI and the paired tests equal the direct O(mn) definition, no
patient in two roles, the rerun's predictions.csv is byte-identical. Reference: the direct DeLong's time vs the
fast one's on the same folds, and the rerun's wall time vs the first run's.

``hrldm``: ``hrldm-subtype`` on the same tables (small width, ``--max-synthetic 20``, 3 runs), checked with the
tests' own checks: per-bin AUROC / AUPRC equal scikit-learn's, Mann-Whitney p-values equal scipy's; wall time.

``fold``: one fold at ``--widen-factor 1`` (the paper's ResNet-50) on 100 real patches of the protocol's size,
one epoch plus scoring, in a child process (its peak memory); the same at the small width as the reference;
and the projected time of the full protocol (50 epochs, every unit of the ``lidc`` experiment) from the measured
seconds per patch.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))


def _lidc_tables(work: Path):
    from downstream_tables import lidc_rows, tables

    rows = lidc_rows()
    patients = len({r["patient_id"] for r in rows})
    if not (work / "real.csv").is_file():
        tables(work, patients, synthetic_from=0.7)
    return work / "real.csv", work / "synthetic.csv", len(rows), patients


def _checks(out: Path, synthetic: Path) -> dict:
    """The must-show checks (the tests' own) on one output folder; times the fast vs the direct DeLong."""
    from nodsynth.downstream.delong import delong
    from test_downstream_classify import check_comparisons, check_folds, check_roles, direct_delong

    folds = check_folds(out)
    comparisons = check_comparisons(out)
    check_roles(out, synthetic)
    start = time.perf_counter()
    for labels, scores in folds:
        direct_delong(labels, [scores])
    direct_s = time.perf_counter() - start
    start = time.perf_counter()
    for labels, scores in folds:
        delong(np.asarray(labels), np.asarray(scores))
    fast_s = time.perf_counter() - start
    results = json.loads((out / "results.json").read_text())
    return {"folds_checked": len(folds), "comparisons_checked": comparisons,
            "delong_fast_s": fast_s, "delong_direct_s": direct_s,
            "auc_mean": {arm: {k: v["auc_mean"] for k, v in f.items()} for arm, f in results["arms"].items()},
            "comparisons_p": [c["p_value"] for c in results["comparisons"]]}


def lidc(args) -> dict:
    from nodsynth.cli.main import main

    work = Path(args.work)
    real, synthetic, nodules, patients = _lidc_tables(work)
    common = ["downstream", "classify", "--protocol", "nodmaisi-malignancy", "--real", str(real), "--synthetic",
              str(synthetic), "--widen-factor", str(args.widen_factor), "--epochs", str(args.epochs),
              "--patch-voxels", str(args.patch_voxels), "--synthetic-ratio", str(args.synthetic_ratio),
              "--threads", str(args.threads), "--seed", "0"]
    seconds = []
    for name in ("run1", "run2"):
        start = time.perf_counter()
        assert main(common + ["--out", str(work / name)]) == 0
        seconds.append(time.perf_counter() - start)
    identical = (work / "run1" / "predictions.csv").read_bytes() == (work / "run2" / "predictions.csv").read_bytes()
    report = {"nodules": nodules, "patients": patients, "command": "nodsynth " + " ".join(common) + " --out DIR",
              "wall_s": seconds, "rerun_vs_first": seconds[1] / seconds[0], "predictions_byte_identical": identical,
              **_checks(work / "run1", synthetic)}
    report["delong_direct_vs_fast"] = report["delong_direct_s"] / max(report["delong_fast_s"], 1e-12)
    assert identical
    return report


def hrldm(args) -> dict:
    from nodsynth.cli.main import main
    from test_downstream_hrldm import test_mann_whitney_between_arms_equals_scipy, test_per_bin_auroc_auprc_equal_sklearn

    work = Path(args.work)
    real, synthetic, _, _ = _lidc_tables(work)
    command = ["downstream", "classify", "--protocol", "hrldm-subtype", "--real", str(real), "--synthetic", str(synthetic),
               "--widen-factor", str(args.widen_factor), "--epochs", str(args.epochs), "--batch-size", "8",
               "--patch-voxels", "32", "--runs", "3", "--max-synthetic", "20", "--threads", str(args.threads)]
    out = work / "hrldm"
    start = time.perf_counter()
    assert main(command + ["--out", str(out)]) == 0
    seconds = time.perf_counter() - start
    run = (work, real, real, synthetic, out)  # the real table holds every test nodule's diameter
    test_per_bin_auroc_auprc_equal_sklearn(run)
    test_mann_whitney_between_arms_equals_scipy(run)
    results = json.loads((out / "results.json").read_text())
    return {"command": "nodsynth " + " ".join(command) + " --out DIR", "wall_s": seconds,
            "per_bin_checked_vs_sklearn": True, "mann_whitney_checked_vs_scipy": True,
            "per_bin_summary": results["per_bin_summary"],
            "comparisons": [{k: c.get(k) for k in ("class", "bin", "metric", "u", "p_value", "reason")}
                            for c in results["comparisons"]]}


CHILD = """
import json, resource, sys, time
import numpy as np, torch
from nodsynth.downstream.cases import read_nodules
from nodsynth.downstream.networks import resnet50
from nodsynth.downstream.patches import PatchSettings, load_patches
from nodsynth.downstream.protocols import PROTOCOLS
from nodsynth.downstream.training import TrainSettings, predict, train
from nodsynth.segment.checks import read_ct
torch.set_num_threads(int(sys.argv[3]))
p = PROTOCOLS["nodmaisi-malignancy"]
nodules = read_nodules(sys.argv[1], False, "real")[:100]
patches = load_patches(nodules, PatchSettings(p.patch_voxels_xyz, p.spacing_xyz_mm, p.clip_hu), read_ct)
x = np.stack([patches[n.key] for n in nodules]); y = np.asarray([n.label for n in nodules])
torch.manual_seed(0); model = resnet50(2, float(sys.argv[2]))
t = time.perf_counter(); train(model, x, y, TrainSettings(1, p.batch_size, p.learning_rate), 0); train_s = time.perf_counter() - t
t = time.perf_counter(); predict(model, x, "cpu", p.batch_size); predict_s = time.perf_counter() - t
print(json.dumps({"widen_factor": float(sys.argv[2]), "patches": len(x), "patch_voxels": list(x.shape[1:]),
                  "train_epoch_s": train_s, "predict_s": predict_s,
                  "parameters": sum(q.numel() for q in model.parameters()),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(real: Path, widen: float, threads: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(real), str(widen), str(threads)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fold(args) -> dict:
    from nodsynth.downstream.classify import ClassifyOptions, build_experiment

    work = Path(args.work)
    real, synthetic, _, _ = _lidc_tables(work)
    full = _child(real, 1.0, args.threads)
    small = _child(real, args.widen_factor, args.threads)
    experiment = build_experiment(ClassifyOptions("nodmaisi-malignancy", real, synthetic,
                                                  synthetic_ratio=args.synthetic_ratio))
    train_patches = sum(len(u.train) for u in experiment.units)
    scored = len(experiment.units) * len(experiment.test)
    epochs = experiment.training.epochs
    per_train, per_score = full["train_epoch_s"] / full["patches"], full["predict_s"] / full["patches"]
    return {"widen_1": full, "reference_small_width": small,
            "widen_1_vs_small_train_time": full["train_epoch_s"] / small["train_epoch_s"],
            "protocol_units": len(experiment.units), "protocol_epochs": epochs,
            "protocol_train_patch_passes": train_patches * epochs, "protocol_scored_patches": scored,
            "projected_full_protocol_cpu_h": (per_train * train_patches * epochs + per_score * scored) / 3600}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["lidc", "hrldm", "fold"])
    parser.add_argument("--work", required=True, help="folder for tables, synthetic CTs and outputs")
    parser.add_argument("--widen-factor", type=float, default=0.0625)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--patch-voxels", type=int, default=24)
    parser.add_argument("--synthetic-ratio", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the report here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    result = {"lidc": lidc, "hrldm": hrldm, "fold": fold}[options.part](options)
    text = json.dumps(result, indent=1)
    print(text)
    if options.json:
        Path(options.json).write_text(text + "\n")
