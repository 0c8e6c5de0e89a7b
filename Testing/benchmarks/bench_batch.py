"""Batch machinery: jobs per second with 1 and 2 local workers, and what the machinery costs per job.

    python Testing/benchmarks/bench_batch.py --json out.json [--augments 16 --inpaints 16 --twins 2]
                                             [--labelmaps ../shared/data/dlcs_labelmaps]

One manifest of real inputs: model-free augment and inpaint jobs on an 80^3 crop of the demo patient,
tiny-config NodMAISI twins (random weights saved as real checkpoints; ``--twins 0`` without torch), and
with ``--labelmaps`` an augment (50 %) of each real DLCS label map. In the same run:

* ``local`` executor with 1 and with 2 worker processes (fresh outputs each): jobs / s over the run's
  wall time (worker start included) and the ratio 2 workers / 1 worker;
* per-job overhead: ``run_manifest`` with the ``inline`` executor (check, claim, staging, SHA-256 of
  inputs and outputs, commit, record, journal) against the reference, each op's computation and writes
  called directly in this process with engines created once ((inline - reference) / jobs, ms), with the
  mean hash and commit time the records report.

Both workers' runs and the reference produce the same volume files (checked, byte for byte).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batch_cases import ENGINE_OPTIONS, mixed_rows, output_files, write_inputs, write_manifest  # noqa: E402
from nodsynth.io.atomic import write_text_atomic
from nodsynth.batch import check_manifest, run_manifest  # noqa: E402
from nodsynth.batch.opspec import JobContext, op_arguments  # noqa: E402
from nodsynth.batch.worker import WorkerSettings, WorkerState  # noqa: E402
from nodsynth.progress import CancelToken, no_progress  # noqa: E402


def build_rows(folder: Path, out: str, args) -> list[dict]:
    rows = mixed_rows(out, args.augments, args.inpaints, args.twins)
    if args.labelmaps:
        for path in sorted(Path(args.labelmaps).glob("*.nii.gz")):
            name = path.name.split(".")[0]
            rows.append({"id": f"dlcs-{name}", "op": "augment", "inputs": {"labelmap": str(path.resolve())},
                         "params": {"percent": 50}, "outputs": {"labelmap": f"{out}/dlcs/{name}_p50.nii.gz"}})
    return rows


def reference_seconds(manifest: Path, settings: WorkerSettings) -> float:
    """Each job's op called directly (options parsed and engines created beforehand, outside the timing)."""
    checked = check_manifest(manifest, settings.weights_dir, settings.engine_options)
    state = WorkerState(settings)
    prepared = []
    for job, op in zip(checked.jobs, checked.ops):
        args = op_arguments(op, job, job.outputs)
        if op.ENGINE_OPERATION:
            state.engine(args.engine, args.weights)
        prepared.append((job, op, args))
    start = time.perf_counter()
    for job, op, args in prepared:
        op.run(JobContext(job, args, dict(job.outputs), state.engine, no_progress, CancelToken()))
    return time.perf_counter() - start


def records_mean_ms(root: Path, key: str) -> float:
    values = [json.loads(p.read_text())["timings"][key] for p in (root / ".records").glob("*/*.json")]
    return 1e3 * sum(values) / len(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--augments", type=int, default=16)
    parser.add_argument("--inpaints", type=int, default=16)
    parser.add_argument("--twins", type=int, default=2, help="tiny-config NodMAISI twins (need torch and MONAI)")
    parser.add_argument("--labelmaps", type=Path, help="also augment each label map in this folder (e.g. DLCS)")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        write_inputs(folder / "in")
        weights = None
        if args.twins:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from test_nodmaisi_engine import tiny_weights_folder

            (folder / "weights").mkdir()
            weights = str(tiny_weights_folder(folder / "weights"))
        settings = WorkerSettings(weights_dir=weights, engine_options=ENGINE_OPTIONS)
        options = dict(weights_dir=weights, engine_options=ENGINE_OPTIONS, threads_per_job=1)
        runs = {}
        for name, executor, workers in (("local_1", "local", 1), ("local_2", "local", 2), ("inline", "inline", 1),
                                        ("reference", None, 1)):
            rows = build_rows(folder, name, args)
            manifest = write_manifest(folder / f"{name}.jsonl", rows)
            if executor is None:
                runs[name] = {"jobs": len(rows), "seconds": reference_seconds(manifest, settings)}
                continue
            start = time.perf_counter()
            summary = run_manifest(manifest, executor=executor, workers=workers, **options)
            wall = time.perf_counter() - start
            assert summary.ok, summary.failed_rows()
            runs[name] = {"jobs": len(summary.ran), "seconds": wall, "jobs_per_s": len(summary.ran) / wall,
                          "hash_ms_per_job": records_mean_ms(folder / name, "hash_s"),
                          "commit_ms_per_job": records_mean_ms(folder / name, "commit_s")}
        volumes = sorted(n for n in output_files(folder / "reference") if n.endswith(".nii.gz"))
        identical = all((folder / run / n).read_bytes() == (folder / "reference" / n).read_bytes()
                        for run in ("local_1", "local_2", "inline") for n in volumes)
        jobs = runs["inline"]["jobs"]
        figures = {"jobs": jobs, "ops": {op: sum(r["op"] == op for r in build_rows(folder, "x", args))
                                         for op in ("augment", "inpaint", "twin")},
                   "dlcs_label_maps": bool(args.labelmaps), "runs": runs,
                   "jobs_per_s_1_worker": runs["local_1"]["jobs_per_s"],
                   "jobs_per_s_2_workers": runs["local_2"]["jobs_per_s"],
                   "ratio_2_over_1_workers": runs["local_2"]["jobs_per_s"] / runs["local_1"]["jobs_per_s"],
                   "overhead_ms_per_job": 1e3 * (runs["inline"]["seconds"] - runs["reference"]["seconds"]) / jobs,
                   "reference_ms_per_job": 1e3 * runs["reference"]["seconds"] / jobs,
                   "volumes_identical_across_runs": identical, "volume_outputs": len(volumes)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
