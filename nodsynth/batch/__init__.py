"""Batch synthesis at scale: one manifest (JSON Lines, one job a line) run on this machine, a Ray
cluster or a SLURM array, resumable, each job done exactly once, identical results whoever runs it.

* :mod:`~nodsynth.batch.manifest` -- the rows; :mod:`~nodsynth.batch.plan` -- a compact spec expanded
  into rows; :mod:`~nodsynth.batch.check` -- every row validated before anything runs;
* :mod:`~nodsynth.batch.ops` -- one adapter per op over the verbs' library functions and the engines;
* :mod:`~nodsynth.batch.worker` -- claim, compute into staging, commit, record
  (:mod:`~nodsynth.batch.claims`, :mod:`~nodsynth.batch.records`, :mod:`~nodsynth.batch.layout`);
* :mod:`~nodsynth.batch.executors` -- ``inline``, ``local`` (process pool), ``ray``;
  :mod:`~nodsynth.batch.shard` -- ``--shard i/n``; :mod:`~nodsynth.batch.slurm` -- sbatch array scripts;
* :func:`run_manifest` -- the one entry point (CLI ``nodsynth batch run``, Slicer's headless scripts).
"""
from .check import CheckedManifest, check_manifest
from .manifest import Job, Manifest, read_manifest
from .run import run_manifest
from .shard import parse_shard
from .summary import BatchSummary

__all__ = ["BatchSummary", "CheckedManifest", "Job", "Manifest", "check_manifest", "parse_shard", "read_manifest",
           "run_manifest"]
