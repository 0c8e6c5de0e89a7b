"""``nodsynth histograms``: build per-subtype HU histogram presets from labelled nodules, or take
the histogram of one segmented nodule."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...histogram import histogram_mean_hu
from ...presets import (DEFAULT_CLUSTERS, histograms_of, load_presets, nodule_histogram, read_voi_table,
                        save_presets, subtype_presets, write_histogram)
from ...volume import read_volume
from ..common import progress_bar

VERB = "histograms"
HELP = "build HU histogram presets per nodule subtype (build), take one nodule's histogram (from-mask), or list presets (show)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="presets (mean + k-means centres per subtype) from labelled nodules")
    build.add_argument("--vois", required=True, metavar="DIR", help="folder with image/ and nodule_mask/ (same file names)")
    build.add_argument("--csv", metavar="FILE", help="nodule table with 'file' and 'Texture_value' columns (default DIR/nodules.csv)")
    build.add_argument("--out", required=True, metavar="FILE.json")
    build.add_argument("--clusters", type=int, default=DEFAULT_CLUSTERS, help=f"k-means centres per subtype (default {DEFAULT_CLUSTERS})")
    one = sub.add_parser("from-mask", help="the 40-bin histogram of one segmented nodule")
    one.add_argument("--ct", required=True)
    one.add_argument("--mask", required=True, help="nodule mask (> 0 = nodule) on the CT grid")
    one.add_argument("--out", required=True, metavar="FILE.json")
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
