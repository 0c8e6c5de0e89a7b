"""``batch plan``: a compact spec expanded into a manifest (cases x percents x seeds x engines x ...).

A spec is a JSON object; relative paths are relative to the spec's folder::

    {"inputs": {"labelmap": "maps/*.nii.gz"},
     "out": "out",
     "steps": [{"op": "augment", "percents": [100, 90, 80, 70, 60, 50]},
               {"op": "twin", "seeds": [0, 1], "engines": ["nodmaisi"], "params": {"steps": 30}}]}

* ``inputs``: input name -> a glob or a list of files; one case per file (named by its file name
  without suffix). A ``dicomweb://...?series=UID`` entry is a series on a PACS, pulled into the series
  cache (:mod:`nodsynth.io.dicom.pacs_cache`; the case is named by the UID). With several names, the sorted lists are paired in order and must be equally long.
* ``steps``: each step runs on every job of the previous step (the first on every case), once per
  combination of its ``percents`` (params.percent), ``seeds`` (the job seed), ``engines``
  (params.engine) and ``vary`` (``{"param": [values]}``); ``params`` are fixed options.
* A step's input comes from the previous step's output of the same name, else from the case's input
  of that name; ``"inputs": {"edited_labelmap": "prev.labelmap", "labelmap": "case.labelmap"}``
  chooses explicitly. ``"outputs": [...]`` adds optional outputs (default: the op's required ones).
* Outputs go to ``<out>/<op>/<tag>_<output><suffix>`` and ids are ``<op>-<tag>``, where the tag is the
  case name plus one part per varied value (``DLCS_0001_p50_s1``); with ``"output_format": "dicom"`` the ``ct``
  output is a series folder, without suffix.
"""
from __future__ import annotations

import glob
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..io.atomic import write_text_atomic
from ..io.tables import REMOTE_PREFIXES, path_in_folder, read_json
from ..errors import InputError
from ..io.volume_files import volume_stem
from .manifest import Job, job_to_row
from .opspec import PATH_PARAMS, op_arguments
from .ops import get_op

STEP_KEYS = ("op", "params", "percents", "seeds", "engines", "vary", "inputs", "outputs")
UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class _Item:
    """A case, or a job of the previous step whose outputs the next step reads."""

    case: str
    tag: str
    case_files: dict[str, Path]
    prev: dict[str, Path] = field(default_factory=dict)


def _files(value: Any, name: str, folder: Path) -> list[Path]:
    if isinstance(value, str) and value.startswith(REMOTE_PREFIXES):  # one series on a DICOMweb server
        return [path_in_folder(folder, value)]
    if isinstance(value, str):
        found = sorted(Path(p) for p in glob.glob(str(folder / os.path.expanduser(value))))
        if not found:
            raise InputError(f"spec input {name!r}: no file matches {value!r} (relative to {folder})")
        return [Path(os.path.abspath(p)) for p in found]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [path_in_folder(folder, v) for v in value]
    raise InputError(f"spec input {name!r} must be a glob or a non-empty list of paths")


def spec_cases(inputs: Any, folder: Path) -> list[_Item]:
    if not isinstance(inputs, dict) or not inputs:
        raise InputError("a spec needs \"inputs\": {name: glob or [paths]}")
    lists = {name: _files(value, name, folder) for name, value in inputs.items()}
    counts = {name: len(files) for name, files in lists.items()}
    if len(set(counts.values())) != 1:
        raise InputError(f"spec inputs pair up in sorted order and must be equally many, got {counts}")
    first = next(iter(lists))
    cases = []
    for index in range(counts[first]):
        files = {name: paths[index] for name, paths in lists.items()}
        name = UNSAFE_ID_CHARS.sub("_", volume_stem(files[first]))
        cases.append(_Item(name, name, files))
    if len({c.case for c in cases}) != len(cases):
        raise InputError(f"spec input {first!r}: two files have the same name; cases are named by file name")
    return cases


def _value_tag(key: str, value: Any) -> str:
    text = str(value).replace(".", "_") if isinstance(value, float) else str(value)
    prefix = {"percent": "p", "seed": "s", "engine": ""}.get(key, key)
    return UNSAFE_ID_CHARS.sub("_", f"{prefix}{text}")


def _axes(step: dict, where: str) -> list[list[tuple[str, Any]]]:
    """Each varied axis as its list of (key, value); key ``seed`` is the job seed, others are params."""
    axes = []
    for key, param in (("percents", "percent"), ("seeds", "seed"), ("engines", "engine")):
        if key in step:
            values = step[key]
            if not isinstance(values, list) or not values:
                raise InputError(f"{where}: {key!r} must be a non-empty list")
            axes.append([(param, v) for v in values])
    vary = step.get("vary", {})
    if not isinstance(vary, dict) or not all(isinstance(v, list) and v for v in vary.values()):
        raise InputError(f"{where}: 'vary' must be an object of param -> non-empty list of values")
    axes += [[(param, v) for v in values] for param, values in vary.items()]
    return axes


def _source(item: _Item, name: str, chosen: Optional[str], where: str) -> Optional[Path]:
    if chosen is not None:
        kind, _, key = chosen.partition(".")
        files = {"prev": item.prev, "case": item.case_files}.get(kind)
        if files is None or key not in files:
            raise InputError(f"{where}: input {name!r} from {chosen!r}: no such file (use prev.<output> or "
                             f"case.<input>; prev has {', '.join(item.prev) or 'nothing'}, the case has "
                             f"{', '.join(item.case_files)})")
        return files[key]
    return item.prev.get(name, item.case_files.get(name))


def expand_step(step: Any, number: int, items: list[_Item], out: Path, folder: Path) -> tuple[list[Job], list[_Item]]:
    """The jobs of one step for every item, and the items the next step reads."""
    where = f"step {number}"
    if not isinstance(step, dict) or "op" not in step:
        raise InputError(f"{where}: a step is an object with at least \"op\"")
    unknown = sorted(set(step) - set(STEP_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; a step has {', '.join(STEP_KEYS)}")
    op = get_op(step["op"])
    where = f"step {number} ({op.OP})"
    for key in ("params", "inputs"):
        if not isinstance(step.get(key, {}), dict):
            raise InputError(f"{where}: \"{key}\" must be an object of name -> value")
    chosen = step.get("inputs", {})
    wanted = step.get("outputs", [n for n, s in op.OUTPUTS.items() if s.required])
    bad = sorted(set(wanted) - set(op.OUTPUTS)) if isinstance(wanted, list) else ["(not a list)"]
    if bad:
        raise InputError(f"{where}: unknown output(s) {', '.join(bad)}; the op has {', '.join(op.OUTPUTS)}")
    jobs, following = [], []
    for item in items:
        for combo in itertools.product(*_axes(step, where)):
            tag = "_".join([item.tag] + [_value_tag(k, v) for k, v in combo])
            params = {**step.get("params", {}), **{k: v for k, v in combo if k != "seed"}}
            params.update({k: str(path_in_folder(folder, str(params[k]))) for k in PATH_PARAMS if k in params})
            seed = next((v for k, v in combo if k == "seed"), 0)
            inputs = {}
            for name, slot in op.INPUTS.items():
                path = _source(item, name, chosen.get(name), where)
                if path is not None:
                    inputs[name] = path
                elif slot.required:
                    raise InputError(f"{where}: nothing provides input {name!r} (the spec inputs or the previous "
                                     "step's outputs need one of that name, or map it with \"inputs\")")
            dicom = params.get("output_format") == "dicom"  # the ct output is then a series folder
            outputs = {name: out / op.OP / f"{tag}_{name}{'' if dicom and name == 'ct' else op.OUTPUTS[name].suffix}"
                       for name in wanted}
            job = Job(f"{op.OP}-{tag}", op.OP, inputs, params, seed, outputs, 0, folder)
            op_arguments(op, job, outputs)
            jobs.append(job)
            following.append(_Item(item.case, tag, item.case_files, outputs))
    return jobs, following


def plan_jobs(spec_path: str | os.PathLike) -> list[Job]:
    """Every job the spec describes, in order (step by step)."""
    spec_path = Path(os.path.abspath(spec_path))
    spec = read_json(spec_path, "spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list) or not spec["steps"]:
        raise InputError(f"{spec_path}: a spec is an object with \"inputs\" and a non-empty list \"steps\"")
    folder = spec_path.parent
    items = spec_cases(spec.get("inputs"), folder)
    out = Path(os.path.abspath(folder / str(spec.get("out", "out"))))
    jobs: list[Job] = []
    for number, step in enumerate(spec["steps"], start=1):
        step_jobs, items = expand_step(step, number, items, out, folder)
        jobs += step_jobs
    return jobs


def write_manifest(jobs: list[Job], target: str | os.PathLike) -> Path:
    """Write ``jobs`` as a manifest at ``target`` (paths relative to its folder), atomically."""
    target = Path(os.path.abspath(target))

    def rel(paths: dict[str, Path]) -> dict[str, str]:
        return {name: os.path.relpath(path, target.parent) for name, path in paths.items()}

    rows = [job_to_row(j.id, j.op, rel(j.inputs), j.params, j.seed, rel(j.outputs)) for j in jobs]
    return write_text_atomic(target, "".join(row + "\n" for row in rows))
