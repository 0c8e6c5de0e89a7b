"""Where a batch keeps its bookkeeping.

The **batch folder** is the deepest folder that contains every output of the manifest (all rows,
whatever the shard, so every runner of one manifest finds the same place). In it:

* ``.records/<id>.json``  -- a job is done when this record exists (for the same job definition) and
  its outputs exist; ``.records/journal.jsonl`` gets one line per committed job;
* ``.claims/<id>.claim``  -- held while a runner works on the job (created with ``O_CREAT | O_EXCL``);
* ``.staging/<id>/``      -- outputs being written; moved onto the real paths only when all are complete;
* ``failed.jsonl`` (``failed-shard-<i>-of-<n>.jsonl`` for a shard) -- the jobs of the last run that failed.

For outputs ``out/a/x.nii.gz`` and ``out/b/y.nii.gz`` the batch folder is ``out/``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from .manifest import Job


@dataclass(frozen=True)
class BatchLayout:
    root: Path

    @property
    def records(self) -> Path:
        return self.root / ".records"

    @property
    def claims(self) -> Path:
        return self.root / ".claims"

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    @property
    def journal(self) -> Path:
        return self.records / "journal.jsonl"

    def record_path(self, job_id: str) -> Path:
        return self.records / f"{job_id}.json"

    def claim_path(self, job_id: str) -> Path:
        return self.claims / f"{job_id}.claim"

    def staging_dir(self, job_id: str) -> Path:
        return self.staging / job_id

    def failed_path(self, shard: Optional[tuple[int, int]] = None) -> Path:
        return self.root / ("failed.jsonl" if shard is None else f"failed-shard-{shard[0]}-of-{shard[1]}.jsonl")


def layout_for(jobs: Sequence[Job]) -> BatchLayout:
    """The layout of a manifest's jobs; :class:`InputError` when the outputs share only the filesystem root."""
    folders = sorted({os.path.dirname(os.path.realpath(p)) for job in jobs for p in job.outputs.values()})
    root = Path(os.path.commonpath(folders))
    if root.parent == root:
        raise InputError(f"the outputs share no folder but the filesystem root {root}; keep every output of "
                         "a manifest under one folder (its records go to <that folder>/.records)")
    return BatchLayout(root)
