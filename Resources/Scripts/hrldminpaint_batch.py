"""Batch HRLDMInpaint in headless Slicer: insert one nodule per row of a placement CSV.

    Slicer --no-main-window --python-script Resources/Scripts/hrldminpaint_batch.py -- \\
        --placements placements.csv --out-dir inserted/ [--engine hrldm|classic] [--weights ~/w]

Placement CSV (relative paths start at its folder; checked whole before any case runs):
``case_id,ct`` and either ``coordX,coordY,coordZ`` (nodule centre, LPS mm) or ``sample`` (``inner`` or
``subpleural``: a centre drawn where the nodule fits); optional ``lung`` (a MAISI label map or lung mask
on the CT grid), ``diameter_mm`` (default 10), ``subtype`` (solid, part-solid, ground-glass; default
solid), ``seed`` (default ``--seed``). Each row gives ``<case_id>.nii.gz`` (the CT with the nodule) and
``<case_id>_mask.nii.gz``. A re-run skips finished rows; a failing row (missing or unreadable file,
a lung map on another grid, no room for the nodule) is listed in ``failed.csv`` and the others go on.
Exit status: 0 all done, 1 some failed, 2 bad input, 3 crash.
"""
import sys
from pathlib import Path

PLACEMENT_COLUMNS = ("coordX", "coordY", "coordZ")
SAMPLED = ("inner", "subpleural")


def read_placements(source, default_seed):
    """``[(case id, row)]`` with the row's values parsed; raises naming a bad row."""
    import math

    from NodMAISICommon.batch import read_case_table
    from nodsynth.engines import subtype_index, SUBTYPES
    from nodsynth.errors import InputError

    placements, seen = [], set()
    for line, row in read_case_table(source, ("case_id", "ct"), ("ct", "lung")):
        where = f"{source}, line {line}"
        case_id = row["case_id"]
        if any(ch in case_id for ch in "/\\") or case_id in (".", "..") or case_id in seen:
            raise InputError(f"{where}: case_id {case_id!r} is invalid or repeats")
        seen.add(case_id)
        has_point = all(row.get(c) for c in PLACEMENT_COLUMNS)
        if has_point == bool(row.get("sample")):
            raise InputError(f"{where}: give either coordX,coordY,coordZ or sample ({' or '.join(SAMPLED)})")
        try:
            point = tuple(float(row[c]) for c in PLACEMENT_COLUMNS) if has_point else None
            diameter = float(row.get("diameter_mm") or 10.0)
            seed = int(row.get("seed") or default_seed)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from exc
        if point is not None and not all(math.isfinite(v) for v in point):
            raise InputError(f"{where}: coordinates must be finite, got {point}")
        if not has_point and row["sample"] not in SAMPLED:
            raise InputError(f"{where}: sample must be {' or '.join(SAMPLED)}, got {row['sample']!r}")
        if not 3.0 <= diameter <= 40.0:
            raise InputError(f"{where}: diameter_mm must be within 3..40, got {diameter}")
        subtype = SUBTYPES[subtype_index(row.get("subtype") or "solid")]
        placements.append((case_id, {"ct": row["ct"], "lung": row.get("lung") or None, "point": point,
                                     "sample": row.get("sample") or None, "diameter_mm": diameter,
                                     "subtype": subtype, "seed": seed}))
    return placements


def inpaint_case(logic, parameters, placement, args, settings, out_dir, case_id):
    """One row through the module's Logic and its parameter node."""
    import slicer

    from NodMAISICommon.batch import CaseNodes, load_volume_node
    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.segments import read_segment
    from NodMAISICommon.volumes import volume_from_node
    from nodsynth.io.volume_files import write_volume

    with CaseNodes():
        p = parameters
        p.inputVolume = load_volume_node(placement["ct"])
        p.lungVolume = load_volume_node(placement["lung"], label=True) if placement["lung"] else None
        p.targetPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodule centre")
        p.diameterMm, p.subtype, p.seed = placement["diameter_mm"], placement["subtype"], placement["seed"]
        p.engine, p.sampler, p.steps, p.histogramSource = args.engine, args.sampler, args.steps, args.histogram
        p.outputVolume, p.outputSegmentation = None, None
        if placement["point"] is not None:
            add_control_point_lps(p.targetPoints, p.inputVolume, placement["point"], "Nodule centre")
        else:
            p.placement = placement["sample"]
            logic.sampleLocation(p)
        ct_node, segmentation = logic.inpaintNode(p, settings)
        mask = read_segment(segmentation, "InsertedNodule", p.inputVolume)
        write_volume(volume_from_node(ct_node), Path(out_dir) / f"{case_id}.nii.gz")
        write_volume(mask, Path(out_dir) / f"{case_id}_mask.nii.gz")


def run(argv):
    from HRLDMInpaint import HRLDMInpaintLogic
    from NodMAISICommon.batch import (add_manifest_option, argument_parser, BatchReport, output_folder,
                                      require_options, run_manifest_file)
    from HRLDMInpaintLib.compute import HISTOGRAM_SOURCES
    from NodMAISICommon.settings import EngineSettings, validated
    from nodsynth.engines.base import DEFAULT_INPAINT_SAMPLER, DEFAULT_INPAINT_STEPS, INPAINT_SAMPLERS

    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--placements", help="placement CSV (see the script's docstring)")
    parser.add_argument("--out-dir")
    parser.add_argument("--engine", default="hrldm", choices=("hrldm", "classic"))
    parser.add_argument("--sampler", default=DEFAULT_INPAINT_SAMPLER, choices=INPAINT_SAMPLERS,
                        help="ddpm: as published, 1000 steps (default); ddim: the fast option, 50 steps")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the sampler's, 1000 or 50)")
    parser.add_argument("--histogram", default=HISTOGRAM_SOURCES[0], choices=HISTOGRAM_SOURCES[:2],
                        help="library: a real LIDC nodule's of the subtype and size (default); preset: the subtype mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="", help="weights folder (never downloaded)")
    parser.add_argument("--device", default="auto")
    add_manifest_option(parser)
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = DEFAULT_INPAINT_STEPS[args.sampler]
    if args.manifest:
        return run_manifest_file(args.manifest, args.shard, getattr(args, "weights", ""))
    require_options(parser, args, ["placements", "out_dir"])
    if not 1 <= args.steps <= 1000:
        raise ValueError(f"--steps must be within 1..1000, got {args.steps}")
    settings = validated(EngineSettings(weights_dir=args.weights, device=args.device))
    placements = read_placements(args.placements, args.seed)
    out_dir = output_folder(args.out_dir)
    logic = HRLDMInpaintLogic()
    parameters = logic.getParameterNode()
    report = BatchReport()
    for case_id, placement in placements:
        outputs = [out_dir / f"{case_id}.nii.gz", out_dir / f"{case_id}_mask.nii.gz"]
        report.run(case_id, outputs, lambda case_id=case_id, placement=placement: inpaint_case(
            logic, parameters, placement, args, settings, out_dir, case_id))
    return report.finish(out_dir)


if __name__ == "__main__":
    from NodMAISICommon.batch import run_script

    run_script(run, sys.argv[1:])
