"""``nodsynth augment``: shrink or grow nodules in MAISI label maps to exact volume percents.

Input: one label map file, a MAISI/CaNA dataset JSON (``{"training": [{"label": "..."}, ...]}``) or
a CSV manifest with a ``label`` column. For each map and each percent it writes
``<name>_p<percent>.nii.gz`` to ``--out`` plus a per-map statistics CSV, then one combined
statistics CSV (``--stats``, default ``<out>/augment_stats.csv``). Maps whose outputs all exist are
skipped, so an interrupted batch resumes where it stopped.

``--render [roi|twin]`` also writes the CT of every augmented map, ``<name>_p<percent>_ct.nii.gz``
(:mod:`nodsynth.render.modes`): ``roi`` (the default) edits the original CT (``--ct``, or a ``ct``
entry / column of the manifest) around the change and keeps the rest bit-identical; ``twin`` renders
a whole new CT from the augmented map, as the NodMAISI paper does (NodMAISI engine).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ...io.atomic import write_csv_atomic
from ...io.tables import csv_dicts, read_json
from ...augment import DEFAULT_METHOD, METHODS, ResizeResult, check_percent, percent_tag, resize_series
from ...errors import InputError
from ...labelmap import load_labelmap
from ...render.modes import DEFAULT_RENDER_MODE, DEFAULT_RENDER_STEPS, RENDER_MODES, render_edited
from ...io.volume_files import VOLUME_SUFFIXES, read_volume, volume_stem, write_volume
from ..common import parse_triple, progress_bar, run_batch, summary_line
from ..engine_args import add_engine_arguments, engine_from_args

VERB = "augment"
HELP = "shrink or grow nodules (label 23) of MAISI label maps to exact volume percents, with lobe refill"

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
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                        help="'distance' (exact volume, default), 'paper' (the NodMAISI paper's Algorithm 1: the "
                             "erosion/dilation closest to the target) or 'erosion' (the CaNA reference, for comparison)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder that relative paths in a JSON/CSV manifest start from (default: its folder)")
    parser.add_argument("--stats", type=Path, default=None,
                        help="combined statistics CSV (default <out>/augment_stats.csv)")
    render = parser.add_argument_group("CT render")
    render.add_argument("--render", nargs="?", const=DEFAULT_RENDER_MODE, choices=RENDER_MODES, default=None,
                        help=f"also write each augmented map's CT: '{DEFAULT_RENDER_MODE}' (default) edits the original "
                             "CT around the change, the rest bit-identical; 'twin' synthesises a whole new CT "
                             "(NodMAISI paper)")
    render.add_argument("--ct", type=Path, help="original CT of a single label map (needed by --render roi)")
    render.add_argument("--steps", type=int, default=DEFAULT_RENDER_STEPS,
                        help=f"NodMAISI sampling steps (default {DEFAULT_RENDER_STEPS})")
    render.add_argument("--seed", type=int, default=0, help="noise seed of the render")
    render.add_argument("--resample", action="store_true",
                        help="twin: resample a grid outside MAISI's limits to a valid one, and the CT back")
    add_engine_arguments(parser, operations=("edit", "twin"))


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


def manifest_cases(path: Path, data_root: Path | None) -> list[tuple[Path, Optional[Path]]]:
    """``(label map, CT or None)`` listed by a dataset JSON or CSV manifest (relative to ``data_root``).

    The CT comes from an entry's ``ct`` key (JSON) or ``ct`` column (CSV) when present.
    """
    root = data_root or path.parent
    if path.suffix.lower() == ".json":
        data = read_json(path, "manifest")
        entries = [e for key in DATASET_KEYS for e in (data.get(key) or [])] if isinstance(data, dict) else []
        if not entries or not all(isinstance(e, dict) and "label" in e for e in entries):
            raise InputError(f"{path}: expected {{\"training\": [{{\"label\": ...}}, ...]}} with a 'label' per entry")
        names = [(str(e["label"]), e.get("ct")) for e in entries]
    else:
        rows = csv_dicts(path, "manifest")
        if not rows or "label" not in rows[0]:
            raise InputError(f"{path}: a CSV manifest needs a 'label' column")
        names = [(r["label"], r.get("ct") or None) for r in rows]
    return [(_resolve(root, label), _resolve(root, ct) if ct else None) for label, ct in names]


def _resolve(root: Path, name: str) -> Path:
    return Path(name) if Path(name).is_absolute() else root / name


def input_cases(args: argparse.Namespace) -> list[tuple[Path, Optional[Path]]]:
    """``(label map, CT or None)`` of every input map."""
    path: Path = args.input
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    if path.name.lower().endswith(VOLUME_SUFFIXES):
        return [(path, args.ct)]
    if path.suffix.lower() in (".json", ".csv"):
        if args.ct:
            raise InputError("--ct goes with a single label map; in a manifest give each entry a 'ct' "
                             "(JSON key or CSV column)")
        return manifest_cases(path, args.data_root)
    raise InputError(f"{path}: expected a label map ({', '.join(VOLUME_SUFFIXES)}), a dataset JSON or a CSV")


def check_render(args: argparse.Namespace, cases: list[tuple[Path, Optional[Path]]]) -> None:
    """Refuse a render that cannot run, before anything is written."""
    if args.render == "twin" and args.engine == "classic":
        raise InputError("--render twin synthesises a whole CT: use --engine nodmaisi (the model-free engine "
                         "only edits a CT, --render roi)")
    if args.render == "roi":
        missing = [label.name for label, ct in cases if ct is None]
        if missing:
            raise InputError(f"--render roi edits the original CT: give it with --ct (or a 'ct' manifest entry); "
                             f"missing for {', '.join(missing[:5])}")


def output_paths(out: Path, label: Path, percents: list[float]) -> list[Path]:
    return [out / f"{volume_stem(label)}_{percent_tag(p)}.nii.gz" for p in percents]


def ct_paths(out: Path, label: Path, percents: list[float]) -> list[Path]:
    return [out / f"{volume_stem(label)}_{percent_tag(p)}_ct.nii.gz" for p in percents]


def stats_rows(case: str, results: list[ResizeResult]) -> list[dict]:
    rows = []
    for result in results:
        for stats in result.nodules:
            rows.append({"case": case, "method": result.method, **stats.as_row(),
                         "seconds": round(result.seconds, 4)})
    return rows


def augment_one(case: tuple[Path, Optional[Path]], args: argparse.Namespace, percents: list[float], nodule,
                engine=None) -> None:
    """Resize one map for every percent; write the maps (and their CTs with ``--render``) and their
    statistics CSV (last: marks it done)."""
    label, ct_path = case
    labelmap = load_labelmap(label)
    results = resize_series(labelmap, nodule, percents, method=args.method,
                            progress=progress_bar(volume_stem(label)))
    for result, path in zip(results, output_paths(args.out, label, percents)):
        write_volume(result.labelmap, path)
    if args.render:
        ct = read_volume(ct_path) if ct_path else None
        for result, path in zip(results, ct_paths(args.out, label, percents)):
            rendered = render_edited(engine, result.labelmap, args.render, ct=ct, labelmap=labelmap,
                                     steps=args.steps, seed=args.seed, resample_to_valid=args.resample,
                                     progress=progress_bar(f"{volume_stem(label)} {args.render}"))
            write_volume(rendered.ct, path, metadata=rendered.file_metadata())
    write_csv_atomic(args.out / f"{volume_stem(label)}{STATS_SUFFIX}", stats_rows(volume_stem(label), results))


def is_done(label: Path, args: argparse.Namespace, percents: list[float]) -> bool:
    paths = output_paths(args.out, label, percents) + [args.out / f"{volume_stem(label)}{STATS_SUFFIX}"]
    if args.render:
        paths += ct_paths(args.out, label, percents)
    return all(p.is_file() for p in paths)


def combined_stats(out: Path, labels: list[Path], target: Path) -> int:
    """Concatenate the per-map statistics CSVs of ``labels`` into ``target``; returns the row count."""
    rows = []
    for label in labels:
        path = out / f"{volume_stem(label)}{STATS_SUFFIX}"
        if path.is_file():
            rows.extend(csv_dicts(path, "statistics table"))
    if rows:
        write_csv_atomic(target, rows)
    return len(rows)


def run(args: argparse.Namespace) -> int:
    percents = parse_percents(args)
    nodule = parse_nodule(args.nodule)
    cases = input_cases(args)
    if args.ct and not args.render:
        raise InputError("--ct is the CT to render: add --render (roi or twin)")
    check_render(args, cases)
    engine = engine_from_args(args) if args.render else None
    labels = [label for label, _ in cases]
    stats_path = args.stats or args.out / "augment_stats.csv"
    if len(cases) == 1 and labels[0] == args.input:
        if not is_done(labels[0], args, percents):
            augment_one(cases[0], args, percents, nodule, engine)
        rows = combined_stats(args.out, labels, stats_path)
        rendered = f" and their CTs ({args.render})" if args.render else ""
        print(f"wrote {len(percents)} label map(s){rendered} and {rows} statistics row(s) to {args.out}")
        return 0
    outcome = run_batch(cases, lambda case: augment_one(case, args, percents, nodule, engine),
                        lambda case: is_done(case[0], args, percents), desc="augment",
                        name=lambda case: volume_stem(case[0]))
    rows = combined_stats(args.out, labels, stats_path)
    print(f"augment: {summary_line(outcome)}; {rows} statistics row(s) in {stats_path}")
    return 1 if outcome["failed"] else 0
