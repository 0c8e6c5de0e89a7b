"""``nodsynth review compare``: real vs synthetic side by side with per-case numbers.

One pair: ``--real CT --synthetic CT [--labelmap L] [--mask M] [--edited-labelmap E | --changed C]
--out DIR``; many: ``--manifest pairs.csv --out DIR`` (columns ``real,synthetic`` and optionally
``case_id,labelmap,mask,edited_labelmap,changed``, paths relative to the manifest). Writes
``nodules.csv``, ``regions.csv``, ``cases.csv``, ``review.json``, ``report.html`` and ``images/``
into the new folder DIR (nothing when an input is bad).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ...io.dicom.series import dicom_kind
from ...errors import InputError
from ...review.pairs import PAIR_FILE_COLUMNS, ReviewPair, read_pairs, review_pairs
from ..common import progress_bar

VERB = "review"
HELP = "compare real and synthetic CTs per nodule, lobe and edited region; CSV, JSON and an HTML report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    compare = sub.add_parser("compare", help="compare one or many real / synthetic pairs: per-nodule fidelity (JSD, Dice of the re-segmented nodule, "
                                             "reproduced), lobe/body HU, ROI-edit numbers, report.html")
    compare.add_argument("--real", type=Path, help="the real CT in HU")
    compare.add_argument("--synthetic", type=Path, help="the synthetic CT on the same grid")
    compare.add_argument("--labelmap", type=Path, help="MAISI label map of the real CT (nodules 23, lobes 28-32, body 200)")
    compare.add_argument("--mask", type=Path, help="conditioning nodule mask(s) instead of label 23")
    edit = compare.add_mutually_exclusive_group()
    edit.add_argument("--edited-labelmap", type=Path,
                      help="ROI edit: the label map the synthetic CT was made from (the change = its difference "
                           "from --labelmap)")
    edit.add_argument("--changed", type=Path, help="ROI edit: a 0/1 mask of the voxels meant to change")
    compare.add_argument("--margin-mm", type=float, default=3.0,
                         help="the changed region is grown by this much before counting identical voxels (default 3)")
    compare.add_argument("--manifest", type=Path, help="CSV of many pairs instead of --real/--synthetic")
    compare.add_argument("--no-images", action="store_true", help="skip the PNG triplets")
    compare.add_argument("--out", type=Path, required=True, help="new output folder")


def pairs_from_args(args: argparse.Namespace) -> list[ReviewPair]:
    """The pairs to review: the manifest's, or the one named by the options."""
    given = [o for o in PAIR_FILE_COLUMNS if getattr(args, o) is not None]
    if args.manifest is not None:
        if given:
            raise InputError(f"--manifest lists the pairs; drop --{given[0].replace('_', '-')}")
        return read_pairs(args.manifest)
    if args.real is None or args.synthetic is None:
        raise InputError("give --real and --synthetic (or --manifest pairs.csv)")
    for option in given:
        path = getattr(args, option)
        if not path.is_file() and dicom_kind(path) != "series":
            raise InputError(f"--{option.replace('_', '-')} file not found: {path}")
    return [ReviewPair(case_id=args.synthetic.name.split(".")[0], **{o: getattr(args, o) for o in PAIR_FILE_COLUMNS})]


def run(args: argparse.Namespace) -> int:
    pairs = pairs_from_args(args)
    cases = review_pairs(pairs, args.out, margin_mm=args.margin_mm, images=not args.no_images,
                         progress=progress_bar("review"))
    nodules = [n for c in cases for n in c.nodules]
    print(f"wrote {args.out}: {len(cases)} pair(s), {len(nodules)} nodule(s), "
          f"{sum(n.reproduced for n in nodules)} reproduced; open {args.out / 'report.html'}")
    for case in cases:
        for row in case.nodule_rows():
            jsd = "n/a (inserted)" if row["jsd"] is None else f"{row['jsd']:.4f}"
            print(f"  {row['case_id']} nodule {row['nodule']}: JSD {jsd}, Dice {row['dice']:.3f}, "
                  f"volume ratio {row['volume_ratio']:.2f}, {'reproduced' if row['reproduced'] else 'NOT reproduced'}")
        if case.edit:
            print(f"  {case.case_id} edit: {100 * case.edit['bit_identical_fraction_outside']:.3f} % bit-identical "
                  f"outside the changed region, SSIM {case.edit['ssim_box']:.4f} in its box")
    return 0
