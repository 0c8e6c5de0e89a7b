"""Batch LesionAugment in headless Slicer: shrink/grow the nodules of many label maps to a series of
exact volume percents, and optionally render each edited CT.

    Slicer --no-main-window --python-script Resources/Scripts/lesionaugment_batch.py -- \\
        --labelmaps maps/ --series 100,90,80,70,60,50 --out-dir aug/ [--nodule-id 0] [--method distance]
    Slicer --no-main-window --python-script Resources/Scripts/lesionaugment_batch.py -- \\
        --labelmaps cases.csv --series 75,50 --out-dir aug/ --render classic

``--labelmaps`` is a folder of MAISI label maps or a CSV with a ``labelmap`` column and, for
``--render``, a ``ct`` column (relative paths start at the CSV's folder); it is checked whole before
any case runs. Each label map is one case: ``<stem>_p<percent>.nii.gz`` per percent, with
``--render`` also ``<stem>_p<percent>_ct.nii.gz`` (the CT re-rendered by the model-free engine or
NodMAISI's ROI edit, weights from ``--weights``), and its rows in ``augment_stats.csv``. A re-run skips
finished cases; a failing case (missing or unreadable file, CT and label map on different grids) is
listed in ``failed.csv`` and the others go on. Exit status: 0 all done, 1 some failed, 2 bad input, 3 crash.
"""
import sys
from pathlib import Path

def read_cases(source, render):
    """``[(labelmap path, ct path or None)]`` from a folder or a CSV (checked whole)."""
    from NodMAISICommon.batch import read_case_table

    required = ["labelmap", "ct"] if render else ["labelmap"]
    cases = read_case_table(source, required, ["labelmap", "ct"], "" if render else "labelmap")
    return [(row["labelmap"], row.get("ct") or None) for _, row in cases]


def case_outputs(out_dir, stem, percents, render):
    from nodsynth.augment import percent_tag

    paths = []
    for percent in percents:
        paths.append(Path(out_dir) / f"{stem}_{percent_tag(percent)}.nii.gz")
        if render:
            paths.append(Path(out_dir) / f"{stem}_{percent_tag(percent)}_ct.nii.gz")
    return paths


def augment_case(logic, labelmap_path, ct_path, args, settings, out_dir):
    """One case through the module's Logic; returns its statistics rows."""
    from LesionAugmentLib.compute import stats_rows
    from NodMAISICommon.batch import CaseNodes, load_volume_node
    from NodMAISICommon.volumes import node_from_volume, volume_from_node
    from nodsynth.augment import percent_tag
    from nodsynth.io.volume_files import volume_stem, write_volume

    stem = volume_stem(str(labelmap_path))
    with CaseNodes():
        labelmap_node = load_volume_node(labelmap_path, label=True)
        ct_node = load_volume_node(ct_path) if args.render != "none" else None
        results = logic.resizeSeries(labelmap_node, args.nodule_id, args.percents, args.method)
        for result in results:
            name = f"{stem}_{percent_tag(result.percent)}"
            if ct_node is not None:
                edited_node = node_from_volume(result.labelmap, name, label=True)
                rendered = logic.renderNode(ct_node, labelmap_node, edited_node, args.render, settings,
                                            args.steps, args.seed, mode=args.render_mode)
                write_volume(volume_from_node(rendered), Path(out_dir) / f"{name}_ct.nii.gz")
            write_volume(result.labelmap, Path(out_dir) / f"{name}.nii.gz")
        return [{"labelmap": Path(labelmap_path).name, **row} for row in stats_rows(results)]


def run(argv):
    from LesionAugment import LesionAugmentLogic
    from LesionAugmentLib.compute import parse_percents
    from NodMAISICommon.batch import (add_manifest_option, argument_parser, BatchReport, output_folder,
                                      read_earlier_rows, require_options, run_manifest_file, unique_outputs)
    from NodMAISICommon.settings import EngineSettings, validated
    from nodsynth.io.atomic import write_csv_atomic
    from nodsynth.augment import DEFAULT_METHOD, METHODS, percent_tag
    from nodsynth.render.modes import DEFAULT_RENDER_MODE, RENDER_MODES
    from nodsynth.io.volume_files import volume_stem

    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--labelmaps", help="folder of label maps, or CSV (labelmap[,ct])")
    parser.add_argument("--series", help="comma-separated percents, e.g. 100,90,80 (nested)")
    parser.add_argument("--out-dir")
    parser.add_argument("--nodule-id", type=int, default=0, help="1-based nodule (component) id; 0: every nodule")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                        help="distance: exact volume (default); erosion: the reference algorithm; paper: the NodMAISI "
                             "paper's closest-mask rule")
    parser.add_argument("--render", default="none", choices=("none", "classic", "nodmaisi"),
                        help="also render each edited CT with this engine")
    parser.add_argument("--render-mode", default=DEFAULT_RENDER_MODE, choices=RENDER_MODES,
                        help="roi: the changed region inside the CT (default); twin: a whole new CT (nodmaisi)")
    parser.add_argument("--allow-baseline-controlnet", action="store_true",
                        help="let NodMAISI use MAISI-v2's baseline ControlNet when its own is missing")
    parser.add_argument("--weights", default="", help="weights folder (NodMAISI render)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    add_manifest_option(parser)
    args = parser.parse_args(argv)
    if args.manifest:
        return run_manifest_file(args.manifest, args.shard, getattr(args, "weights", ""))
    require_options(parser, args, ["labelmaps", "series", "out_dir"])
    args.percents = parse_percents(args.series)
    if args.nodule_id < 0:
        raise ValueError(f"--nodule-id must be >= 0, got {args.nodule_id}")
    settings = validated(EngineSettings(weights_dir=args.weights, device=args.device,
                                        allow_baseline_controlnet=args.allow_baseline_controlnet))
    cases = read_cases(args.labelmaps, args.render != "none")
    out_dir = output_folder(args.out_dir)
    unique_outputs([out_dir / f"{volume_stem(str(m))}_{percent_tag(args.percents[0])}.nii.gz" for m, _ in cases])
    logic = LesionAugmentLogic()
    stats_path = out_dir / "augment_stats.csv"
    report = BatchReport()
    rows = read_earlier_rows(stats_path)
    for labelmap_path, ct_path in cases:
        def work(labelmap_path=labelmap_path, ct_path=ct_path):
            new_rows = augment_case(logic, labelmap_path, ct_path, args, settings, out_dir)
            write_csv_atomic(stats_path, rows + new_rows, list(dict.fromkeys(k for r in rows + new_rows for k in r)))
            rows.extend(new_rows)
        stem = volume_stem(str(labelmap_path))
        report.run(Path(labelmap_path).name, case_outputs(out_dir, stem, args.percents, args.render != "none"), work)
    return report.finish(out_dir)


if __name__ == "__main__":
    from NodMAISICommon.batch import run_script

    run_script(run, sys.argv[1:])
