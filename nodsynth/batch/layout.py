"""Where a batch keeps its bookkeeping.

The **batch folder** is the deepest folder that contains every output of the manifest (all rows,
whatever the shard, so every runner of one manifest finds the same place). Outputs must lie in the
manifest's folder or below it (``../`` or an absolute path elsewhere would move the bookkeeping up
the tree with them); :func:`outside_outputs` names the ones that do not, and a run refuses them unless
told to allow them (``--allow-outside``). Each manifest keeps its own bookkeeping, in a subfolder
named after it (:func:`manifest_key`: its file name and a hash of its real path), so two manifests
in one folder that reuse an id never overwrite each other's records. In the batch folder:

* ``.records/<manifest>/<id>.json``  -- a job is done when this record exists (for the same job
  definition) and its outputs exist; ``.records/<manifest>/journal.jsonl`` gets one line per
  committed job. A batch begun before records were kept per manifest has ``.records/<id>.json``: a
  record there still counts when its job definition is the same (:meth:`BatchLayout.legacy_record_path`);
* ``.claims/<manifest>/<id>.claim``  -- held while a runner works on the job (``O_CREAT | O_EXCL``);
* ``.staging/<manifest>/<id>/``      -- outputs being written; moved onto the real paths only when all are complete;
* ``failed.jsonl`` (``failed-shard-<i>-of-<n>.jsonl`` for a shard) -- the jobs of the last run that failed.

For a manifest ``m.jsonl`` with outputs ``out/a/x.nii.gz`` and ``out/b/y.nii.gz`` the batch folder
is ``out/`` and the records are in ``out/.records/m.jsonl-<hash>/``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from .manifest import Job


def manifest_key(manifest: Path) -> str:
    """The name of a manifest's bookkeeping subfolder: ``<file name>-<first 12 hex of SHA-256 of its real path>``."""
    real_path = os.path.realpath(manifest)
    return f"{Path(real_path).name}-{hashlib.sha256(real_path.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class BatchLayout:
    root: Path
    manifest: str
    """The manifest's bookkeeping subfolder name (:func:`manifest_key`)."""

    @property
    def records(self) -> Path:
        return self.root / ".records" / self.manifest

    @property
    def claims(self) -> Path:
        return self.root / ".claims" / self.manifest

    @property
    def staging(self) -> Path:
        return self.root / ".staging" / self.manifest

    @property
    def journal(self) -> Path:
        return self.records / "journal.jsonl"

    def record_path(self, job_id: str) -> Path:
        return self.records / f"{job_id}.json"

    def legacy_record_path(self, job_id: str) -> Path:
        """Where a batch begun before per-manifest records kept the record of ``job_id``."""
        return self.root / ".records" / f"{job_id}.json"

    def claim_path(self, job_id: str) -> Path:
        return self.claims / f"{job_id}.claim"

    def staging_dir(self, job_id: str) -> Path:
        return self.staging / job_id

    def failed_path(self, shard: Optional[tuple[int, int]] = None) -> Path:
        return self.root / ("failed.jsonl" if shard is None else f"failed-shard-{shard[0]}-of-{shard[1]}.jsonl")


def outside_outputs(jobs: Sequence[Job], folder: Path) -> list[str]:
    """``row N: ...`` for each output that does not lie in ``folder`` (the manifest's) or below it."""
    base = os.path.normpath(os.path.abspath(folder))
    problems = []
    for job in jobs:
        for name, path in job.outputs.items():
            if os.path.commonpath([base, os.path.normpath(path)]) != base:
                problems.append(f"row {job.row}: output '{name}' ({path}) lies outside the manifest's folder {base}; "
                                "the batch keeps its records in the folder holding every output, so keep outputs "
                                "under the manifest's folder or pass --allow-outside")
    return problems


def layout_for(jobs: Sequence[Job], manifest: Path) -> BatchLayout:
    """The layout of a manifest's jobs; :class:`InputError` when the outputs share only the filesystem root."""
    folders = sorted({os.path.dirname(os.path.realpath(p)) for job in jobs for p in job.outputs.values()})
    root = Path(os.path.commonpath(folders))
    if root.parent == root:
        raise InputError(f"the outputs share no folder but the filesystem root {root}; keep every output of "
                         "a manifest under one folder (its records go to <that folder>/.records)")
    return BatchLayout(root, manifest_key(manifest))
