"""What a batch operation adapter declares, and how a manifest row becomes the verb's options.

An op is one module in :mod:`nodsynth.batch.ops` (found automatically) defining

* ``OP``: its name; ``ENGINE_OPERATION``: ``"twin"``/``"inpaint"``/``"edit"`` or None (no engine);
* ``INPUTS`` / ``OUTPUTS``: name -> :class:`Slot` (the verb option the file goes to);
* ``PARAMS``: the verb options a row may set in ``params``; ``SEEDED``: the verb takes ``--seed``;
* ``SAME_GRID``: inputs that must share a voxel grid; ``OUTPUT_GRID``: output -> the input whose
  grid it has (lets ``batch check`` compare grids of files another job has not written yet);
* ``add_arguments(parser)``: the verb's options (normally the verb module's own function);
* optional ``fixed_argv(job, outputs)`` (extra options) and ``validate(args, job)`` (checks argparse
  cannot express);
* ``run(ctx: JobContext) -> dict``: compute with the verb's library functions and write every output
  to ``ctx.outputs`` (staging files); returns facts for the job record.

A row's ``params`` are turned into the verb's command line (``{"diameter_mm": 8}`` ->
``--diameter-mm=8``, ``true`` -> a flag, a list -> ``a,b,c``) and parsed by the verb's own parser,
so types, choices and required options are checked exactly as on the command line.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Optional

from ..io.tables import path_in_folder
from ..engines.base import Engine, SynthesisResult
from ..errors import InputError
from ..progress import CancelToken, ProgressFn
from .manifest import Job

PATH_PARAMS = ("weights",)
"""Params holding a path: relative values start from the manifest's folder."""


@dataclass(frozen=True)
class Slot:
    """An input or output file of an op: the verb option it is passed as (None: positional)."""

    option: Optional[str]
    required: bool = True
    volume: bool = True
    suffix: str = ".nii.gz"
    """Suffix ``batch plan`` gives a generated output path."""

    def argv(self, path: Path) -> list[str]:
        return [str(path)] if self.option is None else [f"{self.option}={path}"]


@dataclass
class JobContext:
    """What an op's ``run`` gets: the job, its parsed options, staging output paths, engines, progress."""

    job: Job
    args: argparse.Namespace
    outputs: dict[str, Path]
    engines: Callable[[str, Optional[str]], Engine]
    progress: ProgressFn
    cancel: CancelToken
    weights_dir: Optional[str] = None
    """The run's ``--weights`` (a row's ``weights`` param comes first)."""
    device: Optional[str] = None
    """The run's torch device (None: CUDA when the worker sees a GPU, else CPU)."""

    def engine(self) -> Engine:
        """The engine the options name (``--engine``, ``--weights``), loaded once per worker."""
        return self.engines(self.args.engine, self.args.weights)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit the process
        raise InputError(message)


def _param_argv(key: str, value: Any, folder: Path) -> list[str]:
    option = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [option] if value else []
    if isinstance(value, (list, tuple)):
        return [f"{option}={','.join(str(v) for v in value)}"]
    if value is None or isinstance(value, dict):
        raise InputError(f"parameter {key!r} must be a number, text, true/false or a list, got {value!r}")
    if key in PATH_PARAMS:
        value = path_in_folder(folder, str(value))
    return [f"{option}={value}"]


def op_arguments(op: ModuleType, job: Job, outputs: Mapping[str, Path]) -> argparse.Namespace:
    """The verb options of ``job`` with ``outputs`` as output files; :class:`InputError` names a bad one."""
    unknown = sorted(set(job.params) - set(op.PARAMS))
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(unknown)} for op {op.OP!r}; "
                         f"allowed: {', '.join(op.PARAMS) or 'none'}")
    argv: list[str] = []
    for name, slot in op.INPUTS.items():
        if name in job.inputs:
            argv += slot.argv(job.inputs[name])
    for name, slot in op.OUTPUTS.items():
        if name in outputs and slot.option is not None:
            argv += slot.argv(outputs[name])
    for key, value in job.params.items():
        argv += _param_argv(key, value, job.folder)
    if op.SEEDED:
        argv.append(f"--seed={job.seed}")
    if hasattr(op, "fixed_argv"):
        argv += op.fixed_argv(job, outputs)
    parser = _Parser(prog=f"op {op.OP}", add_help=False)
    op.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        raise InputError(f"op {op.OP!r}: {exc}") from None
    if hasattr(op, "validate"):
        op.validate(args, job)
    return args


def result_facts(result: SynthesisResult) -> dict[str, Any]:
    """An engine result's engine, seconds and info, for the job record."""
    return {"engine": result.engine, "engine_seconds": result.seconds, "engine_info": result.info}
