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

from ...errors import InputError
from ..common import progress_bar

VERB = "cohort"
HELP = "plan a synthetic cohort (counts per subtype and size bin) as a batch manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    plan = sub.add_parser("plan", help="place every nodule a cohort spec asks for and write cohort.csv and a manifest",
                          description="plan a cohort: counts per subtype and equivalent-sphere diameter bin (mm), "
                                      "sub-pleural share, nodules per CT, clearances; see nodsynth.cohort.spec")
    plan.add_argument("spec", type=Path, help="cohort spec (JSON)")
    plan.add_argument("--out", type=Path, required=True,
                      help="folder for cohort.csv and manifest.jsonl (new, empty, or an earlier plan's)")


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


def run(args: argparse.Namespace) -> int:
    return {"plan": run_plan}[args.action](args)
