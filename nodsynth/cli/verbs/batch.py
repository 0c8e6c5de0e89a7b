"""``nodsynth batch``: one manifest of jobs run on this machine, a Ray cluster or a SLURM array.

* ``batch plan SPEC.json --out MANIFEST.jsonl`` -- expand a compact spec (:mod:`nodsynth.batch.plan`);
* ``batch check MANIFEST`` -- validate every row before anything runs;
* ``batch run MANIFEST [--executor local|ray|inline] [--workers N] [--ray-address auto|HOST:PORT] [--shard i/n]``
  -- run what is not done yet; exit status 1 when a job failed (listed in ``failed.jsonl``);
* ``batch slurm-script MANIFEST --shards n --gpus-per-task 1 ...`` -- write an sbatch array script.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections import Counter
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...errors import InputError
from .serve import read_engine_options

VERB = "batch"
HELP = "run a manifest of jobs (segment, augment, twin, edit, inpaint) locally, on Ray or as SLURM shards"
MANIFEST_HELP = "manifest: JSON Lines, one job a line (nodsynth batch plan writes one)"


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside", action="store_true",
                        help="allow outputs outside the manifest's folder (the records then go to the folder "
                             "holding every output)")
    parser.add_argument("--weights", metavar="DIR", help="weights folder for jobs without params.weights")
    parser.add_argument("--engine-options", metavar="JSON_FILE",
                        help='per-engine keyword options, e.g. {"nodmaisi": {"config": "maisi_tiny"}}')


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads-per-job", type=int, default=1,
                        help="torch threads per job (default 1); outputs are bit-identical between runs "
                             "with the same value")
    parser.add_argument("--max-retries", type=int, default=2,
                        help="times a job whose worker died is sent again (default 2)")
    parser.add_argument("--stale-after-s", type=float, default=600.0,
                        help="a claim without heartbeat this long may be taken over (default 600)")
    _add_engine_options(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="batch_command", metavar="COMMAND", required=True)
    plan = sub.add_parser("plan", help="expand a compact spec into a manifest")
    plan.add_argument("spec", type=Path, help="spec JSON (inputs x percents x seeds x engines ...)")
    plan.add_argument("--out", type=Path, required=True, help="manifest to write (JSON Lines), in the folder of "
                                                               "the spec's outputs or above")
    plan.add_argument("--allow-outside", action="store_true", help="write the manifest even where the outputs lie "
                                                                   "outside its folder (run it with --allow-outside)")

    check = sub.add_parser("check", help="validate every row of a manifest; nothing runs")
    check.add_argument("manifest", type=Path, help=MANIFEST_HELP)
    check.add_argument("--shard", help="also show the share i/n")
    _add_engine_options(check)

    run = sub.add_parser("run", help="run the jobs that are not done yet")
    run.add_argument("manifest", type=Path, help=MANIFEST_HELP)
    run.add_argument("--executor", choices=("local", "ray", "inline"), default="local",
                     help="local: worker processes here (default); ray: a Ray cluster; inline: this process")
    run.add_argument("--workers", type=int, help="worker processes / actors (default: one per GPU, else "
                     "CPU cores // threads per job)")
    run.add_argument("--ray-address", help="join this Ray cluster (auto or HOST:PORT); default: start a local one")
    run.add_argument("--shard", help="run only share i of n (i/n, from 0)")
    run.add_argument("--device", help="torch device for every worker (default: each worker's GPU, else cpu)")
    run.add_argument("--json", type=Path, help="also write the run summary here")
    _add_run_options(run)

    slurm = sub.add_parser("slurm-script", help="write an sbatch array script (one shard per array task)")
    slurm.add_argument("manifest", type=Path, help=MANIFEST_HELP)
    slurm.add_argument("--shards", type=int, required=True, help="array tasks (shards)")
    slurm.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per array task (default 1; 0 for CPU)")
    slurm.add_argument("--cpus-per-task", type=int, help="CPUs per array task (default: --threads-per-job)")
    slurm.add_argument("--mem", help="memory per task, e.g. 32G")
    slurm.add_argument("--time", help="time limit per task, e.g. 04:00:00")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--account", help="SLURM account to charge (default: yours)")
    slurm.add_argument("--job-name", default="nodsynth-batch", help="SLURM job name (default nodsynth-batch)")
    slurm.add_argument("--logs", type=Path, help="task log folder (default: <manifest folder>/slurm-logs)")
    slurm.add_argument("--setup", action="append", default=[],
                       help="a shell line run first, e.g. 'module load cuda' (repeatable)")
    slurm.add_argument("--python", default=sys.executable, help=f"Python on the nodes (default {sys.executable})")
    slurm.add_argument("--out", type=Path, required=True, help="script to write")
    _add_run_options(slurm)


def _engine_options(args: argparse.Namespace) -> dict:
    return read_engine_options(args.engine_options)


def run_plan(args: argparse.Namespace) -> int:
    from ...batch.layout import outside_outputs
    from ...batch.plan import plan_jobs, write_manifest

    jobs = plan_jobs(args.spec)
    outside = outside_outputs(jobs, Path(os.path.abspath(args.out)).parent)
    if outside and not args.allow_outside:
        raise InputError(f"the manifest {args.out} would have {len(outside)} output(s) outside its folder, e.g. "
                         f"{next(iter(jobs[0].outputs.values()))}; write it in the folder of the spec's \"out\" or "
                         "above, or pass --allow-outside")
    write_manifest(jobs, args.out)
    per_op = ", ".join(f"{op} {n}" for op, n in Counter(j.op for j in jobs).items())
    print(f"wrote {args.out}: {len(jobs)} jobs ({per_op}); next: nodsynth batch check {args.out}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ...batch import check_manifest, parse_shard
    from ...batch.records import is_done
    from ...batch.run import share_of

    shard = parse_shard(args.shard)
    checked = check_manifest(args.manifest, args.weights, _engine_options(args), args.allow_outside)
    indices = share_of(checked, shard)
    jobs = [checked.jobs[i] for i in indices]
    per_op = ", ".join(f"{op} {n}" for op, n in sorted(Counter(j.op for j in jobs).items()))
    done = sum(is_done(j, checked.layout) for j in jobs)
    share = "" if shard is None else f" in shard {shard[0]}/{shard[1]} (of {len(checked.jobs)})"
    print(f"{args.manifest}: OK, {len(jobs)} jobs{share} ({per_op}) in {len(set(checked.stage))} stage(s); "
          f"{done} already done; batch folder {checked.layout.root}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from ...batch import run_manifest
    from ..common import progress_bar

    summary = run_manifest(args.manifest, executor=args.executor, workers=args.workers, shard=args.shard,
                           ray_address=args.ray_address, threads_per_job=args.threads_per_job,
                           max_retries=args.max_retries, stale_after_s=args.stale_after_s, weights_dir=args.weights,
                           engine_options=_engine_options(args), device=args.device, progress=progress_bar("batch"),
                           allow_outside=args.allow_outside)
    print(summary.table())
    for row in summary.failed_rows()[:10]:
        print(f"  failed {row['id']} (row {row['row']}): {row['error']}", file=sys.stderr)
    if args.json:
        write_text_atomic(args.json, json.dumps(summary.as_dict(), indent=1) + "\n")
    return 0 if summary.ok else 1


def run_slurm(args: argparse.Namespace) -> int:
    from ...batch import check_manifest
    from ...batch.slurm import SlurmOptions, slurm_script

    check_manifest(args.manifest, args.weights, _engine_options(args), args.allow_outside)
    run_args = ["--max-retries", str(args.max_retries), "--stale-after-s", f"{args.stale_after_s:g}"]
    run_args += ["--allow-outside"] if args.allow_outside else []
    for option, value in (("--weights", args.weights), ("--engine-options", args.engine_options)):
        if value:
            run_args += [option, os.path.abspath(value)]
    options = SlurmOptions(args.shards, args.gpus_per_task, args.cpus_per_task, args.mem, args.time, args.partition,
                           args.account, args.job_name, args.logs, args.setup, args.python, run_args,
                           args.threads_per_job)
    text = slurm_script(args.manifest, options)
    write_text_atomic(args.out, text)
    os.chmod(args.out, 0o755)
    print(f"wrote {args.out}: {args.shards} array task(s); submit with: sbatch {shlex.quote(str(args.out))}")
    return 0


def run(args: argparse.Namespace) -> int:
    commands = {"plan": run_plan, "check": run_check, "run": run_run, "slurm-script": run_slurm}
    if args.batch_command not in commands:
        raise InputError(f"unknown batch command {args.batch_command!r}")
    return commands[args.batch_command](args)
