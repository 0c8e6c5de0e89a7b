"""``nodsynth downstream classify | detect``: does synthetic data make a better classifier? The papers' protocols;
does a detector find synthetic nodules as it finds real ones?

``downstream classify --protocol nodmaisi-malignancy --real REAL.csv [--synthetic SYN.csv] [--test TEST.csv]
--out DIR`` trains the protocol's network from scratch per arm (real, real+synthetic), training fraction
(disjoint patient folds) and run, and writes ``DIR/splits.csv``, ``DIR/predictions.csv``, ``DIR/results.json``
(AUC with DeLong CIs, paired DeLong tests between arms) and ``DIR/report.html``.

``downstream detect --bundle DIR --cts LIST --out detections.csv [--annotations-from-labelmaps annotations.csv]``
runs a MONAI ``lung_nodule_ct_detection`` bundle (its own ``models/model.pt``; nothing is downloaded) over the
CTs of LIST (``seriesuid, ct[, labelmap]``) and writes LUNA16 detections for ``nodsynth evaluate froc``.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Iterator, Optional

from ...errors import InputError
from ..common import progress_bar

VERB = "downstream"
HELP = ("train and test classifiers with and without synthetic nodules, as the NodMAISI and HR-LDM papers did; "
        "run a MONAI nodule detection bundle over CTs for FROC")


def _patch_voxels(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"give one size or three (x,y,z) in voxels, got {text!r}")
    return values * 3 if len(values) == 1 else values  # type: ignore[return-value]


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """Run with ``count`` torch CPU threads (None: unchanged), then restore the earlier count."""
    if count is None:
        yield
        return
    if count < 1:
        raise InputError(f"--threads must be at least 1, got {count}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...downstream.protocols import PROTOCOLS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("classify", help="train and test a nodule classifier per arm, training fraction and run")
    c.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS), help="the paper's protocol to run")
    c.add_argument("--real", type=Path, required=True,
                   help="classification table of real nodules (case_id, nodule_id, patient_id, ct, coordX, coordY, "
                        "coordZ in LPS mm, label; ct relative to the table)")
    c.add_argument("--synthetic", type=Path, help="classification table of synthetic nodules (adds the real+synthetic arm)")
    c.add_argument("--test", type=Path,
                   help="classification table of the test nodules (default: 20 %% of the real patients, drawn among "
                        "those no synthetic nodule comes from)")
    c.add_argument("--out", type=Path, required=True, help="output folder (new or empty, unless --resume)")
    c.add_argument("--fractions",
                   help="nodmaisi-malignancy: training fractions in %% of the training patients, each as 100/F disjoint "
                        "folds (default 100,50,20,10); hrldm-*: real data retained in %% (the ablation: 100,50,20,10,0; "
                        "default 100)")
    c.add_argument("--synthetic-ratio", type=float, default=1.0,
                   help="synthetic nodules added, as a multiple of the full real training set (default %(default)s)")
    c.add_argument("--max-synthetic", type=int,
                   help="hrldm-*: at most this many synthetic nodules in the minority top-up (default: no cap)")
    c.add_argument("--init", type=Path, help="hrldm-malignancy: start from this subtype model (units/*.pt of a "
                                             "hrldm-subtype run) instead of random weights")
    c.add_argument("--patience", type=int,
                   help="hrldm-*: stop after this many epochs without a lower validation loss (default: the protocol's)")
    c.add_argument("--epochs", type=int, help="training epochs (default: the protocol's)")
    c.add_argument("--batch-size", type=int, help="mini-batch size (default: the protocol's)")
    c.add_argument("--lr", type=float, help="Adam learning rate (default: the protocol's)")
    c.add_argument("--runs", type=int, default=1, help="repeats with new folds and seeds (default %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="seed of splits, folds, networks and batches (default %(default)s)")
    c.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default %(default)s)")
    c.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: torch's); identical predictions need the same count")
    c.add_argument("--widen-factor", type=float, default=1.0,
                   help="network width (channels) scaled by this factor; 1 = the paper's (default %(default)s)")
    c.add_argument("--patch-voxels", type=_patch_voxels,
                   help="patch size in voxels, one or three (x,y,z) (default: the protocol's)")
    c.add_argument("--resume", action="store_true", help="keep the finished units of an earlier run into --out")
    d = sub.add_parser("detect", help="run a MONAI lung_nodule_ct_detection bundle over CTs, LUNA16 detections for "
                                      "evaluate froc")
    d.add_argument("--bundle", type=Path, required=True,
                   help="the bundle folder (configs/inference.json and models/model.pt, user-supplied)")
    d.add_argument("--cts", type=Path, required=True,
                   help="CSV seriesuid,ct[,labelmap] (cohort export luna16's cts.csv), paths relative to it")
    d.add_argument("--out", type=Path, required=True,
                   help="detections CSV: seriesuid,coordX,coordY,coordZ (LPS mm, box centres),probability")
    d.add_argument("--annotations-from-labelmaps", type=Path,
                   help="also write this annotations CSV (seriesuid,coordX,coordY,coordZ,diameter_mm) from the "
                        "label-23 components of each row's labelmap: centroid (LPS mm), equivalent-sphere diameter")
    d.add_argument("--patch-voxels", type=_patch_voxels,
                   help="sliding-window patch in voxels of the resampled CT, one or three (x,y,z), multiples of the "
                        "bundle's size_divisible (default: the bundle's infer_patch_size); smaller uses less memory")
    d.add_argument("--widen-factor", type=float, default=1.0,
                   help="network width scaled by this factor, for weights trained at that width; 1 = the bundle's "
                        "(default %(default)s)")
    d.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default %(default)s)")
    d.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")


def _run_detect(args: argparse.Namespace) -> int:
    from ...downstream.detect import detect

    with torch_threads(args.threads):
        found, nodules = detect(args.bundle, args.cts, args.out, args.annotations_from_labelmaps, args.patch_voxels,
                                args.widen_factor, args.device, progress_bar("downstream detect"))
    print(f"wrote {args.out} ({found} detection(s))" + (f" and {args.annotations_from_labelmaps} ({nodules} nodule(s))"
                                                     if args.annotations_from_labelmaps else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    return {"classify": _run_classify, "detect": _run_detect}[args.action](args)


def _run_classify(args: argparse.Namespace) -> int:
    from ...downstream.classify import ClassifyOptions, classify

    if args.runs < 1 or (args.epochs is not None and args.epochs < 1) or (args.batch_size is not None and args.batch_size < 1):
        raise InputError("--runs, --epochs and --batch-size must be at least 1")
    options = ClassifyOptions(protocol=args.protocol, real=args.real, synthetic=args.synthetic, test=args.test,
                              fractions=args.fractions, synthetic_ratio=args.synthetic_ratio, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, runs=args.runs, seed=args.seed,
                              device=args.device, widen_factor=args.widen_factor, patch_voxels=args.patch_voxels,
                              max_synthetic=args.max_synthetic, init=args.init, patience=args.patience)
    with torch_threads(args.threads):
        document = classify(options, args.out, args.resume, progress_bar)
    for arm, fractions in document["arms"].items():
        for fraction, entry in fractions.items():
            mean = "null" if entry["auc_mean"] is None else f"{entry['auc_mean']:.3f}"
            print(f"  {arm:15s} {fraction:>3s} %  {len(entry['folds'])} fold(s)  mean AUC {mean}")
    print(f"wrote {args.out}/results.json, predictions.csv, splits.csv, report.html")
    return 0
