"""``nodsynth labelmap``: build a MAISI label map from a CT and an organ segmentation, or validate one.

* ``nodsynth labelmap build --ct CT [--organs SEG | --totalsegmentator DIR] [--nodule MASK ...] [--nodule-margin-mm 2] --out OUT``
  (nodule masks are expanded by 2 mm by default: NodMAISI's ControlNet was trained on label maps whose
  nodule masks were expanded by 2 mm; ``--nodule-margin-mm 0`` paints them as drawn)
* ``nodsynth labelmap validate LABELMAP [--ct CT]``
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import InputError
from ...labelmap import (NODMAISI_NODULE_MARGIN_MM, assemble_labelmap, label_counts, load_labelmap,
                         organs_from_totalsegmentator, read_totalsegmentator_folder, validate_labelmap)
from ...labels import NODULE
from ...io.volume_files import read_volume, write_volume

VERB = "labelmap"
HELP = "build a MAISI label map (organs + body 200 + nodules 23) from a CT, or validate one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build a MAISI label map from an organ segmentation, the CT's body and nodule masks")
    build.add_argument("--ct", type=Path, required=True, help="CT in HU (gives the body mask and the grid)")
    organs = build.add_mutually_exclusive_group(required=True)
    organs.add_argument("--organs", type=Path, help="organ segmentation in MAISI ids")
    organs.add_argument("--totalsegmentator", type=Path,
                        help="TotalSegmentator output folder (<class>.nii.gz per class)")
    build.add_argument("--nodule", type=Path, action="append", default=[],
                       help="nodule mask (non-zero = nodule), painted as label 23; repeatable")
    build.add_argument("--nodule-margin-mm", type=float, default=NODMAISI_NODULE_MARGIN_MM,
                       help=f"expand each nodule mask by this margin into labelled voxels (default "
                            f"{NODMAISI_NODULE_MARGIN_MM:g} mm: NodMAISI's ControlNet was trained on nodule masks "
                            "expanded by 2 mm; 0 = as drawn)")
    build.add_argument("--out", type=Path, required=True, help="output label map (.nii.gz, .nrrd, ...)")
    check = sub.add_parser("validate", help="check ids, integer values, grid and nodules inside the body")
    check.add_argument("labelmap", type=Path, help="label map to check")
    check.add_argument("--ct", type=Path, default=None, help="CT the label map must share a grid with")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return run_build(args)
    return run_validate(args)


def run_build(args: argparse.Namespace) -> int:
    ct = read_volume(args.ct)
    if args.organs is not None:
        organs = load_labelmap(args.organs)
    else:
        organs = organs_from_totalsegmentator(read_totalsegmentator_folder(args.totalsegmentator))
    nodules = [read_volume(p) for p in args.nodule]
    labelmap = validate_labelmap(assemble_labelmap(organs, ct=ct, nodule_masks=nodules,
                                                   nodule_margin_mm=args.nodule_margin_mm), ct=ct)
    write_volume(labelmap, args.out)
    print(f"wrote {args.out}: {summary(labelmap)}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    ct = read_volume(args.ct) if args.ct else None
    labelmap = validate_labelmap(load_labelmap(args.labelmap), ct=ct)
    print(f"{args.labelmap}: valid MAISI label map; {summary(labelmap)}")
    return 0


def summary(labelmap) -> str:
    counts = label_counts(labelmap)
    nodule = counts.get("lung tumor", 0)
    if not counts:
        raise InputError("empty label map")
    return f"{len(counts)} labels, {nodule} nodule (label {NODULE}) voxels"
