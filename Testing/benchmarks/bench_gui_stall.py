"""The longest GUI-thread stall of handing a job with a 512 x 512 x 256 CT to the job process, for every
module, under the Slicer harness (Slicer's real Python files, ``../shared/slicer_reference``).

For each module action (a PseudoNoduleSeg click, a LesionAugment resize and render, a NodMAISI ROI
edit, an HR-LDM inpaint) it clicks as a user does and measures every GUI-thread callback until the
job is submitted (the volumes go a piece per timer tick). The reference, computed in the same run:
the same volumes written synchronously as job arguments (``write_call``), as the modules did before
they handed volumes over in pieces. Prints ms (GUI-thread CPU time) and the ratio.

    python Testing/benchmarks/bench_gui_stall.py [--version v5.10.0] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "Testing"), str(REPO / "Testing" / "slicer_real")]

REFERENCE_VOLUMES = {"PseudoNoduleSeg (click a nodule)": ("ct",),
                     "LesionAugment (resize)": ("labels",),
                     "LesionAugment (render)": ("ct", "labels", "labels"),
                     "NodMAISI (ROI edit: CT + 2 label maps)": ("labels", "ct", "labels"),
                     "HRLDMInpaint (inpaint)": ("ct", "mask", "labels")}
"""The volumes each action passed as job arguments before (HR-LDM: its nodule mask is CT-sized)."""


def synchronous_write_s(volumes: dict, names: tuple) -> float:
    """GUI-thread CPU seconds of writing these volumes as one job call (the reference)."""
    from nodsynth.jobs.protocol import write_call

    with tempfile.TemporaryDirectory() as folder:
        start = time.thread_time()
        write_call(Path(folder), "module:function", tuple(volumes[name] for name in names), {})
        return time.thread_time() - start


def main() -> int:
    import slicer_harness

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="v5.10.0", choices=slicer_harness.VERSIONS)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()

    slicer = slicer_harness.install(options.version)
    from big_inputs import CASES, big_volumes, handover_stall
    from slicer_fixtures import demo_patient

    patient = demo_patient()
    volumes = big_volumes(patient)
    volumes["mask"] = volumes["ct"].with_array(volumes["ct"].array > 0)
    rows = []
    print(f"Slicer {options.version} harness, 512x512x256 CT: longest GUI-thread stall (CPU ms)")
    print(f"{'action':42s} {'in pieces':>10s} {'whole args':>10s} {'ratio':>7s}")
    for case in CASES:
        slicer_harness.reset(slicer)
        cpu_s, wall_s = handover_stall(case, patient, volumes)
        reference_s = synchronous_write_s(volumes, REFERENCE_VOLUMES[case])
        rows.append({"action": case, "pieces_ms": cpu_s * 1000, "pieces_wall_ms": wall_s * 1000,
                     "whole_arguments_ms": reference_s * 1000})
        print(f"{case:42s} {cpu_s * 1000:10.1f} {reference_s * 1000:10.1f} {reference_s / cpu_s:6.0f}x")
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
