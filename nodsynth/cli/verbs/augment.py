"""``nodsynth augment``: shrink or grow nodules in MAISI label maps to exact volume percents.

Input: one label map file, a MAISI/CaNA dataset JSON (``{"training": [{"label": "..."}, ...]}``) or
a CSV manifest with a ``label`` column. For each map and each percent it writes
``<name>_p<percent>.nii.gz`` to ``--out`` plus a per-map statistics CSV, then one combined
statistics CSV (``--stats``, default ``<out>/augment_stats.csv``). Maps whose outputs all exist are
skipped, so an interrupted batch resumes where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from ...atomic import write_csv_atomic
from ...augment import METHODS, ResizeResult, check_percent, percent_tag, resize_series
from ...errors import InputError
from ...labelmap import load_labelmap
from ...volume import VOLUME_SUFFIXES, volume_stem, write_volume
from ..common import parse_triple, progress_bar, run_batch, summary_line

VERB = "augment"
HELP = "Shrink/grow nodules (label 23) of MAISI label maps to exact volume percents, with lobe refill."

DATASET_KEYS = ("training", "validation", "testing")
STATS_SUFFIX = "_augment_stats.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="label map file, dataset JSON or CSV manifest")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--percent", type=float, help="target volume in percent of the original, in (0, 300]")
    target.add_argument("--series", help="comma-separated percents, e.g. 100,90,80,70,60,50 (nested masks)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--nodule", default="all",
                        help="'all' (default), a component id (1-based) or an LPS point x,y,z in mm")
    parser.add_argument("--method", choices=METHODS, default="distance",
                        help="'distance' (exact, default) or 'erosion' (the reference algorithm, for comparison)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder that relative paths in a JSON/CSV manifest start from (default: its folder)")
    parser.add_argument("--stats", type=Path, default=None,
                        help="combined statistics CSV (default <out>/augment_stats.csv)")


def parse_percents(args: argparse.Namespace) -> list[float]:
    """The requested percents, validated (each in (0, 300])."""
    if args.series is None:
        return [check_percent(args.percent)]
    parts = [p.strip() for p in str(args.series).split(",") if p.strip()]
    if not parts:
        raise InputError(f"--series needs comma-separated percents, got {args.series!r}")
    return [check_percent(p) for p in parts]


def parse_nodule(text: str):
    """``all`` | an integer id | ``x,y,z`` (LPS mm)."""
    text = str(text).strip()
    if text.lower() == "all":
        return "all"
    if "," in text:
        return parse_triple(text, "--nodule point")
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--nodule must be 'all', an id or x,y,z (mm), got {text!r}") from None


def manifest_labels(path: Path, data_root: Path | None) -> list[Path]:
    """Label map paths listed by a dataset JSON or CSV manifest (relative to ``data_root``)."""
    root = data_root or path.parent
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        entries = [e for key in DATASET_KEYS for e in (data.get(key) or [])] if isinstance(data, dict) else []
        if not entries or not all(isinstance(e, dict) and "label" in e for e in entries):
            raise InputError(f"{path}: expected {{\"training\": [{{\"label\": ...}}, ...]}} with a 'label' per entry")
        names = [str(e["label"]) for e in entries]
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "label" not in rows[0]:
            raise InputError(f"{path}: a CSV manifest needs a 'label' column")
        names = [r["label"] for r in rows]
    return [Path(n) if Path(n).is_absolute() else root / n for n in names]


def input_labels(args: argparse.Namespace) -> list[Path]:
    path: Path = args.input
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    if path.name.lower().endswith(VOLUME_SUFFIXES):
        return [path]
    if path.suffix.lower() in (".json", ".csv"):
        return manifest_labels(path, args.data_root)
    raise InputError(f"{path}: expected a label map ({', '.join(VOLUME_SUFFIXES)}), a dataset JSON or a CSV")


def output_paths(out: Path, label: Path, percents: list[float]) -> list[Path]:
    return [out / f"{volume_stem(label)}_{percent_tag(p)}.nii.gz" for p in percents]


def stats_rows(case: str, results: list[ResizeResult]) -> list[dict]:
    rows = []
    for result in results:
        for stats in result.nodules:
            rows.append({"case": case, "method": result.method, **stats.as_row(),
                         "seconds": round(result.seconds, 4)})
    return rows


def augment_one(label: Path, args: argparse.Namespace, percents: list[float], nodule) -> None:
    """Resize one map for every percent; write the maps and their statistics CSV (last: marks it done)."""
    labelmap = load_labelmap(label)
    results = resize_series(labelmap, nodule, percents, method=args.method,
                            progress=progress_bar(volume_stem(label)))
    for result, path in zip(results, output_paths(args.out, label, percents)):
        write_volume(result.labelmap, path)
    write_csv_atomic(args.out / f"{volume_stem(label)}{STATS_SUFFIX}", stats_rows(volume_stem(label), results))


def is_done(label: Path, args: argparse.Namespace, percents: list[float]) -> bool:
    paths = output_paths(args.out, label, percents) + [args.out / f"{volume_stem(label)}{STATS_SUFFIX}"]
    return all(p.is_file() for p in paths)


def combined_stats(out: Path, labels: list[Path], target: Path) -> int:
    """Concatenate the per-map statistics CSVs of ``labels`` into ``target``; returns the row count."""
    rows = []
    for label in labels:
        path = out / f"{volume_stem(label)}{STATS_SUFFIX}"
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                rows.extend(csv.DictReader(handle))
    if rows:
        write_csv_atomic(target, rows)
    return len(rows)


def run(args: argparse.Namespace) -> int:
    percents = parse_percents(args)
    nodule = parse_nodule(args.nodule)
    labels = input_labels(args)
    stats_path = args.stats or args.out / "augment_stats.csv"
    if len(labels) == 1 and labels[0] == args.input:
        if not is_done(labels[0], args, percents):
            augment_one(labels[0], args, percents, nodule)
        rows = combined_stats(args.out, labels, stats_path)
        print(f"wrote {len(percents)} label map(s) and {rows} statistics row(s) to {args.out}")
        return 0
    outcome = run_batch(labels, lambda label: augment_one(label, args, percents, nodule),
                        lambda label: is_done(label, args, percents), desc="augment", name=volume_stem)
    rows = combined_stats(args.out, labels, stats_path)
    print(f"augment: {summary_line(outcome)}; {rows} statistics row(s) in {stats_path}")
    return 1 if outcome["failed"] else 0
