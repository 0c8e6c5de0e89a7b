"""Batch PseudoNoduleSeg in headless Slicer: one nodule mask per CSV row plus a measurements CSV.

    Slicer --no-main-window --python-script Resources/Scripts/pseudonoduleseg_batch.py -- \\
        --csv annotations.csv --ct-dir cts/ --out-dir masks/ [--method kmeans] [--expand-mm 0]

The CSV has the PiNS columns ``ct_nifti_file,nodule_id,coordX,coordY,coordZ`` (world centre, LPS mm;
``w,h,d`` may be present and are not needed: the click is enough) and optionally ``lung_file``, a
MAISI label map or lung mask on the CT's grid (relative to ``--ct-dir``) that adds the lobe and the
pleural distance to the measurements; it is checked whole before any case runs. Each CT is one case: ``<out-dir>/<ct stem>_<nodule_id>.nii.gz`` (0/1 on the CT grid) for
each of its nodules, and their rows in ``<out-dir>/measurements.csv``. A re-run skips CTs whose masks
all exist; a CT that fails (missing, unreadable) is listed in ``failed.csv`` and the others go on.
Slicer exits with 0 when every CT succeeded, 1 when some failed, 2 on bad input, 3 on a crash.
"""
import csv
import io
import sys
from collections import OrderedDict
from pathlib import Path

REQUIRED_COLUMNS = ("ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ")


def read_annotations(csv_path):
    """``({ct file name: [(nodule id, (x, y, z) LPS mm), ...]}, {ct file name: lung file or None})`` in
    file order; raises naming a bad row."""
    import math

    from NodMAISICommon.batch import read_case_table
    from nodsynth.errors import InputError

    by_ct, lungs = OrderedDict(), {}
    for line, row in read_case_table(csv_path, REQUIRED_COLUMNS):
        try:
            point = tuple(float(row[c]) for c in ("coordX", "coordY", "coordZ"))
        except ValueError as exc:
            raise InputError(f"{csv_path}, line {line}: coordinates must be numbers ({exc})") from exc
        if not all(math.isfinite(v) for v in point):
            raise InputError(f"{csv_path}, line {line}: coordinates must be finite, got {point}")
        nodule_id, ct_file = row["nodule_id"], row["ct_nifti_file"]
        if any(ch in nodule_id for ch in "/\\") or nodule_id in (".", ".."):
            raise InputError(f"{csv_path}, line {line}: invalid nodule_id {nodule_id!r}")
        if any(nid == nodule_id for nid, _ in by_ct.get(ct_file, [])):
            raise InputError(f"{csv_path}, line {line}: nodule_id {nodule_id!r} repeats for {ct_file}")
        lung = row.get("lung_file") or None
        if lungs.setdefault(ct_file, lung) != lung:
            raise InputError(f"{csv_path}, line {line}: {ct_file} is given two lung files")
        by_ct.setdefault(ct_file, []).append((nodule_id, point))
    return by_ct, lungs


def mask_path(out_dir, ct_file, nodule_id):
    """Output mask path of one nodule: ``<out-dir>/<ct stem>_<nodule id>.nii.gz``."""
    from nodsynth.io.volume_files import volume_stem

    return Path(out_dir) / f"{volume_stem(ct_file)}_{nodule_id}.nii.gz"


def measurements_csv_text(rows):
    """CSV text of measurement dicts (the union of their keys as columns; vectors as x;y;z)."""
    columns = list(OrderedDict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
                         for k, value in row.items()})
    return out.getvalue()


def segment_ct(logic, ct_path, nodules, lung_path, parameters, out_dir):
    """One case: segment every nodule of one CT through the module's Logic; returns its table rows."""
    import slicer

    from NodMAISICommon.batch import CaseNodes, load_volume_node
    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.segments import read_segment
    from nodsynth.io.volume_files import write_volume

    with CaseNodes():
        ct_node = load_volume_node(ct_path)
        parameters.lungVolume = load_volume_node(lung_path, label=True) if lung_path else None
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodules")
        for nodule_id, point_lps in nodules:
            add_control_point_lps(points, ct_node, point_lps, nodule_id)
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
        rows = logic.segmentPoints(ct_node, points, segmentation, parameters)
        out = []
        for index, row in enumerate(rows):
            nodule_id = points.GetNthControlPointLabel(index)
            mask = read_segment(segmentation, logic.segmentId(points, index), ct_node)
            write_volume(mask, mask_path(out_dir, Path(ct_path).name, nodule_id))
            out.append({"ct_nifti_file": Path(ct_path).name, "nodule_id": nodule_id, **row})
        return out


def run(argv):
    from NodMAISICommon.batch import (add_manifest_option, argument_parser, BatchReport, output_folder,
                                      read_earlier_rows, require_options, run_manifest_file)
    from nodsynth.io.atomic import write_text_atomic
    from PseudoNoduleSeg import PseudoNoduleSegLogic
    from PseudoNoduleSegLib.compute import METHODS

    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--csv", help="annotation CSV (PiNS columns)")
    parser.add_argument("--ct-dir", help="folder of the CT files named in the CSV")
    parser.add_argument("--out-dir", help="folder for the masks, measurements.csv and failed.csv")
    parser.add_argument("--method", default="kmeans", choices=METHODS)
    parser.add_argument("--expand-mm", type=float, default=0.0, help="grow each mask by this distance (mm)")
    add_manifest_option(parser)
    args = parser.parse_args(argv)
    if args.manifest:
        return run_manifest_file(args.manifest, args.shard, getattr(args, "weights", ""))
    require_options(parser, args, ["csv", "ct_dir", "out_dir"])
    annotations, lungs = read_annotations(args.csv)
    out_dir = output_folder(args.out_dir)
    logic = PseudoNoduleSegLogic()
    parameters = logic.getParameterNode()
    parameters.method, parameters.expandMm = args.method, args.expand_mm
    table_path = out_dir / "measurements.csv"
    rows = read_earlier_rows(table_path)
    report = BatchReport()
    for ct_file, nodules in annotations.items():
        def work(ct_file=ct_file, nodules=nodules):
            lung = Path(args.ct_dir) / lungs[ct_file] if lungs[ct_file] else None
            new_rows = segment_ct(logic, Path(args.ct_dir) / ct_file, nodules, lung, parameters, out_dir)
            write_text_atomic(table_path, measurements_csv_text(rows + new_rows))
            rows.extend(new_rows)
        report.run(ct_file, [mask_path(out_dir, ct_file, nid) for nid, _ in nodules], work)
    return report.finish(out_dir)


if __name__ == "__main__":
    from NodMAISICommon.batch import run_script

    run_script(run, sys.argv[1:])
