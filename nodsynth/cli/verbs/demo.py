"""``nodsynth demo --out DIR``: the embedded demo patient end to end (README command 1).

The demo is a list of :class:`DemoStep`; each writes under its own sub-folder of ``--out``,
reads what earlier steps left in the shared :class:`DemoContext`, and returns the files it
wrote. A step whose prerequisite failed is skipped; any failure makes the exit status 1.
Later capabilities add a step function and an entry in :data:`STEPS`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...atomic import write_csv_atomic, write_text_atomic
from ...errors import InputError
from ..common import progress_bar

VERB = "demo"
HELP = "Build the synthetic demo chest CT, segment its nodules from a click each, measure them, draw PNGs."

OVERLAY_HALF_WIDTH_MM = 30.0
TRUE_MASK_RGB = (90, 255, 90)
RESULT_MASK_RGB = (255, 60, 60)


@dataclass
class DemoContext:
    """What the steps share: the output folder, the seed, the patient and each step's results."""

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


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|) of two 0/1 masks (1.0 when both are empty)."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


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
    from ...volume import write_volume

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


STEPS: list[DemoStep] = [
    DemoStep("phantom", "synthetic chest CT, label map, true nodule masks", step_phantom),
    DemoStep("segment", "click segmentation of every nodule, Dice against the truth, overlay PNG",
             step_segment, needs=("phantom",)),
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


def run(args: argparse.Namespace) -> int:
    steps = select_steps(args.steps)
    ctx = DemoContext(out=Path(args.out), seed=int(args.seed))
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
        summary[step.name] = {"seconds": round(seconds, 2), "files": [str(f) for f in files]}
        print(f"[{step.name}] wrote {len(files)} file(s) to {ctx.out / step.name} in {seconds:.1f} s")
    if summary:
        write_text_atomic(ctx.out / "demo.json", json.dumps(
            {"seed": ctx.seed, "steps": summary, "failed": failed}, indent=2))
    print(f"demo {'FAILED: ' + ', '.join(failed) if failed else 'done'}; outputs under {ctx.out}")
    return 1 if failed else 0
