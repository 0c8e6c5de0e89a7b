"""Per-step latency profile of the click segmenter on the LIDC nodule VOIs (issue 16).

    python Testing/benchmarks/profile_segment.py --vois ../shared/data/lidc_vois [--json profile.json]

Clicks each nodule at its ``nodules.csv`` centre with the default method (as bench_segment.py
does) and times every step of :func:`nodsynth.segment.segment_nodule` by wrapping the step
functions where they are looked up; a step's time excludes the wrapped steps it calls. Steps
run in a grown VOI (a second or later pass) count as "VOI growth"; those after the part-solid
check in a pass (the outer layer's level, the second clustering and isolation) as "part-solid".
Measuring is not part of a click's latency (the benchmark does not measure).

Prints the mean time per step over all nodules, the middle 10 % (around the median) and the
slowest 10 %, and who the slowest 10 % are: size class, texture, attachment (``wall``: the
top-hat removed a structure larger than the nodule; ``vessel``: only thinner attachments were
cut; ``isolated``: nothing was cut) and the VOI passes. ``--repeat N`` keeps each nodule's
fastest of N runs.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's nodsynth, not an installed one

import nodsynth.segment as segment_pkg
from nodsynth.io.atomic import write_text_atomic
from nodsynth.errors import NodsynthError
from nodsynth.segment import click, component
from nodsynth.io.volume_files import read_volume

OTHER = "other (setup, output)"
STEPS = (  # (module the step is looked up in, name, step)
    (segment_pkg, "require_ct_in_hu", "input checks"),
    (segment_pkg, "require_not_air", "input checks"),
    (segment_pkg, "segment_click_in_voi", OTHER),
    (segment_pkg, "fill_mask_holes", "fill holes"),
    (click, "smooth_hu", "smoothing"),
    (click, "core_level_hu", "clustering"),
    (click, "edge_level_hu", "clustering"),
    (click, "nodule_between", "threshold + component"),
    (click, "isolate_nodule", "threshold + component"),
    (click, "outer_layer_level_hu", "part-solid"),
    (component, "edt_mm", "depth maps (scale, necks)"),
    (component, "distance_from_voxel_mm", "depth maps (scale, necks)"),
    (component, "separation_scale_mm", "scale selection"),
    (component, "wall_tophat", "wall top-hat"),
    (component, "cut_attachments", "necks (core, watershed)"),
    (component, "remove_passing_vessels", "passing vessels"),
)
ORDER = ("input checks", "smoothing", "clustering", "threshold + component", "depth maps (scale, necks)",
         "scale selection", "wall top-hat",
         "necks (core, watershed)", "passing vessels", "part-solid", "VOI growth", "fill holes", OTHER)
SIZE_CLASSES = ((0, 6, "<6 mm"), (6, 10, "6-10 mm"), (10, 20, "10-20 mm"), (20, np.inf, ">=20 mm"))


class StepTimer:
    """Wraps the :data:`STEPS` functions; collects one call's exclusive seconds per step and its facts."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.facts = {}
        self._stack: list[float] = []
        self._pass = 0
        self._part_solid = False

    def reset(self):
        self.seconds, self.facts, self._stack, self._pass, self._part_solid = defaultdict(float), {}, [], 0, False

    def _step_of(self, step: str) -> str:
        if self._pass >= 2 and step not in ("input checks", "fill holes"):
            return "VOI growth"
        if self._part_solid and step not in ("input checks", "fill holes", OTHER):
            return "part-solid"
        return step

    def _note(self, name: str, args, result):
        if name == "segment_click_in_voi":
            self.facts["voi_passes"] = self._pass
        elif name in ("wall_tophat", "cut_attachments"):  # voxels the step removed, last call
            self.facts[name] = int(np.count_nonzero(args[0])) - int(np.count_nonzero(result))
        elif name == "outer_layer_level_hu" and result is not None:
            self.facts["part_solid"] = True

    def wrap(self, fn, name: str, step: str):
        def timed(*args, **kwargs):
            if name == "segment_click_in_voi":
                self._pass += 1
                self._part_solid = False
            if name == "outer_layer_level_hu":
                self._part_solid = True
            where = self._step_of(step)
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                inclusive = time.perf_counter() - start
                inner = self._stack.pop()
                if self._stack:
                    self._stack[-1] += inclusive
                self.seconds[where] += inclusive - inner
            self._note(name, args, result)
            return result
        return timed

    def install(self):
        for module, name, step in STEPS:
            setattr(module, name, self.wrap(getattr(module, name), name, step))


def attachment(facts: dict) -> str:
    """``wall`` when the last top-hat removed voxels, else ``vessel`` when the attachment cut did, else ``isolated``."""
    if facts.get("wall_tophat", 0) > 0:
        return "wall"
    return "vessel" if facts.get("cut_attachments", 0) > 0 else "isolated"


def size_class(diameter_mm: float) -> str:
    return next(name for low, high, name in SIZE_CLASSES if low <= diameter_mm < high)


def profile_row(folder: Path, row: dict, timer: StepTimer, repeat: int) -> dict:
    ct = read_volume(folder / "image" / row["file"])
    point = [float(row[f"coord{a}"]) for a in "XYZ"]
    best = None
    for _ in range(repeat):
        timer.reset()
        start = time.perf_counter()
        try:
            segment_pkg.segment_nodule(ct, point)
        except NodsynthError:
            pass
        total = time.perf_counter() - start
        if best is None or total < best["total_ms"] * 1e-3:
            steps = {k: v * 1e3 for k, v in timer.seconds.items()}
            steps[OTHER] = steps.get(OTHER, 0.0) + total * 1e3 - sum(steps.values())
            best = {"file": row["file"], "diameter_mm": float(row["diameter_mm"]), "texture": row["Texture"],
                    "shape_kji": list(ct.shape_kji), "total_ms": total * 1e3, "steps_ms": steps,
                    "voi_passes": timer.facts.get("voi_passes", 0),
                    "attachment": attachment(timer.facts), "part_solid": bool(timer.facts.get("part_solid"))}
    return best


def step_table(rows: list[dict]) -> dict:
    return {step: float(np.mean([r["steps_ms"].get(step, 0.0) for r in rows])) for step in ORDER}


def who(rows: list[dict]) -> dict:
    return {"size": dict(Counter(size_class(r["diameter_mm"]) for r in rows)),
            "attachment": dict(Counter(r["attachment"] for r in rows)),
            "texture": dict(Counter(r["texture"] for r in rows)),
            "voi_passes": dict(Counter(str(r["voi_passes"]) for r in rows)),
            "part_solid": sum(r["part_solid"] for r in rows),
            "voxels_median": float(np.median([np.prod(r["shape_kji"]) for r in rows]))}


def report(results: list[dict]) -> dict:
    totals = np.array([r["total_ms"] for r in results])
    order = np.argsort(totals)
    tenth = max(1, len(results) // 10)
    slow = [results[i] for i in order[::-1][:tenth]]
    middle = [results[i] for i in order[(len(results) - tenth) // 2:][:tenth]]
    return {"n": len(results), "total_ms_median": float(np.median(totals)), "total_ms_p95": float(np.percentile(totals, 95)),
            "all_mean_ms": step_table(results), "middle10_mean_ms": step_table(middle),
            "slow10_mean_ms": step_table(slow),
            "slow10_total_ms_mean": float(np.mean([r["total_ms"] for r in slow])),
            "all_who": who(results), "slow10_who": who(slow),
            "slowest": [{k: r[k] for k in ("file", "diameter_mm", "texture", "shape_kji", "total_ms", "attachment")}
                        for r in slow[:10]]}


def print_report(summary: dict) -> None:
    print(f"{summary['n']} nodules: total median {summary['total_ms_median']:.2f} ms, p95 {summary['total_ms_p95']:.2f} ms; "
          f"slowest 10 % mean {summary['slow10_total_ms_mean']:.2f} ms")
    slow_total = sum(summary["slow10_mean_ms"].values())
    middle_total = sum(summary["middle10_mean_ms"].values())
    print(f"{'step (mean ms)':34s} {'all':>7s} {'middle 10%':>16s} {'slowest 10%':>16s}")
    for step in ORDER:
        middle_ms, slow_ms = summary["middle10_mean_ms"][step], summary["slow10_mean_ms"][step]
        print(f"{step:34s} {summary['all_mean_ms'][step]:7.2f} {middle_ms:8.2f} ({100 * middle_ms / middle_total:4.1f}%) "
              f"{slow_ms:8.2f} ({100 * slow_ms / slow_total:4.1f}%)")
    for key in ("size", "attachment", "texture", "voi_passes"):
        print(f"{key:12s} slow10%: {summary['slow10_who'][key]}   all: {summary['all_who'][key]}")
    print(f"part-solid   slow10%: {summary['slow10_who']['part_solid']}   all: {summary['all_who']['part_solid']}")
    print(f"crop voxels  slow10% median {summary['slow10_who']['voxels_median']:.0f}, all median {summary['all_who']['voxels_median']:.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vois", type=Path, required=True, help="the lidc_vois folder (nodules.csv, image/)")
    parser.add_argument("--json", type=Path, help="also write the summary and per-nodule steps (JSON)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N nodules (0 = all)")
    parser.add_argument("--repeat", type=int, default=1, help="keep each nodule's fastest of N runs")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    with open(args.vois / "nodules.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if args.limit:
        rows = rows[:args.limit]
    timer = StepTimer()
    timer.install()
    results = [profile_row(args.vois, row, timer, args.repeat) for row in rows]
    summary = report(results)
    print_report(summary)
    if args.json:
        write_text_atomic(args.json, json.dumps({"summary": summary, "nodules": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
