"""``nodsynth shapes``: build a nodule shape library from mask files, or summarise one."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...shapes import SHAPE_SIZE, ShapeLibrary, build_library
from ...io.volume_files import VOLUME_SUFFIXES
from ..common import progress_bar

VERB = "shapes"
HELP = "build a nodule shape library from nodule masks (build) or summarise one (info)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="turn a folder of nodule masks into a shape library (.npz + .json)")
    build.add_argument("--masks", required=True, metavar="DIR", help="folder of binary nodule masks (NIfTI/NRRD/MHA)")
    build.add_argument("--out", required=True, metavar="FILE.npz", help="library to write (its index goes beside it as .json)")
    build.add_argument("--size", type=int, default=SHAPE_SIZE, help=f"voxels per side of each shape grid (default {SHAPE_SIZE})")
    info = sub.add_parser("info", help="print the size and measurement ranges of a library")
    info.add_argument("--library", required=True, metavar="FILE.npz", help="shape library (its .json index beside it)")


def _mask_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"mask folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.name.lower().endswith(VOLUME_SUFFIXES))
    if not files:
        raise InputError(f"no mask files ({', '.join(VOLUME_SUFFIXES)}) in {folder}")
    return files


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        if args.size < 8:
            raise InputError(f"--size must be at least 8 voxels, got {args.size}")
        library = build_library(_mask_files(Path(args.masks)), size=args.size, progress=progress_bar("shapes"))
        library.save(args.out)
        print(f"wrote {len(library)} shapes to {args.out} (index {Path(args.out).with_suffix('.json')})")
        return 0
    library = ShapeLibrary.load(args.library)
    print(f"{args.library}: {len(library)} shapes, grid {library.shapes.shape[1]}^3")
    for key in ("equivalent_diameter_mm", "bounding_diameter_mm", "elongation"):
        values = np.array([e[key] for e in library.entries], dtype=float)
        print(f"  {key}: median {np.median(values):.2f}, range {values.min():.2f}..{values.max():.2f}")
    return 0
