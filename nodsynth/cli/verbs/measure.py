"""``nodsynth measure``: measurements of the nodule(s) in an existing mask.

``nodsynth measure --ct CT --mask MASK [--labelmap MAISI | --lung-mask LUNG] [--json out.json]``
Each label > 0 of the mask (or each connected component of a 0/1 mask) is one nodule.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...errors import InputError
from ...measure import measure_nodule, split_nodules
from ...labelmap import load_labelmap
from ...segment.checks import read_ct

VERB = "measure"
HELP = ("measure nodules in a mask: volume, equivalent-sphere and longest diameters, centroid, HU, subtype, lobe, "
        "pleural distance")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", type=Path, required=True, help="CT in Hounsfield units")
    parser.add_argument("--mask", type=Path, required=True, help="nodule mask on the CT grid")
    lung = parser.add_mutually_exclusive_group()
    lung.add_argument("--labelmap", type=Path, help="MAISI label map (lobes 28-32): lobe and pleural distance")
    lung.add_argument("--lung-mask", type=Path, help="0/1 lung mask: pleural distance")
    parser.add_argument("--json", type=Path, help="write the measurements here (JSON) instead of printing them")


def run(args: argparse.Namespace) -> int:
    ct, mask = read_ct(args.ct), load_labelmap(args.mask, "nodule mask")
    labelmap = load_labelmap(args.labelmap) if args.labelmap else None
    lung = load_labelmap(args.lung_mask, "lung mask") if args.lung_mask else None
    nodules = split_nodules(mask)
    if not nodules:
        raise InputError(f"{args.mask}: the mask is empty, no nodule to measure")
    records = [dict(nodule=n, **measure_nodule(ct, m, labelmap=labelmap, lung_mask=lung).to_dict())
               for n, m in enumerate(nodules, start=1)]
    text = json.dumps({"ct": str(args.ct), "mask": str(args.mask), "nodules": records}, indent=2) + "\n"
    if args.json is not None:
        write_text_atomic(args.json, text)
        print(f"wrote {args.json}: {len(records)} nodule(s)")
    else:
        print(text, end="")
    return 0
