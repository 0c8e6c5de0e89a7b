"""Batch NodMAISI in headless Slicer: digital twins of many label maps, or ROI edits of many CTs.

    Slicer --no-main-window --python-script Resources/Scripts/nodmaisi_batch.py -- \\
        --mode twin --labelmaps maps/ --out-dir twins/ --weights ~/nodmaisi-weights [--steps 30 --seed 0]
    Slicer --no-main-window --python-script Resources/Scripts/nodmaisi_batch.py -- \\
        --mode edit --cases edits.csv --out-dir edited/ [--engine nodmaisi|classic]

``twin``: ``--labelmaps`` is a folder of MAISI label maps or a CSV with a ``labelmap`` column; each
gives ``<stem>_twin.nii.gz``. ``edit``: ``--cases`` is a CSV with ``ct,labelmap,edited`` columns (the
original CT, its label map and the edited label map); each gives ``<edited stem>_edit.nii.gz``, only
the region around the change re-synthesised. Relative paths start at the CSV's folder; the list is
checked whole before any case runs. A re-run skips finished cases; a failing case (missing or
unreadable file, grids that differ, a grid outside MAISI's limits) is listed in ``failed.csv`` and the
others go on. Exit status: 0 all done, 1 some failed, 2 bad input, 3 crash.
"""
import sys
from pathlib import Path

def output_path(out_dir, row, mode):
    from nodsynth.io.volume_files import volume_stem

    key = "labelmap" if mode == "twin" else "edited"
    return Path(out_dir) / f"{volume_stem(str(row[key]))}_{mode}.nii.gz"


def synthesize_case(logic, row, args, settings, options, out_path):
    """One case through the module's Logic."""
    from NodMAISICommon.batch import CaseNodes, load_volume_node
    from NodMAISICommon.volumes import volume_from_node
    from nodsynth.io.volume_files import write_volume

    with CaseNodes():
        if args.mode == "twin":
            output = logic.synthesizeNode(load_volume_node(row["labelmap"], label=True), args.engine, settings, options)
        else:
            output = logic.synthesizeNode(load_volume_node(row["edited"], label=True), args.engine, settings, options,
                                          originalNode=load_volume_node(row["ct"]),
                                          originalLabelmapNode=load_volume_node(row["labelmap"], label=True))
        write_volume(volume_from_node(output), out_path)


def run(argv):
    from NodMAISI import NodMAISILogic
    from NodMAISICommon.batch import (add_manifest_option, argument_parser, BatchReport, output_folder,
                                      read_case_table, require_options, run_manifest_file, unique_outputs)
    from NodMAISICommon.settings import EngineSettings, validated
    from NodMAISILib.compute import SynthesisOptions, parse_size, parse_spacing

    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("twin", "edit"))
    parser.add_argument("--labelmaps", help="twin: folder of label maps, or CSV with a 'labelmap' column")
    parser.add_argument("--cases", help="edit: CSV with 'ct,labelmap,edited' columns")
    parser.add_argument("--out-dir")
    parser.add_argument("--engine", default="nodmaisi", choices=("nodmaisi", "classic"))
    parser.add_argument("--weights", default="", help="weights folder (never downloaded)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--config", default="", help="network configuration (default: the published MAISI-v2)")
    parser.add_argument("--allow-baseline-controlnet", action="store_true",
                        help="use MAISI-v2's baseline ControlNet when the NodMAISI ControlNet is missing (NodMAISI "
                             "reports that the baseline misses sub-centimetre nodules)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-size", default="", help="twin: i,j,k voxels (default: the label map's)")
    parser.add_argument("--output-spacing", default="", help="twin: i,j,k mm (default: the label map's)")
    parser.add_argument("--resample", action="store_true", help="twin: resample a grid outside MAISI's limits")
    add_manifest_option(parser)
    args = parser.parse_args(argv)
    if args.manifest:
        return run_manifest_file(args.manifest, args.shard, getattr(args, "weights", ""))
    require_options(parser, args, ["mode", "out_dir"])
    if args.mode == "twin" and not args.labelmaps:
        raise ValueError("--mode twin needs --labelmaps")
    if args.mode == "edit" and not args.cases:
        raise ValueError("--mode edit needs --cases")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    settings = validated(EngineSettings(weights_dir=args.weights, device=args.device, network_config=args.config,
                                        allow_baseline_controlnet=args.allow_baseline_controlnet))
    options = SynthesisOptions(steps=args.steps, seed=args.seed, output_size_ijk=parse_size(args.output_size),
                               output_spacing_mm=parse_spacing(args.output_spacing), resample_to_valid=args.resample,
                               roi_only=args.mode == "edit")
    columns = ["labelmap"] if args.mode == "twin" else ["ct", "labelmap", "edited"]
    rows = [row for _, row in read_case_table(args.labelmaps if args.mode == "twin" else args.cases, columns,
                                                columns, "labelmap" if args.mode == "twin" else "")]
    out_dir = output_folder(args.out_dir)
    outputs = unique_outputs([output_path(out_dir, row, args.mode) for row in rows])
    logic = NodMAISILogic()
    report = BatchReport()
    for row, out_path in zip(rows, outputs):
        report.run(out_path.name, [out_path],
                   lambda row=row, out_path=out_path: synthesize_case(logic, row, args, settings, options, out_path))
    return report.finish(out_dir)


if __name__ == "__main__":
    from NodMAISICommon.batch import run_script

    run_script(run, sys.argv[1:])
