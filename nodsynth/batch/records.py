"""Job records: what was run, on what, by which code and weights, where and how long.

``<batch>/.records/<manifest>/<id>.json`` (:mod:`.layout`) is written (atomically) after the job's outputs are in place; it holds
the job key (:meth:`~nodsynth.batch.manifest.Job.key`), the SHA-256 of every input and output,
params, seed, the engine and the SHA-256 of its weight files, the nodsynth version, device, host,
process and timings (s). A job counts as done when its record has the current job key and every
output exists (a record of a batch begun before per-manifest records counts too). Each commit also
appends one line to ``.records/<manifest>/journal.jsonl`` (one ``write`` of a short line with
``O_APPEND``), the batch's history.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from ..io.atomic import write_text_atomic
from ..weights import sha256_of
from .layout import BatchLayout
from .manifest import Job


class HashCache:
    """SHA-256 of files, remembered per (path, size, modification time) so shared inputs are read once."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def sha256(self, path: Path) -> str:
        stat = os.stat(path)
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._known:
            self._known[key] = sha256_of(path)
        return self._known[key]

    def describe(self, path: Path) -> dict[str, Any]:
        """Path, SHA-256 and size of a file; of a folder (a DICOM series), the SHA-256 of its files' names and
        SHA-256s, and their total size."""
        if not path.is_dir():
            return {"path": str(path), "sha256": self.sha256(path), "bytes": os.path.getsize(path)}
        files = sorted(p for p in path.iterdir() if p.is_file())
        listing = "".join(f"{p.name} {self.sha256(p)}\n" for p in files)
        return {"path": str(path), "sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(),
                "bytes": sum(p.stat().st_size for p in files), "files": len(files)}


def read_record(path: Path) -> Optional[dict]:
    """The record at ``path``; None when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(job: Job, layout: BatchLayout) -> bool:
    """The job's record (this manifest's, or a legacy one) exists for this job definition and every output exists."""
    return (any((read_record(path) or {}).get("job_key") == job.key()
                for path in (layout.record_path(job.id), layout.legacy_record_path(job.id)))
            and all(p.exists() for p in job.outputs.values()))


def environment(device: str, threads: int) -> dict[str, Any]:
    """Code and machine facts recorded with every job."""
    import socket

    versions = {"nodsynth": __version__, "python": platform.python_version()}
    for name in ("torch", "monai", "numpy", "SimpleITK"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", None)
    return {"versions": versions, "device": device, "threads": threads, "host": socket.gethostname(),
            "pid": os.getpid(), "platform": platform.platform()}


def write_record(layout: BatchLayout, job: Job, body: dict[str, Any]) -> Path:
    """Write the record of ``job`` (``body`` plus the job's identity) atomically."""
    record = {"id": job.id, "op": job.op, "row": job.row, "job_key": job.key(), "params": job.params,
              "seed": job.seed, **body}
    return write_text_atomic(layout.record_path(job.id), json.dumps(record, indent=1, default=str) + "\n")


def append_journal(layout: BatchLayout, entry: dict[str, Any]) -> None:
    """Append one line to the batch journal (a single ``write`` with ``O_APPEND``)."""
    line = (json.dumps(entry, default=str) + "\n").encode("utf-8")
    layout.records.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_journal(layout: BatchLayout) -> list[dict]:
    """Every journal line (the commits of the batch, oldest first)."""
    if not layout.journal.is_file():
        return []
    return [json.loads(line) for line in layout.journal.read_text(encoding="utf-8").splitlines() if line.strip()]
