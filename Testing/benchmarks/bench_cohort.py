"""Cohorts: the issue's must-show figures, measured on the made cases, and what planning and multi-nodule jobs cost.

    python Testing/benchmarks/bench_cohort.py --json out.json [--patients 4] [--scale-nodules 10000
        --scale-cts 100] [--labelmaps ../shared/data/dlcs_labelmaps]

1. **Demo cohort** (>= 40 nodules over ``--patients`` whole demo patients, model-free engine): plan, run every
   ``cohort_case`` job, then measure each case's ``ids`` mask against the plan (nodsynth.cohort.measure):
   counts per subtype x bin, every mask inside the lung, inner / sub-pleural as defined, clearances, equivalent
   diameter within 1 mm of the plan.
2. **Multi-nodule op vs one-nodule jobs, same run**: the same nodules (the same masks, seeds and subtypes) as one
   ``inpaint`` job each (``--mask``); both manifests run inline; seconds per nodule and the ratio.
3. **Label-map-only plan over the real DLCS maps** (``--labelmaps``): planned into label 23, the ``cohort_case``
   jobs run (the twins need NodMAISI weights and are not run), measured as in 1.
4. **Plan scale**: ``--scale-nodules`` over ``--scale-cts`` sources (links to the demo patients' label maps and
   CTs) planned by ``nodsynth cohort plan`` in a child process: wall time and peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cohort_cases import bin_counts, measured, run_cases, violations, write_sources  # noqa: E402
from nodsynth.io.atomic import write_text_atomic
from nodsynth.batch import run_manifest  # noqa: E402
from nodsynth.io.volume_files import read_volume, write_volume

DEMO_COUNTS = {"solid": {"6-10": 8, "10-20": 6}, "part-solid": {"6-10": 8, "10-20": 6},
               "ground-glass": {"6-10": 6, "10-20": 8}}
DLCS_COUNTS = {"solid": {"6-10": 4}, "part-solid": {"10-20": 3}, "ground-glass": {"6-10": 3}}
RULES = {"subpleural_fraction": 0.3, "nodules_per_ct": [1, 3], "clearance_mm": 5, "pleura_clearance_mm": 3, "seed": 0}


CHILD = """import sys
from nodsynth.cli.main import build_parser, main
rc = main(sys.argv[1:]) if len(sys.argv) > 1 else build_parser() and 0
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")))
sys.exit(rc)
"""
"""VmHWM, the peak resident memory of this process image (getrusage's ru_maxrss would include the parent's, which
a child inherits across fork and exec)."""


def child_rss(*argv: str) -> tuple[float, float]:
    """Run the CLI with ``argv`` in a child process: (wall seconds, its peak resident memory in MiB)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"nodsynth {' '.join(argv)} failed: {done.stderr.strip()}")
    seconds = time.perf_counter() - start
    kib = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("VmHWM"))
    return seconds, kib / 1024.0


def plan_in_child(spec: Path, out: Path) -> dict:
    """``nodsynth cohort plan`` in a child process: wall seconds and peak resident memory (MiB), with the peak of
    a child that only imports the CLI as the reference."""
    seconds, peak = child_rss("cohort", "plan", str(spec), "--out", str(out))
    _, imports = child_rss()
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak, 1), "cli_import_rss_mib": round(imports, 1)}


def write_spec(folder: Path, name: str, sources: dict, counts: dict, engine: str, **extra) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"sources": sources, "engine": engine, "counts": counts, **RULES, **extra}))
    return path


def verdict(plan: Path, counts: dict) -> dict:
    records = measured(plan, RULES["pleura_clearance_mm"])
    spec = {"counts": counts}
    expected = {f"{s} {b}": n for s, bins in counts.items() for b, n in bins.items()}
    got = {f"{s} {b}": n for (s, b), n in bin_counts(records, spec).items()}
    return {"nodules": len(records), "cases": len({r["case_id"] for r in records}),
            "counts_as_spec": got == expected, "counts": got,
            "subpleural": sum(r["location"] == "subpleural" for r in records),
            "violations": violations(records, RULES["clearance_mm"]),
            "max_diameter_error_mm": round(max(abs(r["measured_diameter_mm"] - r["diameter_mm"]) for r in records), 3),
            "min_clearance_mm": round(min(r["clearance_mm"] for r in records), 3),
            "all_inside_lung": all(r["inside_lung"] for r in records)}


def one_nodule_manifest(plan: Path, folder: Path) -> tuple[Path, int]:
    """One ``inpaint`` job per planned nodule: its mask (from the case's ids), source CT, label map, subtype, seed."""
    from nodsynth.io.tables import manifest_path
    from nodsynth.cohort.table import read_cohort

    table = plan / "cohort.csv"
    rows = read_cohort(table)
    lines = []
    for row in rows:
        ids = read_volume(plan / "cases" / row["case_id"] / "ids.nii.gz")
        mask = folder / "masks" / f"{row['case_id']}_{row['nodule_id']}.nii.gz"
        write_volume(ids.with_array((ids.array == int(row["nodule_id"])).astype("uint8")), mask)
        name = f"{row['case_id']}_{row['nodule_id']}"
        lines.append(json.dumps({"id": f"one-{name}", "op": "inpaint", "inputs": {
            "ct": str(manifest_path(table, row["source_ct"])), "labelmap": str(manifest_path(table, row["source_labelmap"])),
            "mask": str(mask)}, "params": {"subtype": row["subtype"], "engine": "classic"}, "seed": int(row["seed"]),
            "outputs": {"ct": str(folder / "one" / f"{name}.nii.gz")}}))
    manifest = folder / "one.jsonl"
    manifest.write_text("".join(line + "\n" for line in lines))
    return manifest, len(rows)


def timed_run(manifest: Path) -> float:
    start = time.perf_counter()
    summary = run_manifest(manifest, executor="inline")
    assert summary.ok, summary
    return time.perf_counter() - start


def demo_section(work: Path, patients: int) -> dict:
    sources = write_sources(work / "demo", seeds=range(patients), slab=False)
    spec = write_spec(sources, "demo", {"ct": "cts/*.nii.gz", "labelmap": "maps/*.nii.gz"}, DEMO_COUNTS, "classic")
    plan = sources / "plan"
    planning = plan_in_child(spec, plan)
    multi_s = timed_run(plan / "manifest.jsonl")
    result = {"plan": planning, **verdict(plan, DEMO_COUNTS)}
    one, nodules = one_nodule_manifest(plan, work / "demo_one")
    one_s = timed_run(one)
    result["cost"] = {"multi_nodule_s_per_nodule": round(multi_s / nodules, 3),
                      "one_nodule_jobs_s_per_nodule": round(one_s / nodules, 3),
                      "one_over_multi": round(one_s / multi_s, 2)}
    return result


def dlcs_section(work: Path, labelmaps: Path) -> dict:
    folder = work / "dlcs"
    folder.mkdir()
    spec = write_spec(folder, "dlcs", {"labelmap": str(labelmaps.resolve() / "*.nii.gz")}, DLCS_COUNTS, "nodmaisi",
                      licences={"labelmap": "CC BY-NC 4.0 (DLCS24 label maps, NoMAISI/CaNA)"})
    plan = folder / "plan"
    planning = plan_in_child(spec, plan)
    start = time.perf_counter()
    run_cases(plan / "manifest.jsonl")
    return {"plan": planning, "cohort_case_jobs_s": round(time.perf_counter() - start, 1), **verdict(plan, DLCS_COUNTS)}


def scale_section(work: Path, patients: int, nodules: int, cts: int) -> dict:
    folder = work / "scale"
    for kind in ("cts", "maps"):
        (folder / kind).mkdir(parents=True)
        for number in range(cts):
            (folder / kind / f"ct{number:03d}.nii.gz").symlink_to(work / "demo" / kind / f"demo{number % patients}.nii.gz")
    half = nodules // 4
    counts = {"part-solid": {"6-10": half, "10-20": half}, "ground-glass": {"6-10": half, "10-20": nodules - 3 * half}}
    spec = write_spec(folder, "scale", {"ct": "cts/*.nii.gz", "labelmap": "maps/*.nii.gz"}, counts, "classic")
    result = plan_in_child(spec, folder / "plan")
    rows = (folder / "plan" / "cohort.csv").read_text().count("\n") - 1
    return {"nodules": rows, "source_cts": cts, **result, "ms_per_nodule": round(1000 * result["seconds"] / rows, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True, help="results to write")
    parser.add_argument("--patients", type=int, default=4, help="demo patients (seeds 0..N-1)")
    parser.add_argument("--labelmaps", type=Path, help="folder of real MAISI label maps (../shared/data/dlcs_labelmaps)")
    parser.add_argument("--scale-nodules", type=int, default=10000)
    parser.add_argument("--scale-cts", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_cohort_") as tmp:
        work = Path(tmp)
        results = {"demo": demo_section(work, args.patients)}
        print("demo cohort:", json.dumps(results["demo"]), flush=True)
        if args.labelmaps:
            results["dlcs"] = dlcs_section(work, args.labelmaps)
            print("DLCS label-map-only:", json.dumps(results["dlcs"]), flush=True)
        if args.scale_nodules:
            results["scale"] = scale_section(work, args.patients, args.scale_nodules, args.scale_cts)
            print("plan scale:", json.dumps(results["scale"]), flush=True)
    write_text_atomic(args.json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
