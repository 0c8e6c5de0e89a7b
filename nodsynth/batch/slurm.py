"""``batch slurm-script``: an sbatch array script running one shard of a manifest per array task.

Task ``i`` of ``--array=0-(n-1)`` runs ``python -m nodsynth batch run MANIFEST --shard i/n`` with the
run options given here (in the task's own process, or with one local worker per GPU when a task has
several), so shards are exactly those of :mod:`nodsynth.batch.shard`; a re-submitted array skips what is
done (records) and redoes the rest.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import InputError


@dataclass
class SlurmOptions:
    shards: int
    gpus_per_task: int = 1
    cpus_per_task: Optional[int] = None
    """default: threads_per_job"""
    mem: Optional[str] = None
    time: Optional[str] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    job_name: str = "nodsynth-batch"
    logs: Optional[Path] = None
    """folder of the task logs (default: the manifest's folder / slurm-logs)"""
    setup: list[str] = field(default_factory=list)
    """shell lines run before (``module load cuda``, ``source venv/bin/activate``)"""
    python: str = sys.executable
    run_args: list[str] = field(default_factory=list)
    """extra ``batch run`` options (``--threads-per-job 4``, ``--weights DIR``, ...)"""
    threads_per_job: int = 1


def slurm_script(manifest: Path, options: SlurmOptions) -> str:
    """The sbatch script's text (see the module docstring)."""
    if options.shards < 1:
        raise InputError(f"--shards must be at least 1, got {options.shards}")
    if options.gpus_per_task < 0:
        raise InputError(f"--gpus-per-task must be >= 0, got {options.gpus_per_task}")
    manifest = Path(manifest).resolve()
    logs = (options.logs or manifest.parent / "slurm-logs").resolve()
    cpus = options.cpus_per_task or options.threads_per_job
    lines = ["#!/bin/bash", f"#SBATCH --job-name={options.job_name}", f"#SBATCH --array=0-{options.shards - 1}",
             "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={cpus}"]
    if options.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={options.gpus_per_task}")
    for flag, value in (("mem", options.mem), ("time", options.time), ("partition", options.partition),
                        ("account", options.account)):
        if value:
            lines.append(f"#SBATCH --{flag}={value}")
    lines.append(f"#SBATCH --output={logs}/%x-%A_%a.out")
    executor = (["--executor", "local", "--workers", str(options.gpus_per_task)] if options.gpus_per_task > 1
                else ["--executor", "inline"])  # one worker: this task's process itself
    run = ([options.python, "-m", "nodsynth", "batch", "run", str(manifest)] + executor
           + ["--threads-per-job", str(options.threads_per_job)] + list(options.run_args))
    lines += ["", f"# {options.shards} shard(s) of {manifest}; re-submit to finish what failed or was cut short.",
              "set -euo pipefail", f"mkdir -p {shlex.quote(str(logs))}"] + list(options.setup)
    lines.append(" ".join(shlex.quote(a) for a in run) + f' --shard "${{SLURM_ARRAY_TASK_ID}}/{options.shards}"')
    return "\n".join(lines) + "\n"
