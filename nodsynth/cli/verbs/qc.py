"""``nodsynth qc``: MAISI's quality check - organ median HU ranges learned from real CTs, checked on a CT.

``qc stats --cts A.nii.gz B.nii.gz ... --labelmaps A_l.nii.gz B_l.nii.gz ... --out stats.json`` and
``qc check --ct CT --labelmap MAP --stats stats.json [--json OUT]`` (exit 0 passed, 1 failed).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...errors import InputError
from ...labelmap import load_labelmap
from ...qc.check import check_ct, qc_passed, verdict_line, verdict_record
from ...qc.stats import MIN_VOLUMES, group_medians_hu, learn_statistics, read_statistics
from ...segment.checks import read_ct
from ..common import progress_bar

VERB = "qc"
HELP = "check CTs as MAISI does: learn organ median HU ranges from real CTs, check a CT against them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="learn the per-organ-group median HU ranges from real CTs",
                           description="learn, per organ group, the median HU of each real CT and write the "
                                       "ranges MAISI's is_outlier reads (mean -/+ 3 SD, 0.5th/99.5th percentile)")
    stats.add_argument("--cts", type=Path, nargs="+", required=True, help="real CTs in HU")
    stats.add_argument("--labelmaps", type=Path, nargs="+", required=True,
                       help="their MAISI label maps, in the same order, each on its CT's grid")
    stats.add_argument("--out", type=Path, required=True, help="statistics file to write (JSON)")
    check = sub.add_parser("check", help="check one CT against learned statistics (exit 1 when it fails)",
                           description="median HU of each organ group of a CT against the learned ranges "
                                       "(exit 0 passed, 1 failed)")
    check.add_argument("--ct", type=Path, required=True, help="CT in HU (e.g. a twin)")
    check.add_argument("--labelmap", type=Path, required=True, help="its MAISI label map, on the CT's grid")
    check.add_argument("--stats", dest="qc_stats", type=Path, required=True,
                       help="statistics from 'nodsynth qc stats' (or MAISI's image_median_statistics.json)")
    check.add_argument("--json", type=Path, help="write the per-group verdicts here (JSON)")


def _run_stats(args: argparse.Namespace) -> int:
    if len(args.cts) != len(args.labelmaps):
        raise InputError(f"--cts names {len(args.cts)} CT(s) but --labelmaps {len(args.labelmaps)} label map(s): "
                         f"give one label map per CT, in the same order")
    report = progress_bar("qc stats")
    medians = []
    for n, (ct_path, map_path) in enumerate(zip(args.cts, args.labelmaps)):
        report(n / len(args.cts), ct_path.name)
        medians.append(group_medians_hu(read_ct(ct_path), load_labelmap(map_path)))
    report(1.0, "done")
    statistics, left_out = learn_statistics(medians)
    write_text_atomic(args.out, json.dumps(statistics, indent=1) + "\n")
    print(f"wrote {args.out}: {len(statistics)} organ group(s) from {len(args.cts)} CT(s)")
    for name, count in left_out.items():
        print(f"  {name}: in {count} CT(s), fewer than {MIN_VOLUMES}: not learned, not checked")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    statistics = read_statistics(args.qc_stats)
    verdicts = check_ct(read_ct(args.ct), load_labelmap(args.labelmap), statistics)
    for v in verdicts:
        median = "no voxels" if v.median_hu is None else f"{v.median_hu:.1f} HU"
        print(f"  {v.group:24s} {median:>12s}  accepted {v.low_hu:.1f}..{v.high_hu:.1f} HU"
              f"{'  OUTLIER' if v.is_outlier else ''}")
    print(f"{args.ct}: {verdict_line(verdicts)}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps({"ct": str(args.ct), **verdict_record(verdicts)}, indent=1) + "\n")
    return 0 if qc_passed(verdicts) else 1


def run(args: argparse.Namespace) -> int:
    return _run_stats(args) if args.action == "stats" else _run_check(args)
