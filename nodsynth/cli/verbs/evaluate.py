"""``nodsynth evaluate fid | nodules | froc``: the fidelity metrics of the seed papers.

* ``fid``: 2.5D FID between two sets of whole CTs (NodMAISI's published evaluation);
* ``nodules``: FID, KID and MMD on nodule-centred crops (HR-LDM's protocol), per plane, averaged
  and per subtype;
* ``froc``: FROC of one or several detection files by the LUNA16 rules, bootstrap CI, diameter
  strata and a PNG with every system on one plot.

The feature network is never downloaded (``--network``: a TorchScript file or a local torch.hub
folder). Bad input stops the command with one line and nothing written; the report is written
atomically once everything is computed (``--cache`` keeps the features of files already done).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...errors import InputError
from ..common import progress_bar, refuse_overwrite

VERB = "evaluate"
HELP = "compute fidelity metrics: 2.5D FID on whole CTs, FID/KID/MMD on nodule crops, FROC by the LUNA16 rules"


def _three(text: str, cast, example: str) -> tuple:
    """Three positive numbers separated by ``x`` or ``,`` (``512x512x512``, ``1,1,2.5``)."""
    try:
        values = tuple(cast(p) for p in text.lower().replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected three positive numbers like {example}, got {text!r}")
    return values


def _shape(text: str) -> tuple[int, int, int]:
    return _three(text, int, "512x512x512")  # type: ignore[return-value]


def _spacing(text: str) -> tuple[float, float, float]:
    return _three(text, float, "1.0,1.0,1.0 (mm)")  # type: ignore[return-value]


def _add_network_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("feature network (never downloaded)")
    group.add_argument("--network", type=Path, required=True,
                       help="TorchScript file, or a local torch.hub folder such as a copy of "
                            "github.com/Warvito/radimagenet-models")
    group.add_argument("--entry", default="radimagenet_resnet50", help="hub entry (default radimagenet_resnet50)")
    group.add_argument("--network-weights", type=Path,
                       help="the entry's weights file (default: RadImageNet-ResNet50_notop.pth in the hub "
                            "folder, its checkpoints/ or torch.hub's checkpoints/)")
    group.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    group.add_argument("--batch-size", type=int, default=16, help="slices per forward pass (default 16)")
    group.add_argument("--cache", type=Path, help="feature cache folder (re-runs only compute new inputs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="metric", metavar="METRIC", required=True)
    fid = sub.add_parser("fid", help="compute the 2.5D FID between two sets of whole CTs (NodMAISI)")
    fid.add_argument("--real", type=Path, help="folder, .txt list or .csv list (path column) of CTs")
    fid.add_argument("--synthetic", type=Path, help="the same for the synthetic CTs")
    fid.add_argument("--matrix", nargs="+", metavar="NAME=CTS",
                     help="instead of --real/--synthetic: the FID of every pair of these sets (a real-vs-real "
                          "reference, NodMAISI's Table 2); CTS as for --real")
    fid.add_argument("--num-images", type=int,
                     help="use the first N CTs of each set in sorted order (compute_fid_2-5d_ct.py --num_images)")
    fid.add_argument("--json", required=True, type=Path, help="report (JSON)")
    fid.add_argument("--target-shape", type=_shape, default=(512, 512, 512),
                     help="x,y,z voxels after padding (-1000 HU) and centre cropping (default 512x512x512)")
    fid.add_argument("--spacing", type=_spacing, help="resample to this spacing x,y,z (mm) first (default: no)")
    fid.add_argument("--center-slices-ratio", type=float, help="keep only this central fraction of each plane's slices")
    fid.add_argument("--drop-empty", action="store_true", help="drop slices whose maximum is below -700 HU")
    _add_network_arguments(fid)

    nodules = sub.add_parser("nodules", help="compute FID / KID / MMD on nodule-centred crops (HR-LDM)")
    nodules.add_argument("--real", required=True, type=Path,
                         help="CSV: ct, coordX,coordY,coordZ (LPS mm) or mask, optional subtype")
    nodules.add_argument("--synthetic", required=True, type=Path, help="the same for the synthetic nodules")
    nodules.add_argument("--json", required=True, type=Path, help="report (JSON)")
    nodules.add_argument("--crop-size", type=int, default=64, help="crop edge in voxels (default 64)")
    nodules.add_argument("--crop-spacing", type=float, default=1.0, help="crop voxel size in mm (default 1.0)")
    nodules.add_argument("--slices", type=int, default=5, help="slices around the centre per plane (default 5)")
    nodules.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    nodules.add_argument("--kid-subset-size", type=int, default=1000,
                         help="KID subset size (default 1000, capped at the vectors per side)")
    nodules.add_argument("--seed", type=int, default=0, help="seed of the KID subsets and MMD sampling")
    _add_network_arguments(nodules)

    froc = sub.add_parser("froc", help="score detections by FROC, the LUNA16 rules (one or several detection files)")
    froc.add_argument("--annotations", required=True, type=Path, help="seriesuid,coordX,coordY,coordZ,diameter_mm")
    froc.add_argument("--detections", required=True, type=Path, nargs="+",
                      help="seriesuid,coordX,coordY,coordZ,probability (one file per system)")
    froc.add_argument("--labels", help="comma-separated system names (default: the detection file names)")
    froc.add_argument("--scans", type=Path, help="evaluated scans, one series UID per line (default: every scan named)")
    froc.add_argument("--excluded", type=Path, help="irrelevant findings (LUNA16 annotations_excluded.csv)")
    froc.add_argument("--json", required=True, type=Path, help="report (JSON)")
    froc.add_argument("--png", type=Path, help="FROC plot of every system")
    froc.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples over scans (0: none; default 1000)")
    froc.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _network(args: argparse.Namespace, device_name=None):
    from ...engines.maisi.device import resolve_device
    from ...evaluate.network import load_feature_network

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    device = resolve_device(device_name or args.device)
    return load_feature_network(args.network, args.entry, device, args.network_weights), device


def _on_this_rank(args: argparse.Namespace, compute):
    """``compute(network, device, parallel, progress)`` on this process (a ``torchrun`` rank computes its share of
    the CTs); the report on rank 0 (or without torchrun), None on the other ranks."""
    from ...train.distributed import data_parallel

    parallel, device_name = data_parallel(args.device)
    try:
        network, device = _network(args, device_name)
        report = compute(network, device, parallel, progress_bar("evaluate fid") if parallel.is_main else None)
    finally:
        parallel.close()
    return report if parallel.is_main else None


def _run_fid_matrix(args: argparse.Namespace, settings) -> int:
    from ...evaluate.ct_fid import fid_matrix
    from ...evaluate.ct_inputs import named_sets
    from ...evaluate.feature_cache import FeatureCache

    sets = named_sets(args.matrix, args.num_images)
    refuse_overwrite([args.json], [p for paths in sets.values() for p in paths])
    settings.slice_ranges()
    report = _on_this_rank(args, lambda network, device, parallel, progress: fid_matrix(
        sets, network, device, settings, FeatureCache(args.cache), progress, parallel=parallel))
    if report is None:
        return 0
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    names = report["sets"]
    print(f"wrote {args.json}: average FID of {len(names)} sets ({', '.join(names)}):")
    for name, row in zip(names, report["fid_avg"]):
        print(f"  {name}: " + " ".join(f"{v:.4f}" for v in row))
    return 0


def _run_fid(args: argparse.Namespace) -> int:
    from ...evaluate.ct_fid import FidSettings, ct_fid
    from ...evaluate.ct_inputs import first_images, list_ct_files
    from ...evaluate.ct_prep import PrepSettings
    from ...evaluate.feature_cache import FeatureCache
    from ...evaluate.features_2p5d import FeatureOptions

    if args.matrix and (args.real or args.synthetic):
        raise InputError("give --matrix NAME=CTS ... or --real and --synthetic, not both")
    settings = FidSettings(PrepSettings(args.target_shape, args.spacing), args.center_slices_ratio,
                           FeatureOptions(args.drop_empty, args.batch_size))
    if args.matrix:
        return _run_fid_matrix(args, settings)
    if not (args.real and args.synthetic):
        raise InputError("evaluate fid needs --real and --synthetic (or --matrix NAME=CTS ...)")
    real = first_images(list_ct_files(args.real, "--real"), args.num_images)
    synthetic = first_images(list_ct_files(args.synthetic, "--synthetic"), args.num_images)
    refuse_overwrite([args.json], list(real) + list(synthetic) + [args.real, args.synthetic])
    settings.slice_ranges()  # checks the ratio before the network is loaded
    report = _on_this_rank(args, lambda network, device, parallel, progress: ct_fid(
        real, synthetic, network, device, settings, FeatureCache(args.cache), progress, parallel=parallel))
    if report is None:
        return 0
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}: FID xy {report['fid_xy']:.4f}, yz {report['fid_yz']:.4f}, zx {report['fid_zx']:.4f}, "
          f"average {report['fid_avg']:.4f} ({report['n_real']} real vs {report['n_synthetic']} synthetic CTs)")
    return 0


def _run_nodules(args: argparse.Namespace) -> int:
    from ...evaluate.feature_cache import FeatureCache
    from ...evaluate.features_2p5d import FeatureOptions
    from ...evaluate.nodule_crops import CropSettings
    from ...evaluate.nodule_csv import read_nodule_csv
    from ...evaluate.nodule_metrics import NoduleMetricSettings, nodule_metrics

    real, synthetic = read_nodule_csv(args.real, "--real"), read_nodule_csv(args.synthetic, "--synthetic")
    inputs = [args.real, args.synthetic] + [s.ct for s in real + synthetic] + [s.mask for s in real + synthetic]
    refuse_overwrite([args.json], inputs)
    settings = NoduleMetricSettings(CropSettings(args.crop_size, args.crop_spacing, args.slices),
                                    FeatureOptions(False, args.batch_size), args.kid_subsets,
                                    args.kid_subset_size, args.seed)
    network, device = _network(args)
    report = nodule_metrics(real, synthetic, network, device, settings, FeatureCache(args.cache),
                            progress_bar("evaluate nodules"))
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}: FID {report['fid_avg']:.4f}, KID {report['kid_avg']:.5f}, MMD {report['mmd_avg']:.5f} "
          f"(plane averages; {report['n_real']} real vs {report['n_synthetic']} synthetic crops)")
    return 0


def _labels(args: argparse.Namespace) -> list[str]:
    if not args.labels:
        names = [p.name[:-4] if p.name.lower().endswith(".csv") else p.name for p in args.detections]
    else:
        names = [n.strip() for n in args.labels.split(",")]
    if len(names) != len(args.detections) or len(set(names)) != len(names) or not all(names):
        raise InputError(f"give one distinct label per detection file ({len(args.detections)}), got {names}")
    return names


def _run_froc(args: argparse.Namespace) -> int:
    from ...evaluate.froc_io import evaluated_scans, read_findings, read_scan_list
    from ...evaluate.froc_plot import plot_froc
    from ...evaluate.froc_report import froc_report

    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more resamples, got {args.bootstrap}")
    labels = _labels(args)
    refuse_overwrite([args.json, args.png], [args.annotations, args.scans, args.excluded] + list(args.detections))
    annotations = read_findings(args.annotations, "diameter_mm")
    excluded = read_findings(args.excluded, "diameter_mm", excluded=True) if args.excluded else None
    detections = [read_findings(p, "probability") for p in args.detections]
    files = [annotations] + ([excluded] if excluded is not None else []) + detections
    scans = evaluated_scans(read_scan_list(args.scans) if args.scans else None, files)
    if not len(annotations):
        raise InputError(f"{args.annotations} has no nodule: sensitivity is undefined")
    results = [froc_report(label, annotations, found, scans, excluded, args.bootstrap, args.seed)
               for label, found in zip(labels, detections)]
    if args.png is not None:
        plot_froc([curve for _, curve in results], args.png)
    reports = [report for report, _ in results]
    data = reports[0] if len(reports) == 1 else {"systems": {r["system"]: r for r in reports}}
    write_text_atomic(args.json, json.dumps(data, indent=2) + "\n")
    for report in reports:
        ci = report["ci95"]
        interval = f" (95% CI {ci['cpm_lower']:.3f}-{ci['cpm_upper']:.3f})" if ci and ci["cpm_lower"] is not None else ""
        print(f"{report['system']}: CPM {report['cpm']:.3f}{interval}; sensitivities "
              + ", ".join(f"{s:.3f}" for s in report["sensitivities"]))
    print(f"wrote {args.json}" + (f" and {args.png}" if args.png else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    return {"fid": _run_fid, "nodules": _run_nodules, "froc": _run_froc}[args.metric](args)
