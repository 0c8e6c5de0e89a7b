"""``nodsynth segment``: segment nodules from a click or a PiNS box, one at a time or from a CSV.

* single: ``nodsynth segment --ct CT --point x,y,z [--ras] [--box w,h,d] --out mask.nii.gz [--json info.json]``
* batch:  ``nodsynth segment --csv annotations.csv --ct-dir DIR --out-dir DIR`` with the PiNS columns
  ``ct_nifti_file,nodule_id,coordX,coordY,coordZ,w,h,d`` (LPS mm; box in mm, 0 or empty = click only);
  writes ``<case>_<nodule_id>.nii.gz`` + ``.json`` per nodule and ``measurements.csv``; finished
  nodules are skipped when the command is run again.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Optional

from ...io.atomic import write_text_atomic
from ...io.tables import csv_reader
from ...errors import InputError
from ...measure import measure_nodule
from ...segment import METHODS, segment_nodule
from ...segment.contrast import MIN_CONTRAST_HU, no_nodule_error
from ...volume import Volume, ras_to_lps
from ...io.volume_files import read_volume, write_volume
from ..common import parse_triple, refuse_overwrite, run_batch, summary_line

VERB = "segment"
HELP = "segment lung nodules from a click (world mm) or a box: one, or every row of a PiNS CSV"
PINS_COLUMNS = ("ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ")
MEASUREMENTS_CSV = "measurements.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    single = parser.add_argument_group("single nodule")
    single.add_argument("--ct", type=Path, help="CT in Hounsfield units")
    single.add_argument("--point", help="click x,y,z in world mm (LPS, or RAS with --ras); write --point=-12,40,-80 "
                        "when it starts with a minus sign")
    single.add_argument("--ras", action="store_true", help="--point is RAS (3D Slicer) instead of LPS")
    single.add_argument("--box", help="box size w,h,d in mm centred on the point (PiNS convention)")
    single.add_argument("--out", type=Path, help="output mask (uint8 0/1 on the CT grid)")
    single.add_argument("--json", type=Path, help="also write segmentation info and measurements (JSON)")
    batch = parser.add_argument_group("batch (PiNS CSV)")
    batch.add_argument("--csv", type=Path, help="annotations with columns " + ",".join(PINS_COLUMNS) + ",w,h,d")
    batch.add_argument("--ct-dir", type=Path, help="folder holding the CSV's ct_nifti_file entries")
    batch.add_argument("--out-dir", type=Path, help="folder for the masks, per-nodule JSON and measurements.csv")
    options = parser.add_argument_group("segmentation")
    options.add_argument("--method", default="kmeans", choices=METHODS,
                         help="kmeans (default), gmm, fcm or otsu cluster the VOI; pins: the NodMAISI paper's seeds")
    options.add_argument("--lung", type=Path, help="lung mask (0/1) or MAISI label map on the CT grid: "
                         "restricts the nodule, adds lobe and pleural distance")
    options.add_argument("--expand-mm", type=float, default=0.0, help="grow the mask by this distance (mm)")
    options.add_argument("--no-fill-holes", action="store_true", help="keep enclosed holes")
    options.add_argument("--max-voi-mm", type=float, default=60.0, help="largest VOI edge (mm), default 60")
    options.add_argument("--force", action="store_true", help="keep a segmentation that hardly stands out from the "
                         f"lung around it (< {MIN_CONTRAST_HU:g} HU denser), refused as 'no nodule at this point'")


def run(args: argparse.Namespace) -> int:
    if args.csv is not None:
        if args.ct_dir is None or args.out_dir is None:
            raise InputError("batch mode needs --csv, --ct-dir and --out-dir")
        return run_batch_csv(args)
    if args.ct is None or args.point is None or args.out is None:
        raise InputError("give --ct, --point and --out (or --csv, --ct-dir and --out-dir for a batch)")
    return run_single(args)


def _segment_kwargs(args: argparse.Namespace) -> dict:
    return {"method": args.method, "expand_mm": args.expand_mm, "fill_holes": not args.no_fill_holes,
            "max_voi_mm": args.max_voi_mm}


def _lung_kwargs(lung: Optional[Volume]) -> dict:
    """``labelmap=`` for a MAISI label map (ids above 1), ``lung_mask=`` for a 0/1 mask."""
    if lung is None:
        return {}
    return {"labelmap": lung} if float(lung.array.max()) > 1 else {"lung_mask": lung}


def segment_and_measure(ct: Volume, point_lps, box_mm, lung: Optional[Volume], kwargs: dict, force: bool = False):
    """Segmentation result and measurements of one nodule (nothing written); a low-contrast mask
    (plain parenchyma) is refused unless ``force``."""
    result = segment_nodule(ct, point_lps, box_size_mm=box_mm, lung_mask=lung, **kwargs)
    if result.voxel_count == 0:
        raise InputError(f"no nodule found at {[round(float(v), 2) for v in point_lps]} mm (LPS)")
    if result.low_contrast and not force:
        raise no_nodule_error(point_lps, result.contrast_hu, "keep it with --force")
    return result, measure_nodule(ct, result.mask, **_lung_kwargs(lung))


def segment_single(args: argparse.Namespace):
    """Segment and measure the nodule at ``--point`` of ``--ct`` (nothing written)."""
    point = parse_triple(args.point, "--point")
    point_lps = ras_to_lps(point) if args.ras else point
    box = parse_triple(args.box, "--box") if args.box else None
    ct = read_volume(args.ct)
    lung = read_volume(args.lung) if args.lung else None
    return segment_and_measure(ct, point_lps, box, lung, _segment_kwargs(args), args.force)


def write_single(args: argparse.Namespace, result, measurements, mask_name: Optional[Path] = None) -> None:
    """Write the mask to ``--out`` and, when asked, segmentation info and measurements to ``--json``
    (which names the mask ``mask_name``, default ``--out``: a batch writes to a staging file first)."""
    write_volume(result.mask, args.out)
    if args.json is not None:
        info = {"ct": str(args.ct), "mask": str(mask_name or args.out), "segmentation": result.to_dict(),
                "measurements": measurements.to_dict()}
        write_text_atomic(args.json, json.dumps(info, indent=2) + "\n")


def run_single(args: argparse.Namespace) -> int:
    refuse_overwrite([args.json], [args.out])
    result, measurements = segment_single(args)
    write_single(args, result, measurements)
    print(f"wrote {args.out}: {result.voxel_count} voxels, {measurements.volume_mm3:.1f} mm3, "
          f"{measurements.subtype}, {result.seconds * 1e3:.0f} ms")
    return 0


# ---------------------------------------------------------------------------- batch
def read_pins_csv(path: Path) -> list[dict]:
    """Rows of a PiNS annotation CSV, checked for the required columns and numbers."""
    if not path.is_file():
        raise InputError(f"annotation CSV not found: {path}")
    reader = csv_reader(path, "annotation CSV")
    missing = [c for c in PINS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no annotations")
    for number, row in enumerate(rows, start=2):
        for column in ("coordX", "coordY", "coordZ"):
            try:
                float(row[column])
            except (TypeError, ValueError):
                raise InputError(f"{path} line {number}: {column} is not a number: {row[column]!r}") from None
    return rows


def _row_box_mm(row: dict) -> Optional[tuple[float, float, float]]:
    try:
        box = tuple(float(row.get(c) or 0) for c in ("w", "h", "d"))
    except ValueError:
        raise InputError(f"nodule {row['nodule_id']}: w,h,d must be numbers") from None
    return box if all(v > 0 for v in box) else None  # type: ignore[return-value]


def _case_name(row: dict) -> str:
    name = Path(row["ct_nifti_file"]).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{name}_{row['nodule_id']}"


class _CtCache:
    """Keeps the last CT read, so consecutive rows of one scan read it once."""

    def __init__(self) -> None:
        self.path: Optional[Path] = None
        self.volume: Optional[Volume] = None

    def get(self, path: Path) -> Volume:
        if path != self.path:
            self.volume, self.path = read_volume(path), path
        return self.volume  # type: ignore[return-value]


def run_batch_csv(args: argparse.Namespace) -> int:
    rows = read_pins_csv(args.csv)
    out_dir: Path = args.out_dir
    lung = read_volume(args.lung) if args.lung else None
    kwargs = _segment_kwargs(args)
    cache = _CtCache()

    def paths(row: dict) -> tuple[Path, Path]:
        return out_dir / f"{_case_name(row)}.nii.gz", out_dir / f"{_case_name(row)}.json"

    def is_done(row: dict) -> bool:
        return all(p.is_file() for p in paths(row))

    def work(row: dict) -> None:
        ct = cache.get(args.ct_dir / row["ct_nifti_file"])
        point = [float(row[c]) for c in ("coordX", "coordY", "coordZ")]
        result, measurements = segment_and_measure(ct, point, _row_box_mm(row), lung, kwargs, args.force)
        mask_path, json_path = paths(row)
        write_volume(result.mask, mask_path)
        info = {"ct_nifti_file": row["ct_nifti_file"], "nodule_id": row["nodule_id"], "mask": mask_path.name,
                "segmentation": result.to_dict(), "measurements": measurements.to_dict()}
        write_text_atomic(json_path, json.dumps(info, indent=2) + "\n")

    outcome = run_batch(rows, work, is_done, desc="segment", name=_case_name)
    write_measurements_csv(out_dir, [paths(r)[1] for r in rows])
    print(f"segment: {summary_line(outcome)}; measurements in {out_dir / MEASUREMENTS_CSV}")
    return 1 if outcome["failed"] else 0


def write_measurements_csv(out_dir: Path, json_paths: list[Path]) -> Optional[Path]:
    """Gather the per-nodule JSON files that exist into ``measurements.csv`` (atomic); None if none."""
    records = []
    for path in json_paths:
        if path.is_file():
            info = json.loads(path.read_text(encoding="utf-8"))
            flat = {"ct_nifti_file": info["ct_nifti_file"], "nodule_id": info["nodule_id"], "mask": info["mask"],
                    "method": info["segmentation"]["method"]}
            for key, value in info["measurements"].items():
                if key == "histogram":
                    continue
                if isinstance(value, list):
                    for axis, v in zip("xyz", value):
                        flat[f"{key}_{axis}"] = v
                else:
                    flat[key] = value
            records.append(flat)
    if not records:
        return None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return write_text_atomic(out_dir / MEASUREMENTS_CSV, buffer.getvalue())
