"""``nodsynth dicom export``: the sub-verb's options (see :mod:`nodsynth.io.dicom.export`)."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = ("write a synthetic CT as a DICOM CT series (OUT/ct/), with --mask also a SEG (OUT/seg.dcm) and a TID 1500 "
        "SR of the nodule volumes and diameters (OUT/sr.dcm)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", type=Path, required=True,
                        help="the synthetic CT (HU; float voxels are rounded to integer HU and clipped to the range "
                             "the pixel encoding stores: signed 16-bit, or the --like series' encoding)")
    parser.add_argument("--out", type=Path, required=True, help="new output folder")
    parser.add_argument("--like", type=str,
                        help="the source DICOM series (FOLDER or FOLDER::SERIES_INSTANCE_UID): its grid must be the "
                             "CT's; its pixel encoding and patient position are followed")
    parser.add_argument("--same-study", action="store_true",
                        help="place the series in the --like series' patient, study and frame of reference (new "
                             "series and instance UIDs); default: a new de-identified patient and study")
    parser.add_argument("--mask", type=Path, help="nodule mask on the CT grid (each label or 0/1 component a nodule)")
    parser.add_argument("--seed", type=int, help="the seed the CT was generated with (recorded in DerivationDescription)")


def run(args: argparse.Namespace) -> int:
    from ...labelmap import load_labelmap
    from ...segment.checks import read_ct
    from ..volume_files import read_volume
    from ...volume import require_same_grid
    from .export import file_provenance, source_header, synthetic_header, write_export
    from .seg import highdicom_module
    from .series import pydicom_module

    pydicom_module()  # refused before any work when a package is missing
    if args.mask is not None:
        highdicom_module()
    ct = read_ct(args.ct)
    like = None
    if args.like is not None:
        require_same_grid(ct, read_volume(args.like), f"--ct {args.ct}", f"--like {args.like}")
        like = source_header(args.like)
    mask = load_labelmap(args.mask, "nodule mask") if args.mask else None
    header = synthetic_header(file_provenance(args.ct), args.seed, like, args.same_study)
    summary = write_export(ct, header, args.out, mask)
    extra = f", seg.dcm and sr.dcm ({summary['nodules']} nodule(s))" if mask is not None else ""
    print(f"wrote {args.out}: ct/ ({summary['slices']} slices, series {summary['series_instance_uid']}){extra}")
    return 0
