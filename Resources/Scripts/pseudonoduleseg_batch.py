"""Batch PseudoNoduleSeg in headless Slicer: one nodule mask per CSV row plus a measurements CSV.

    Slicer --no-main-window --python-script Resources/Scripts/pseudonoduleseg_batch.py -- \\
        --csv annotations.csv --ct-dir cts/ --out-dir masks/ [--method kmeans] [--expand-mm 0]

The CSV has the PiNS columns ``ct_nifti_file,nodule_id,coordX,coordY,coordZ`` (world centre, LPS mm;
``w,h,d`` may be present and are not needed: the click is enough). For each nodule the script writes
``<out-dir>/<ct stem>_<nodule_id>.nii.gz`` (0/1 on the CT grid) and appends its measurements to
``<out-dir>/measurements.csv``. Finished masks are skipped on a re-run; every file is written atomically.
"""
import argparse
import csv
import io
import sys
from collections import OrderedDict
from pathlib import Path

REQUIRED_COLUMNS = ("ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ")


def read_annotations(csv_path):
    """``{ct file name: [(nodule id, (x, y, z) LPS mm), ...]}`` in file order; raises naming a bad row."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing columns {missing}; need {', '.join(REQUIRED_COLUMNS)}")
        by_ct = OrderedDict()
        for line, row in enumerate(reader, start=2):
            try:
                point = tuple(float(row[c]) for c in ("coordX", "coordY", "coordZ"))
            except ValueError as exc:
                raise ValueError(f"{csv_path}, line {line}: coordinates must be numbers ({exc})") from exc
            nodule_id = row["nodule_id"].strip()
            if not nodule_id or any(ch in nodule_id for ch in "/\\"):
                raise ValueError(f"{csv_path}, line {line}: invalid nodule_id {row['nodule_id']!r}")
            by_ct.setdefault(row["ct_nifti_file"].strip(), []).append((nodule_id, point))
    return by_ct


def mask_path(out_dir, ct_file, nodule_id):
    """Output mask path of one nodule: ``<out-dir>/<ct stem>_<nodule id>.nii.gz``."""
    stem = Path(ct_file).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return Path(out_dir) / f"{stem}_{nodule_id}.nii.gz"


def read_measurements(path):
    """Rows of an earlier run's measurements CSV (kept on a resumed run), or ``[]``."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


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


def run(args):
    import slicer

    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.segments import read_segment
    from nodsynth.atomic import write_text_atomic
    from nodsynth.volume import write_volume
    from PseudoNoduleSegLib.compute import SegmentOptions, segment_points
    from PseudoNoduleSeg import PseudoNoduleSegLogic

    logic = PseudoNoduleSegLogic()
    options = SegmentOptions(method=args.method, expand_mm=args.expand_mm).checked()
    table_path = Path(args.out_dir) / "measurements.csv"
    all_rows = read_measurements(table_path)
    failed = 0
    for ct_file, nodules in read_annotations(args.csv).items():
        todo = [(nid, p) for nid, p in nodules if not mask_path(args.out_dir, ct_file, nid).exists()]
        if not todo:
            print(f"{ct_file}: all {len(nodules)} masks exist, skipped")
            continue
        ctNode = slicer.util.loadVolume(str(Path(args.ct_dir) / ct_file))
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodules")
        for nodule_id, point_lps in todo:
            add_control_point_lps(points, ctNode, point_lps, nodule_id)
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
        try:
            ct, pts, options, lung, indices = logic.prepareJob(ctNode, points, options)
            outcomes = segment_points(ct, pts, options, lung, indices)
            rows = logic.writeOutcomes(outcomes, ctNode, points, segmentation)
            for index, row in zip(indices, rows):
                mask = read_segment(segmentation, logic.segmentId(points, index), ctNode)
                write_volume(mask, mask_path(args.out_dir, ct_file, points.GetNthControlPointLabel(index)))
                all_rows.append({"ct_nifti_file": ct_file, "nodule_id": points.GetNthControlPointLabel(index), **row})
            print(f"{ct_file}: {len(rows)} nodule(s) segmented")
        except Exception as exc:  # one bad CT must not stop the batch
            failed += 1
            print(f"{ct_file}: FAILED: {exc}", file=sys.stderr)
        finally:
            for node in (ctNode, points, segmentation):
                slicer.mrmlScene.RemoveNode(node)
    if all_rows:
        write_text_atomic(table_path, measurements_csv_text(all_rows))
    return 1 if failed else 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True, help="annotation CSV (PiNS columns)")
    parser.add_argument("--ct-dir", required=True, help="folder of the CT files named in the CSV")
    parser.add_argument("--out-dir", required=True, help="folder for the masks and measurements.csv")
    parser.add_argument("--method", default="kmeans", choices=("kmeans", "gmm", "fcm", "otsu", "pins"))
    parser.add_argument("--expand-mm", type=float, default=0.0)
    return parser.parse_args([a for a in argv if a != "--"])


if __name__ == "__main__":
    import slicer

    code = run(parse_args(sys.argv[1:]))
    slicer.util.exit(code)
