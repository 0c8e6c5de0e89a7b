"""The batch manifest: JSON Lines, one job a line.

``{"id": "d1-p50", "op": "augment", "inputs": {"labelmap": "maps/DLCS_0001.nii.gz"},
"params": {"percent": 50}, "seed": 0, "outputs": {"labelmap": "out/DLCS_0001_p50.nii.gz"}}``

* ``id``: unique in the manifest; letters, digits, ``.``, ``_``, ``-`` (it names the job's record file);
* ``op``: an operation of :mod:`nodsynth.batch.ops` (``segment``, ``augment``, ``twin``, ``edit``, ``inpaint``);
* ``inputs`` / ``outputs``: name -> file; relative paths are relative to the manifest's folder;
* ``params``: the verb's options, underscores for dashes (``{"diameter_mm": 8}`` for ``--diameter-mm 8``);
* ``seed``: integer, default 0.

Rows are numbered by their line in the file (the first line is row 1); blank lines are skipped.
This module only parses; :mod:`nodsynth.batch.check` validates what the rows mean.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.tables import path_in_folder, read_text
from ..errors import InputError

KEYS = ("id", "op", "inputs", "params", "seed", "outputs")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Job:
    """One manifest row with its paths made absolute."""

    id: str
    op: str
    inputs: dict[str, Path]
    params: dict[str, Any]
    seed: int
    outputs: dict[str, Path]
    row: int
    folder: Path = field(default=Path("."))
    """The manifest's folder (relative paths in ``params`` start here too)."""

    def key(self) -> str:
        """SHA-256 of what the job is (op, input and output paths, params, seed): a record of another
        definition under the same id does not count as this job done."""
        text = json.dumps({"op": self.op, "inputs": {k: str(v) for k, v in self.inputs.items()},
                           "params": self.params, "seed": self.seed,
                           "outputs": {k: str(v) for k, v in self.outputs.items()}}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    path: Path
    jobs: list[Job]

    @property
    def folder(self) -> Path:
        return self.path.parent


def problems_error(path: Path, problems: list[str]) -> InputError:
    """One error listing every problem (the first :data:`MAX_LISTED_PROBLEMS`)."""
    def row_of(problem: str) -> int:
        match = re.match(r"rows? (\d+)", problem)
        return int(match.group(1)) if match else 1 << 62

    shown = sorted(problems, key=row_of)[:MAX_LISTED_PROBLEMS]
    more = len(problems) - len(shown)
    text = f"{path}: {len(problems)} problem(s); nothing was run:\n  " + "\n  ".join(shown)
    return InputError(text + (f"\n  ... and {more} more" if more else ""))


def _paths(value: Any, key: str, folder: Path) -> dict[str, Path]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()):
        raise InputError(f"'{key}' must be an object of name -> file path")
    return {name: path_in_folder(folder, p) for name, p in value.items()}


def parse_row(data: Any, row: int, folder: Path) -> Job:
    """One decoded JSON row -> :class:`Job`; :class:`InputError` names the problem (without the row)."""
    if not isinstance(data, dict):
        raise InputError("a row must be a JSON object")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)}; a row has {', '.join(KEYS)}")
    for key in ("id", "op", "inputs", "outputs"):
        if key not in data:
            raise InputError(f"missing '{key}'")
    job_id, op = data["id"], data["op"]
    if not isinstance(job_id, str) or not ID_PATTERN.match(job_id):
        raise InputError(f"id {job_id!r} must be 1-200 letters, digits, '.', '_' or '-' (not starting with '.')")
    if not isinstance(op, str) or not op:
        raise InputError(f"op must be a name, got {op!r}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise InputError("'params' must be an object")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    outputs = _paths(data["outputs"], "outputs", folder)
    if not outputs:
        raise InputError("'outputs' is empty")
    return Job(job_id, op, _paths(data["inputs"], "inputs", folder), params, seed, outputs, row, folder)


def parse_manifest(path: str | os.PathLike) -> tuple[Manifest, list[str]]:
    """The rows that parse, and one ``row N: reason`` per row that does not."""
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    jobs, problems, seen = [], [], {}
    with io.StringIO(read_text(path, "manifest")) as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                job = parse_row(json.loads(line), row, path.parent)
            except json.JSONDecodeError as exc:
                problems.append(f"row {row}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except InputError as exc:
                problems.append(f"row {row}: {exc}")
                continue
            if job.id in seen:
                problems.append(f"row {row}: id {job.id!r} is already used by row {seen[job.id]}")
                continue
            seen[job.id] = row
            jobs.append(job)
    if not jobs and not problems:
        problems.append("the manifest has no jobs")
    return Manifest(path, jobs), problems


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Parse every row; one :class:`InputError` lists all rows that cannot be read (``row N: reason``)."""
    manifest, problems = parse_manifest(path)
    if problems:
        raise problems_error(manifest.path, problems)
    return manifest


def job_to_row(job_id: str, op: str, inputs: dict[str, str], params: dict[str, Any], seed: int,
               outputs: dict[str, str]) -> str:
    """One manifest line (keys in the documented order)."""
    return json.dumps({"id": job_id, "op": op, "inputs": inputs, "params": params, "seed": seed,
                       "outputs": outputs})
