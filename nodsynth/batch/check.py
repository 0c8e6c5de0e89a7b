"""``batch check``: every row of a manifest validated before anything runs.

Per row: the op exists here; its inputs are known names and exist (or another row writes them);
its outputs are known names, complete, writable and not its own inputs (same path, symlink or hard
link: :func:`~nodsynth.cli.common.overwritten_input`); its params parse with the verb's options; the
inputs an op needs on one grid share it (read from file headers, or for a file another row writes,
from the input it inherits its grid from); its outputs lie in the manifest's folder or below it
(unless allowed elsewhere). Across rows: no two rows write one output, no dependency cycle, and
every engine named is installed, can do the op and finds its weights.
All problems are reported at once, each as ``row N: reason``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from ..cli.common import overwritten_input, unwritable_reason
from ..errors import InputError, NodsynthError
from ..volume import Volume, require_same_grid
from ..io.volume_files import read_volume_grid
from .engine_choice import row_engine_options
from .graph import dependencies, groups, producers, real, stages
from .layout import BatchLayout, layout_for, outside_outputs
from .manifest import Job, Manifest, parse_manifest, problems_error
from .opspec import op_arguments
from .ops import get_op


@dataclass
class CheckedManifest:
    """A manifest that passed :func:`check_manifest`, with its dependency structure."""

    manifest: Manifest
    ops: list[ModuleType]
    deps: list[set[int]]
    stage: list[int]
    groups: list[list[int]]
    layout: BatchLayout
    engine_uses: dict[tuple[str, Optional[str]], list[int]] = field(default_factory=dict)

    @property
    def jobs(self) -> list[Job]:
        return self.manifest.jobs


class _Grids:
    """Grids of files on disk (headers) or, for files a row writes, of the input they inherit it from."""

    def __init__(self, jobs: list[Job], ops: list[Optional[ModuleType]], owner: dict[str, int]) -> None:
        self.jobs, self.ops, self.owner = jobs, ops, owner
        self._known: dict[str, Optional[Volume]] = {}

    def of(self, path: Path, depth: int = 0) -> Optional[Volume]:
        key = real(path)
        if key not in self._known:
            self._known[key] = self._find(path, key, depth)
        return self._known[key]

    def _find(self, path: Path, key: str, depth: int) -> Optional[Volume]:
        if path.exists():
            return read_volume_grid(path)
        index = self.owner.get(key)
        op = self.ops[index] if index is not None else None
        if op is None or depth > len(self.jobs):
            return None
        job = self.jobs[index]
        name = next(n for n, p in job.outputs.items() if real(p) == key)
        source = op.OUTPUT_GRID.get(name)
        return self.of(job.inputs[source], depth + 1) if source in job.inputs else None


def _slot_problems(job: Job, op: ModuleType, owner: dict[str, int]) -> list[str]:
    problems = []
    for kind, given, slots in (("input", job.inputs, op.INPUTS), ("output", job.outputs, op.OUTPUTS)):
        unknown = sorted(set(given) - set(slots))
        if unknown:
            problems.append(f"unknown {kind}(s) {', '.join(unknown)} for op {op.OP!r}; it has {', '.join(slots)}")
        missing = [n for n, s in slots.items() if s.required and n not in given]
        if missing:
            problems.append(f"op {op.OP!r} needs {kind}(s) {', '.join(missing)}")
    for name, path in job.inputs.items():
        if not path.exists() and real(path) not in owner:
            problems.append(f"input '{name}' not found: {path}")
    for name, path in job.outputs.items():
        source = overwritten_input(path, job.inputs.values())
        if source is not None:
            input_name = next(n for n, p in job.inputs.items() if p is source)
            problems.append(f"output '{name}' would overwrite its own input '{input_name}' ({path})")
        elif path.is_dir() and job.params.get("output_format") != "dicom":  # a DICOM series is a folder
            problems.append(f"output '{name}' is a folder: {path}")
        elif (reason := unwritable_reason(path)) is not None:
            problems.append(f"output '{name}' cannot be written: {reason}")
    return problems


def _grid_problems(job: Job, op: ModuleType, grids: _Grids) -> list[str]:
    named = [(n, job.inputs[n]) for n in op.SAME_GRID if n in job.inputs]
    known = []
    for name, path in named:
        try:
            grid = grids.of(path)
        except InputError as exc:
            return [f"input '{name}': {exc}"]
        if grid is not None:
            known.append((name, grid))
    problems = []
    for name, grid in known[1:]:
        try:
            require_same_grid(known[0][1], grid, f"input '{known[0][0]}'", f"input '{name}'")
        except InputError as exc:
            problems.append(str(exc))
    return problems


def _engine_problems(uses: dict[tuple[str, Optional[str]], list[int]], jobs: list[Job], ops: list,
                     weights_dir: Optional[str], engine_options: dict[str, dict[str, Any]]) -> list[str]:
    from ..engines import get_engine
    from ..weights import ENGINE_WEIGHTS, find_weights

    problems = []
    for (name, weights), indices in uses.items():
        first = jobs[indices[0]]
        where = f"row {first.row}" + (f" (and {len(indices) - 1} more rows)" if len(indices) > 1 else "")
        options = {**row_engine_options(name, weights, weights_dir, engine_options), "device": "cpu"}
        try:
            engine = get_engine(name, **options)
            operations = engine.describe().get("operations", [])
        except NodsynthError as exc:
            problems.append(f"{where}: engine {name!r} cannot be created: {exc}")
            continue
        needed = sorted({ops[i].ENGINE_OPERATION for i in indices} - set(operations))
        if needed:
            problems.append(f"{where}: engine {name!r} cannot do {', '.join(needed)} (it does {', '.join(operations)})")
        if name in ENGINE_WEIGHTS:
            try:
                find_weights(name, options.get("weights_dir"))
            except NodsynthError as exc:
                problems.append(f"{where}: {exc}")
    return problems


def check_manifest(path: str | os.PathLike, weights_dir: Optional[str] = None,
                   engine_options: Optional[dict[str, dict[str, Any]]] = None,
                   allow_outside: bool = False) -> CheckedManifest:
    """Validate every row (see the module docstring); one :class:`InputError` lists all problems.
    Outputs outside the manifest's folder are refused unless ``allow_outside``."""
    manifest, problems = parse_manifest(path)
    jobs = manifest.jobs
    owner, output_problems = producers(jobs)
    problems += output_problems
    ops: list[Optional[ModuleType]] = []
    uses: dict[tuple[str, Optional[str]], list[int]] = {}
    for index, job in enumerate(jobs):
        try:
            op = get_op(job.op)
        except InputError as exc:
            problems.append(f"row {job.row}: {exc}")
            ops.append(None)
            continue
        ops.append(op)
        slot_problems = _slot_problems(job, op, owner)
        problems += [f"row {job.row}: {p}" for p in slot_problems]
        if slot_problems:
            continue
        try:
            args = op_arguments(op, job, job.outputs)
        except InputError as exc:
            problems.append(f"row {job.row}: {exc}")
            continue
        if op.ENGINE_OPERATION:
            uses.setdefault((args.engine, args.weights), []).append(index)
    deps = dependencies(jobs, owner)
    stage, cycle = stages(deps)
    if cycle:
        problems.append("rows " + ", ".join(str(jobs[i].row) for i in cycle)
                        + ": their inputs and outputs form a cycle (each waits for another)")
    grids = _Grids(jobs, ops, owner)
    for job, op in zip(jobs, ops):
        if op is not None and not cycle:
            problems += [f"row {job.row}: {p}" for p in _grid_problems(job, op, grids)]
    if not allow_outside:
        problems += outside_outputs(jobs, manifest.folder)
    try:
        layout = layout_for(jobs, manifest.path) if jobs else None
    except InputError as exc:
        problems.append(str(exc))
    if not problems and uses:
        problems += _engine_problems(uses, jobs, ops, weights_dir, engine_options or {})
    if problems:
        raise problems_error(manifest.path, problems)
    return CheckedManifest(manifest, ops, deps, stage, groups(deps), layout, uses)  # type: ignore[arg-type]
