"""``nodsynth histograms``: build per-subtype HU histogram presets from labelled nodules, the library of
real nodule histograms (HR-LDM's default targets), or take the histogram of one segmented nodule."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...histogram import histogram_mean_hu
from ...presets import (DEFAULT_CLUSTERS, histograms_of, load_presets, nodule_histogram, read_voi_table,
                        save_presets, subtype_presets, write_histogram)
from ...io.volume_files import read_volume
from ..common import progress_bar

VERB = "histograms"
HELP = ("build HU histogram presets per nodule subtype (build) or the library of real nodule histograms (library), "
        "take one nodule's histogram (from-mask), or list presets (show)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build presets (mean + k-means centres per subtype) from labelled nodules")
    build.add_argument("--vois", required=True, metavar="DIR", help="folder with image/ and nodule_mask/ (same file names)")
    build.add_argument("--csv", metavar="FILE", help="nodule table with 'file' and 'Texture_value' columns (default DIR/nodules.csv)")
    build.add_argument("--out", required=True, metavar="FILE.json", help="presets to write")
    build.add_argument("--clusters", type=int, default=DEFAULT_CLUSTERS, help=f"k-means centres per subtype (default {DEFAULT_CLUSTERS})")
    library = sub.add_parser("library", help="collect every labelled nodule's histogram with its subtype and diameter "
                                             "(the HR-LDM default targets, Resources/nodule_histograms.json)")
    library.add_argument("--vois", required=True, metavar="DIR", help="folder with image/ and nodule_mask/ (same file names)")
    library.add_argument("--csv", metavar="FILE", help="nodule table with 'file', 'Texture_value' and 'diameter_mm' "
                                                       "(default DIR/nodules.csv)")
    library.add_argument("--out", required=True, metavar="FILE.json", help="histogram library to write")
    one = sub.add_parser("from-mask", help="take the 40-bin histogram of one segmented nodule")
    one.add_argument("--ct", required=True, help="CT in HU on the mask's grid")
    one.add_argument("--mask", required=True, help="nodule mask (> 0 = nodule) on the CT grid")
    one.add_argument("--out", required=True, metavar="FILE.json", help="histogram to write")
    show = sub.add_parser("show", help="print the mean HU of each preset")
    show.add_argument("--presets", metavar="FILE.json", help="preset file (default: the shipped presets)")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        nodules = read_voi_table(args.vois, args.csv)
        histograms, subtypes = histograms_of(nodules, progress=progress_bar("histograms"))
        presets = subtype_presets(histograms, subtypes, clusters=args.clusters)
        save_presets(presets, args.out, source=f"{len(nodules)} nodules of {Path(args.vois).name}")
        _print(presets)
        return 0
    if args.action == "library":
        from ...histogram_library import build_library, save_library

        nodules = read_voi_table(args.vois, args.csv)
        library = build_library(nodules, f"{len(nodules)} nodules of {Path(args.vois).name}",
                                progress=progress_bar("library"))
        save_library(library, args.out)
        counts = {s: sum(e["subtype"] == s for e in library["nodules"]) for s in ("solid", "part-solid", "ground-glass")}
        print(f"wrote {args.out}: {len(library['nodules'])} nodules ({counts})")
        return 0
    if args.action == "from-mask":
        histogram = nodule_histogram(read_volume(args.ct), read_volume(args.mask))
        write_histogram(histogram, args.out)
        print(f"wrote {args.out}: mean {histogram_mean_hu(histogram):.1f} HU")
        return 0
    _print(load_presets(args.presets))
    return 0


def _print(presets: dict) -> None:
    for subtype, preset in presets.items():
        centres = ", ".join(f"{histogram_mean_hu(c):.0f}" for c in preset["clusters"])
        print(f"{subtype}: {preset['count']} nodules, mean {preset['mean_hu']:.1f} HU, cluster means {centres} HU")
