"""``nodsynth cohort``: synthetic cohorts by design.

``cohort plan SPEC.json --out DIR`` writes ``DIR/cohort.csv`` (one row per planned nodule) and
``DIR/manifest.jsonl`` (a ``nodsynth batch`` manifest: one ``cohort_case`` job per case), or refuses a spec
that cannot be met, naming the constraint, before writing anything. Diameters are equivalent-sphere
diameters (mm): the sphere of the nodule's volume, as ``nodsynth measure`` reports.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from ...cohort.export import FORMATS
from ...errors import InputError
from ..common import progress_bar, refuse_overwrite

VERB = "cohort"
HELP = "plan a synthetic cohort (counts per subtype and size bin) as a batch manifest, export and report it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    plan = sub.add_parser("plan", help="place every nodule a cohort spec asks for and write cohort.csv and a manifest",
                          description="plan a cohort: counts per subtype and equivalent-sphere diameter bin (mm), "
                                      "sub-pleural share, nodules per CT, clearances; see nodsynth.cohort.spec")
    plan.add_argument("spec", type=Path, help="cohort spec (JSON)")
    plan.add_argument("--out", type=Path, required=True,
                      help="folder for cohort.csv and manifest.jsonl (new, empty, or an earlier plan's)")
    export = sub.add_parser("export", help="write a made cohort as a training set (MONAI detection, LUNA16, "
                                           "nnU-Net v2, classification) or as DICOM (per case a CT series, SEG and "
                                           "TID 1500 SR, marked synthetic, a new de-identified patient) with a "
                                           "provenance sidecar")
    export.add_argument("folder", type=Path, help="the plan folder, after nodsynth batch run made its cases")
    export.add_argument("--format", required=True, choices=FORMATS, help="training-set layout")
    export.add_argument("--out", type=Path, required=True,
                        help="new folder to write (nnunet: the raw dataset folder Dataset<ID>_<name>)")
    export.add_argument("--dataset-id", type=int, help="nnunet: the dataset ID (1..999) in the folder's name")
    recipe = sub.add_parser("recipe", help="plan the NodMAISI recipe: every nodule shrunk by Algorithm 1, then a twin "
                                           "per shrunken label map",
                            description="the NodMAISI recipe as a batch manifest: augment --method paper (at most "
                                        "50 steps) of every nodule to --percent, then a NodMAISI twin of each map")
    recipe.add_argument("--labelmaps", type=Path, nargs="+", required=True, help="source MAISI label maps")
    recipe.add_argument("--percent", type=float, required=True, help="volume percent every nodule is shrunk to")
    recipe.add_argument("--seed", type=int, default=0, help="twin noise seed (default 0)")
    recipe.add_argument("--qc-stats", type=Path, help="nodsynth qc stats file: twins regenerated while they fail")
    recipe.add_argument("--max-tries", type=int, help="twin tries with --qc-stats (default: the twin verb's)")
    recipe.add_argument("--nodules", type=Path,
                        help="per-nodule table (CSV: labelmap, coordX, coordY, coordZ in LPS mm, label; optional "
                             "patient_id, subtype): each shrunken nodule inherits the label, donor patient and subtype "
                             "of the real nodule holding (or nearest within 5 mm of) its row's point; without it the "
                             "label is empty and the donor patient is the source's (the label map's file stem)")
    recipe.add_argument("--licence", help="licence of the source label maps, for the exports' provenance "
                                          "(the DLCS maps: CC BY-NC 4.0)")
    recipe.add_argument("--out", type=Path, required=True,
                        help="folder for cohort.csv (one row per shrunken nodule), cohort.json, manifest.jsonl and "
                             "the outputs (new, empty, or an earlier plan's)")
    shapes = sub.add_parser("shapes", help="build the real-shape library from LIDC nodule masks (subtype, "
                                           "malignancy and patient per shape)")
    shapes.add_argument("--vois", type=Path, required=True, help="lidc_vois folder (nodule_mask/, nodules.csv)")
    shapes.add_argument("--out", type=Path, required=True, help="library to write (.npz; its .json index beside it)")
    report = sub.add_parser("report", help="planned vs measured per nodule, counts per bin, QC verdicts (CSV + HTML)")
    report.add_argument("folder", type=Path, help="the plan folder, after nodsynth batch run made its cases")
    report.add_argument("--out", type=Path, required=True, help="folder for report.csv, bins.csv and report.html")


def _plan_folder(out: Path) -> None:
    """Refuse an output that is a file, or a folder holding other things than an earlier plan."""
    from ...cohort.plan import PLAN_FILES

    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / PLAN_FILES[0]).is_file())):
        raise InputError(f"--out {out} exists and is not an empty folder or an earlier cohort plan; choose a new folder")


def run_plan(args: argparse.Namespace) -> int:
    from ...cohort.plan import plan_cohort, write_plan
    from ...cohort.spec import read_spec

    _plan_folder(args.out)
    spec = read_spec(args.spec)
    cases = plan_cohort(spec, progress=progress_bar("cohort plan"))
    manifest = write_plan(spec, cases, args.out)
    counts = Counter(n.location for c in cases for n in c.nodules)
    print(f"wrote {args.out}: {spec.total} nodules ({counts['inner']} inner, {counts['subpleural']} sub-pleural) in "
          f"{len(cases)} cases over {len(spec.sources)} source(s); next: nodsynth batch run {manifest}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ...cohort.export import check_nnunet_folder, export_cohort
    from ...cohort.made import made_cases

    if args.format == "nnunet":
        check_nnunet_folder(args.out, args.dataset_id)
    if args.format == "dicom":
        from ...io.dicom.seg import highdicom_module

        highdicom_module()  # refused before any work when the package is missing
    folder = args.folder.absolute()
    if folder == args.out.absolute() or folder in args.out.absolute().parents:
        raise InputError(f"--out {args.out} must lie outside the plan folder {args.folder}")
    cases = made_cases(args.folder)
    export_cohort(cases, args.format, args.out)
    print(f"wrote {args.out}: {args.format}, {len(cases)} synthetic case(s), "
          f"{sum(len(c.nodules) for c in cases)} nodule(s); provenance in {args.out / 'provenance.json'}")
    return 0


def run_recipe(args: argparse.Namespace) -> int:
    from ...augment import check_percent
    from ...cohort.recipe import write_recipe

    check_percent(args.percent)
    _plan_folder(args.out)
    manifest, rows = write_recipe(args.labelmaps, args.percent, args.out, args.seed, args.qc_stats, args.max_tries,
                                  args.nodules, args.licence, progress=progress_bar("cohort recipe"))
    labelled = sum(bool(r["label"]) for r in rows)
    print(f"wrote {args.out}: {len(rows)} nodule(s) of {len(args.labelmaps)} label map(s) ({labelled} with a label): "
          f"augment (paper, {args.percent:g} %) then twin; next: nodsynth batch run {manifest}")
    return 0


def run_shapes(args: argparse.Namespace) -> int:
    from ...cohort.lidc_shapes import build_lidc_shapes, save_lidc_shapes

    refuse_overwrite([args.out, args.out.with_suffix(".json")], [args.vois / "nodules.csv"])
    library = build_lidc_shapes(args.vois, progress=progress_bar("cohort shapes"))
    save_lidc_shapes(library, args.out)
    print(f"wrote {len(library)} shapes to {args.out} (index {args.out.with_suffix('.json')})")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from ...cohort.report import write_report

    csv_path, html_path, records = write_report(args.folder, args.out)
    agree = sum(r["estimated_subtype"] == r["subtype"] for r in records)
    print(f"wrote {csv_path} and {html_path}: {len(records)} nodules, re-estimated subtype as planned for {agree}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"plan": run_plan, "export": run_export, "recipe": run_recipe, "shapes": run_shapes,
            "report": run_report}[args.action](args)
