"""Why the Slicer modules keep one warm job process instead of starting a worker per job.

Runs the same engine job (a NodMAISI ROI edit of the demo patient with the tiny network configuration,
random weights saved as real checkpoints) through :class:`nodsynth.jobs.client.JobHost`: first in a new
process each time (what a per-job worker pays: Python start, torch import, networks loaded, latent
encoded), then again and again in one warm process. Prints the seconds and the ratio.

    python Testing/benchmarks/bench_jobs.py [--repeat 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "Testing"), str(REPO / "NodMAISI")]


def timed_job(host, args) -> float:
    start = time.perf_counter()
    status = host.submit("NodMAISICommon.engines:run_with_engine", *args).wait(1800)
    if status.state != "done":
        raise RuntimeError(f"the job {status.state}: {status.error}\n{status.details}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()

    from NodMAISICommon.settings import EngineSettings
    from NodMAISILib.compute import SynthesisOptions
    from nodsynth.augment import resize_nodule
    from nodsynth.jobs.client import JobHost
    from slicer_fixtures import demo_patient
    from tiny_weights import nodmaisi_tiny_weights

    weights = nodmaisi_tiny_weights(Path(tempfile.mkdtemp()) / "weights")
    patient = demo_patient()
    edited = resize_nodule(patient.labelmap, "all", 60.0).labelmap
    settings = EngineSettings(weights_dir=str(weights), device="cpu", network_config="maisi_tiny")
    args = ("NodMAISILib.compute:synthesize", "nodmaisi", settings, edited,
            SynthesisOptions(steps=2, roi_only=True), patient.ct, patient.labelmap)

    cold = []
    for _ in range(options.repeat):
        host = JobHost()
        cold.append(timed_job(host, args))
        host.stop()
    host = JobHost()
    timed_job(host, args)  # the warm process's first job loads what the next ones reuse
    warm = [timed_job(host, args) for _ in range(options.repeat)]
    host.stop()
    result = {"job": "NodMAISI tiny-config ROI edit of the demo patient (2 steps)",
              "per_job_process_s": statistics.median(cold), "warm_process_s": statistics.median(warm),
              "ratio_per_job_over_warm": statistics.median(cold) / statistics.median(warm),
              "per_job_process_runs_s": cold, "warm_process_runs_s": warm}
    print(f"{result['job']}: a new process per job {result['per_job_process_s']:.2f} s (median of "
          f"{options.repeat}), the warm process {result['warm_process_s']:.2f} s: "
          f"{result['ratio_per_job_over_warm']:.1f}x")
    if options.json:
        options.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
