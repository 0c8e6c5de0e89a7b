"""``nodsynth demo --out DIR``: the embedded demo patient end to end (README command 1).

The demo is a list of :class:`DemoStep`; each writes under its own sub-folder of ``--out``,
reads what earlier steps left in the shared :class:`DemoContext`, and returns the files it
wrote. A step whose prerequisite failed is skipped; any failure makes the exit status 1.
Later capabilities add a step function and an entry in :data:`STEPS`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...io.atomic import staged_folder, write_csv_atomic, write_text_atomic
from ...errors import InputError
from ...review.fidelity import dice
from ..common import progress_bar

VERB = "demo"
HELP = ("run the demo patient end to end: phantom (its synthetic chest CT), segment (a click a nodule), measure, "
        "augment (shrink one to 50 %), inpaint (a 12 mm nodule per subtype), review (a visual Turing test)")

OVERLAY_HALF_WIDTH_MM = 30.0
TRUE_MASK_RGB = (90, 255, 90)
RESULT_MASK_RGB = (255, 60, 60)


@dataclass
class DemoContext:
    """What the steps share: the folder they write into (staged beside ``--out``, moved onto it at the end),
    the seed, the patient and each step's results."""

    out: Path
    seed: int
    patient: object = None
    results: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    name: str
    describe: str
    run: Callable[[DemoContext, Path], list[Path]]
    needs: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------ steps
def step_phantom(ctx: DemoContext, folder: Path) -> list[Path]:
    """Build the demo patient and write its CT, label map, true masks and annotation CSVs."""
    from ...phantom import make_demo_patient, write_demo_patient

    ctx.patient = make_demo_patient(ctx.seed, progress=progress_bar("demo patient"))
    return list(write_demo_patient(ctx.patient, folder).values())


def step_segment(ctx: DemoContext, folder: Path) -> list[Path]:
    """Click-segment every nodule at its centre (restricted to the lungs), write masks, Dice, PNG."""
    from ...overlay import axial_panel, axial_pixel_size_mm, save_panels
    from ...segment import segment_nodule
    from ...io.volume_files import write_volume

    patient = ctx.patient
    lungs = patient.lung_mask()
    rows, panels, written, masks = [], [], [], {}
    for nodule in patient.nodules:
        result = segment_nodule(patient.ct, nodule.center_lps, lung_mask=lungs)
        masks[nodule.name] = result.mask
        written.append(write_volume(result.mask, folder / "masks" / f"{nodule.name}.nii.gz"))
        rows.append({"name": nodule.name, "kind": nodule.kind, "subtype": nodule.subtype,
                     "dice": round(dice(result.mask.array, nodule.mask.array), 4),
                     "true_voxels": int(np.count_nonzero(nodule.mask.array)),
                     "segmented_voxels": result.voxel_count, "milliseconds": round(1000 * result.seconds, 1)})
        panels.append(axial_panel(f"{nodule.kind}  Dice {rows[-1]['dice']:.3f}", patient.ct, nodule.center_lps,
                                  [(nodule.mask, TRUE_MASK_RGB), (result.mask, RESULT_MASK_RGB)],
                                  OVERLAY_HALF_WIDTH_MM))
    ctx.results["segment"] = {"rows": rows, "masks": masks}
    written.append(write_csv_atomic(folder / "dice.csv", rows))
    written.append(save_panels(folder / "overlay.png", panels, scale=3,
                               pixel_size_mm=axial_pixel_size_mm(patient.ct)))
    print(_dice_table(rows))
    return written


def _dice_table(rows: list[dict]) -> str:
    lines = [f"{'nodule':<16}{'kind':<16}{'subtype':<14}{'Dice':>7}{'true':>8}{'found':>8}{'ms':>8}"]
    for r in rows:
        lines.append(f"{r['name']:<16}{r['kind']:<16}{r['subtype']:<14}{r['dice']:>7.3f}"
                     f"{r['true_voxels']:>8}{r['segmented_voxels']:>8}{r['milliseconds']:>8.0f}")
    return "\n".join(lines)


AUGMENT_PERCENT = 50.0


def step_augment(ctx: DemoContext, folder: Path) -> list[Path]:
    """Shrink the solid nodule to 50 % (exact volume, lobe refill), re-render the CT model-free, before/after PNG."""
    from ...augment import resize_nodule
    from ...engines.base import EditRequest
    from ...engines.classic import ClassicEngine
    from ...labels import NODULE
    from ...overlay import axial_panel, axial_pixel_size_mm, save_panels
    from ...io.volume_files import write_volume

    patient = ctx.patient
    nodule = next(n for n in patient.nodules if n.kind == "solid")
    resized = resize_nodule(patient.labelmap, nodule.center_lps, AUGMENT_PERCENT)
    rendered = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, resized.labelmap, seed=ctx.seed))
    kept = nodule.mask.with_array(((resized.labelmap.array == NODULE) & (nodule.mask.array > 0)).astype(np.uint8))
    stats = resized.nodules[0]
    tag = f"p{AUGMENT_PERCENT:g}"
    written = [write_volume(resized.labelmap, folder / f"labelmap_{tag}.nii.gz"),
               write_volume(rendered.ct, folder / f"ct_{tag}.nii.gz"),
               write_csv_atomic(folder / "augment.csv", [stats.as_row()])]
    panels = [axial_panel("before", patient.ct, nodule.center_lps, [(nodule.mask, TRUE_MASK_RGB)],
                          OVERLAY_HALF_WIDTH_MM),
              axial_panel(f"after {stats.achieved_percent:.1f} %", rendered.ct, nodule.center_lps,
                          [(nodule.mask, TRUE_MASK_RGB), (kept, RESULT_MASK_RGB)], OVERLAY_HALF_WIDTH_MM)]
    written.append(save_panels(folder / "before_after.png", panels, scale=3,
                               pixel_size_mm=axial_pixel_size_mm(patient.ct)))
    print(f"solid nodule {stats.voxels_before} -> {stats.voxels_after} voxels ({stats.achieved_percent:.2f} % of "
          f"{AUGMENT_PERCENT:g} % asked), {stats.equivalent_diameter_before_mm:.1f} -> "
          f"{stats.equivalent_diameter_after_mm:.1f} mm; CT re-rendered ({rendered.info.get('texture')} parenchyma)")
    return written


INPAINT_DIAMETER_MM = 12.0


def step_inpaint(ctx: DemoContext, folder: Path) -> list[Path]:
    """Insert one 12 mm nodule (equivalent-sphere diameter) per subtype (preset histogram, model-free) at a sampled
    inner-lung centre; CT, mask, PNG and JSD per subtype."""
    from ...engines.base import SUBTYPES, InpaintRequest
    from ...engines.classic import ClassicEngine
    from ...overlay import axial_panel, axial_pixel_size_mm, save_panels
    from ...place import placement_regions, resolve_lung, sample_centroids
    from ...presets import preset_histogram
    from ...shapes import bounding_diameter_mm, place_shape, procedural_shape, shape_measurements
    from ...io.volume_files import write_volume

    patient = ctx.patient
    lung, existing = resolve_lung(labelmap=patient.labelmap)
    shapes = [procedural_shape(1.2, 0.4, 0.2, seed=ctx.seed + number) for number in range(len(SUBTYPES))]
    widest_mm = max(bounding_diameter_mm(shape, INPAINT_DIAMETER_MM) for shape in shapes)
    regions = placement_regions(lung, widest_mm, nodules=existing)  # the whole nodule lies in the lung
    rows, written = [], []
    for number, (subtype, shape) in enumerate(zip(SUBTYPES, shapes)):
        centre = sample_centroids(regions, "inner", 1, seed=ctx.seed + number)[0]
        mask = place_shape(shape, patient.ct, centre, INPAINT_DIAMETER_MM)
        result = ClassicEngine().inpaint(InpaintRequest(patient.ct, mask, subtype, preset_histogram(subtype),
                                                        lung_mask=lung, seed=ctx.seed))
        rows.append({"subtype": subtype, "jsd": round(result.info["jsd"], 5), "voxels": int(mask.array.sum()),
                     "diameter_mm": round(shape_measurements(mask)["equivalent_diameter_mm"], 2),
                     "centre_lps_mm": " ".join(f"{v:.1f}" for v in centre)})
        written.append(write_volume(result.ct, folder / f"ct_{subtype}.nii.gz"))
        written.append(write_volume(mask, folder / f"mask_{subtype}.nii.gz"))
        panels = [axial_panel("before", patient.ct, centre, [], OVERLAY_HALF_WIDTH_MM),
                  axial_panel(f"{subtype}  JSD {rows[-1]['jsd']:.3f}", result.ct, centre, [(mask, RESULT_MASK_RGB)],
                              OVERLAY_HALF_WIDTH_MM)]
        written.append(save_panels(folder / f"inpaint_{subtype}.png", panels, scale=3,
                                   pixel_size_mm=axial_pixel_size_mm(patient.ct)))
        print(f"inpaint {subtype}: {rows[-1]['voxels']} voxels, {rows[-1]['diameter_mm']:.1f} mm "
              f"(equivalent sphere, {INPAINT_DIAMETER_MM:g} mm asked), JSD(target, inserted) {rows[-1]['jsd']:.4f}")
    written.append(write_csv_atomic(folder / "inpaint.csv", rows))
    return written


def step_measure(ctx: DemoContext, folder: Path) -> list[Path]:
    """Measure every segmented nodule (volume, diameters, HU, histogram, subtype, lobe, pleural distance)."""
    from ...measure import measure_nodule

    patient = ctx.patient
    masks = ctx.results["segment"]["masks"]
    rows, records = [], {}
    for nodule in patient.nodules:
        found = measure_nodule(patient.ct, masks[nodule.name], labelmap=patient.labelmap).to_dict()
        records[nodule.name] = {"kind": nodule.kind, "true_subtype": nodule.subtype, "true_lobe": nodule.lobe,
                                **found}
        rows.append({"name": nodule.name, "kind": nodule.kind, "true_subtype": nodule.subtype,
                     "subtype": found["subtype"], "true_lobe": nodule.lobe, "lobe_id": found["lobe_id"],
                     "volume_mm3": round(found["volume_mm3"], 1),
                     "equivalent_diameter_mm": round(found["equivalent_diameter_mm"], 2),
                     "true_diameter_mm": nodule.diameter_mm,
                     "longest_diameter_mm": round(found["longest_diameter_mm"], 2),
                     "mean_hu": round(found["mean_hu"], 1),
                     "pleural_distance_mm": None if found["pleural_distance_mm"] is None
                     else round(found["pleural_distance_mm"], 2)})
    ctx.results["measure"] = records
    for r in rows:
        print(f"{r['name']:<16}{r['subtype']:<14}lobe {r['lobe_id']}  {r['equivalent_diameter_mm']:6.1f} mm"
              f"  {r['mean_hu']:7.1f} HU  pleura {r['pleural_distance_mm']} mm")
    return [write_csv_atomic(folder / "measurements.csv", rows),
            write_text_atomic(folder / "measurements.json", json.dumps(records, indent=2))]


REVIEW_READER = "demo-reader"
REVIEW_FULL_SPACING_MM = 2.0
"""The demo's full-context volumes are resampled to 2 mm to keep the output small."""
REVIEW_SEPARATION_MM = 6.0
"""Inserted nodules keep at least this much lung between them."""


def _inserted_nodules(patient, seed: int):
    """The demo CT with one model-free nodule per phantom nodule (same subtype, volume and histogram)
    inserted at separate sampled inner-lung centres; returns ``(ct, [(nodule, mask), ...])``."""
    from ...engines.base import InpaintRequest
    from ...engines.classic import ClassicEngine
    from ...place import placement_regions, resolve_lung, sample_centroids
    from ...presets import nodule_histogram
    from ...shapes import bounding_diameter_mm, place_shape, procedural_shape
    from ...sphere import sphere_diameter_mm

    lung, existing = resolve_lung(labelmap=patient.labelmap)
    shapes = [procedural_shape(1.2, 0.4, 0.2, seed=seed + number) for number in range(len(patient.nodules))]
    diameters = [sphere_diameter_mm(np.count_nonzero(n.mask.array) * n.mask.voxel_volume_mm3) for n in patient.nodules]
    widest = max(bounding_diameter_mm(s, d) for s, d in zip(shapes, diameters))
    candidates = sample_centroids(placement_regions(lung, widest, nodules=existing), "inner", 200, seed=seed)
    centres: list = []
    for point in candidates:
        if all(np.linalg.norm(point - c) > widest + REVIEW_SEPARATION_MM for c in centres):
            centres.append(point)
    if len(centres) < len(patient.nodules):
        raise InputError("the demo lungs have no room for the inserted nodules")
    ct, inserted = patient.ct, []
    for number, (nodule, centre) in enumerate(zip(patient.nodules, centres)):
        mask = place_shape(shapes[number], ct, centre, diameters[number])  # the phantom nodule's volume
        ct = ClassicEngine().inpaint(InpaintRequest(ct, mask, nodule.subtype, nodule_histogram(patient.ct, nodule.mask),
                                                    lung_mask=lung, seed=seed + number)).ct
        inserted.append((nodule, mask))
    return ct, inserted


def step_review(ctx: DemoContext, folder: Path) -> list[Path]:
    """A visual Turing test of the phantom's nodules against model-free inserted ones: compare report of the
    insertion, a blinded two-phase study, a scripted reader's answers (through the reading session) scored."""
    from ...phantom.export import CT_FILE, LABELMAP_FILE, NODULE_DIR
    from ...review.answers import read_answer_sheets
    from ...review.key import read_key
    from ...review.pairs import ReviewPair, review_pairs
    from ...review.reading import ReadingSession
    from ...review.score import score_answers
    from ...review.score_report import score_html, score_metadata
    from ...review.study import build_study
    from ...review.study_inputs import read_study_inputs
    from ...io.volume_files import write_volume

    patient = ctx.patient
    phantom = Path("..") / "phantom"
    ct, inserted = _inserted_nodules(patient, ctx.seed + 100)
    written = [write_volume(ct, folder / "synthetic" / "ct.nii.gz")]
    real_rows, synthetic_rows = [], []
    for nodule, mask in inserted:
        written.append(write_volume(mask, folder / "synthetic" / f"inserted_{nodule.name}.nii.gz"))
        common = {"labelmap": str(phantom / LABELMAP_FILE)}  # subtype and diameter: measured alike on both sides
        real_rows.append({"ct": str(phantom / CT_FILE), "mask": str(phantom / NODULE_DIR / f"{nodule.name}.nii.gz"),
                          "source": f"phantom {nodule.name}", **common})
        synthetic_rows.append({"ct": "synthetic/ct.nii.gz", "mask": f"synthetic/inserted_{nodule.name}.nii.gz",
                               "source": f"inserted {nodule.name}", **common})
    written += [write_csv_atomic(folder / "real.csv", real_rows), write_csv_atomic(folder / "synthetic.csv", synthetic_rows)]
    union = ct.with_array(np.any([m.array > 0 for _, m in inserted], axis=0).astype(np.uint8))
    written.append(write_volume(union, folder / "synthetic" / "inserted_all.nii.gz"))
    review_pairs([ReviewPair("insertion", ctx.out / "phantom" / CT_FILE, folder / "synthetic" / "ct.nii.gz",
                             labelmap=ctx.out / "phantom" / LABELMAP_FILE, mask=folder / "synthetic" / "inserted_all.nii.gz",
                             changed=folder / "synthetic" / "inserted_all.nii.gz")], folder / "compare")
    written.append(folder / "compare" / "report.html")

    n = len(inserted)
    study = build_study(read_study_inputs(folder / "real.csv", "real"),
                        read_study_inputs(folder / "synthetic.csv", "synthetic"), folder / "study", n, n,
                        seed=ctx.seed, full_spacing_mm=REVIEW_FULL_SPACING_MM)
    session = ReadingSession(folder / "study", REVIEW_READER)
    rng = np.random.default_rng(ctx.seed)
    while session.current is not None:  # a scripted reader: a coin per case, a confidence and a reading time
        session.answer(session.current.case_id, ("real", "synthetic")[int(rng.integers(2))],
                       int(rng.integers(1, 6)), float(rng.uniform(4.0, 30.0)))
    key = read_key(study["key_path"])  # beside the study folder, not in it
    scores = score_answers(key, read_answer_sheets([session.path], key))
    scores["study"] = score_metadata(study["key_path"], scores, shown_path=os.path.relpath(study["key_path"], folder))
    written += [folder / "study" / "study.json", study["key_path"], session.path,
                write_text_atomic(folder / "score.json", json.dumps(scores, indent=1) + "\n"),
                write_text_atomic(folder / "report.html", score_html(scores, "Demo visual Turing test"))]
    for phase, result in scores["phases"].items():
        pooled = result["pooled"]
        print(f"review {phase}: {pooled['n']} answers, accuracy {100 * pooled['accuracy']:.1f} %, "
              f"fooling rate {100 * pooled['fooling_rate']:.1f} %")
    return written


STEPS: list[DemoStep] = [
    DemoStep("phantom", "synthetic chest CT, label map, true nodule masks", step_phantom),
    DemoStep("segment", "click segmentation of every nodule, Dice against the truth, overlay PNG",
             step_segment, needs=("phantom",)),
    DemoStep("measure", "measurements of every segmented nodule (CSV and JSON)", step_measure,
             needs=("segment",)),
    DemoStep("augment", "shrink the solid nodule to 50 % with lobe refill, model-free CT re-render, before/after PNG",
             step_augment, needs=("phantom",)),
    DemoStep("inpaint", f"one {INPAINT_DIAMETER_MM:g} mm (equivalent-sphere diameter) model-free nodule per subtype at a "
                        "sampled inner-lung centre, JSD and PNG per subtype",
             step_inpaint, needs=("phantom",)),
    DemoStep("review", "visual Turing test: phantom nodules vs model-free inserted ones, a blinded two-phase study, "
                       "a scripted reader scored, report.html", step_review, needs=("phantom",)),
]

# ------------------------------------------------------------------------------------ verb
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per step)")
    parser.add_argument("--seed", type=int, default=0, help="demo patient seed (default 0)")
    parser.add_argument("--steps", default=None,
                        help="comma-separated steps to run, in order (default all: "
                             + ", ".join(s.name for s in STEPS) + ")")


def select_steps(text: Optional[str]) -> list[DemoStep]:
    """The steps named in ``text`` (comma-separated) with their prerequisites, in demo order."""
    if text is None:
        return list(STEPS)
    by_name = {s.name: s for s in STEPS}
    wanted = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(wanted - set(by_name))
    if unknown or not wanted:
        raise InputError(f"unknown demo step(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(by_name)}")
    pending = list(wanted)
    while pending:
        for need in by_name[pending.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [s for s in STEPS if s.name in wanted]


SUMMARY_FILE = "demo.json"
"""Marks a folder as the demo's output: only such a folder (or an empty one) is replaced by a new run."""


def run(args: argparse.Namespace) -> int:
    steps = select_steps(args.steps)
    out = Path(args.out)
    with staged_folder(out, replaceable=SUMMARY_FILE) as stage:  # a re-run replaces the earlier patient whole
        failed, summary = _run_steps(steps, DemoContext(out=stage, seed=int(args.seed)), out)
        write_text_atomic(stage / SUMMARY_FILE, json.dumps(
            {"seed": int(args.seed), "steps": summary, "failed": failed}, indent=2))
    print(f"demo {'FAILED: ' + ', '.join(failed) if failed else 'done'}; outputs under {out}")
    return 1 if failed else 0


def _run_steps(steps: list[DemoStep], ctx: DemoContext, out: Path) -> tuple[list[str], dict]:
    """Run ``steps`` into ``ctx.out``; ``(failed step names, {step: seconds and files as they will lie under out})``."""
    failed: list[str] = []
    summary = {}
    for step in steps:
        blocked = [n for n in step.needs if n in failed]
        if blocked:
            print(f"[{step.name}] skipped: needs {', '.join(blocked)}", file=sys.stderr)
            failed.append(step.name)
            continue
        print(f"[{step.name}] {step.describe}")
        start = time.perf_counter()
        try:
            files = step.run(ctx, ctx.out / step.name)
        except Exception as exc:  # report every step's failure and keep going with the independent ones
            print(f"[{step.name}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(step.name)
            continue
        seconds = time.perf_counter() - start
        summary[step.name] = {"seconds": round(seconds, 2),
                              "files": [str(out / Path(f).relative_to(ctx.out)) for f in files]}
        print(f"[{step.name}] wrote {len(files)} file(s) to {out / step.name} in {seconds:.1f} s")
    return failed, summary
