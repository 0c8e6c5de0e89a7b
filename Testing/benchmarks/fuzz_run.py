"""The full fuzz run of issue 20: mutated volume files through five verbs, all in this one process.

    PYTHONPATH=.:Testing python Testing/benchmarks/fuzz_run.py --cases 600 [--seed 0] [--vois DIR]

Prints the counts per verdict, verb and mutation; exits 1 when any case is an uncaught exception, an
output written on refusal, a silent success on a corrupted input or a refusal of an intact input. The
reference is the mutation's own label: whether it corrupts the input is decided before the verb runs
(see ``Testing/fuzz_inputs.py``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_inputs import run_cases, summary  # noqa: E402

DEFAULT_VOIS = Path(__file__).resolve().parents[3] / "shared" / "data" / "lidc_vois"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vois", type=Path, default=DEFAULT_VOIS)
    args = parser.parse_args()
    if not args.vois.is_dir():
        print(f"real data not available: {args.vois} is missing", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        outcomes = run_cases(args.vois, Path(work), args.cases, args.seed)
    seconds = time.perf_counter() - start
    report = summary(outcomes)
    print(f"{report['cases']} mutated inputs in one process, {seconds:.1f} s ({seconds / report['cases'] * 1000:.0f} ms each)")
    print(f"corrupting mutations: {report['corrupting']}; intact (same voxels and geometry): "
          f"{report['cases'] - report['corrupting']}")
    for title in ("verdicts", "verbs", "families"):
        print(f"{title}:")
        for name, count in sorted(report[title].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {count:5d}  {name}")
    for outcome in report["failures"]:
        print(f"FAIL case {outcome.case.number} {outcome.case.verb} {outcome.case.role} {outcome.case.mutation}: "
              f"{outcome.verdict} (status {outcome.status}; {outcome.error[-300:]}; wrote {outcome.written})")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
