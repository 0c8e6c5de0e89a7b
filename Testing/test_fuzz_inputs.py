"""Issue 20 "Must show": mutated volume files (truncations at random offsets, NaN/Inf, other voxel types,
NIfTI / NRRD / MHA header corruptions) through segment, measure, augment, inpaint and turing build, in this
one process (see ``Testing/fuzz_inputs.py``). CI runs ``NODSYNTH_FUZZ_CASES`` cases (default 80, about
10 s); the full run is ``python Testing/benchmarks/fuzz_run.py --cases 600``."""
from __future__ import annotations

import os

from conftest import shared_path
from fuzz_inputs import run_cases, summary

CASES = int(os.environ.get("NODSYNTH_FUZZ_CASES", "80"))


def test_mutated_inputs_are_refused_cleanly_or_read_intact(tmp_path):
    outcomes = run_cases(shared_path("lidc_vois"), tmp_path, CASES)
    report = summary(outcomes)
    failures = [f"case {o.case.number} {o.case.verb} {o.case.role} {o.case.mutation}: {o.verdict} "
                f"(status {o.status}; {o.error[-200:]}; wrote {o.written})" for o in report["failures"]]
    assert not failures, "\n".join(failures)
    assert set(report["verdicts"]) == {"refused", "succeeded"} and report["corrupting"] == report["verdicts"]["refused"]
    assert set(report["verbs"]) == {"segment", "measure", "augment", "inpaint", "turing"}
    assert not any("np." in o.error for o in outcomes), "a numpy repr in a message"
