"""Op ``augment``: one label map, its nodule(s) resized to one volume percent (``nodsynth augment``).

Inputs ``labelmap``; outputs ``labelmap`` and optionally ``stats`` (the verb's statistics CSV) and ``ids`` (the
resized nodules, each numbered as its nodule of the input: :func:`nodsynth.cohort.source_nodules.resized_ids`);
params ``percent`` (required), ``nodule``, ``method``.
"""
from __future__ import annotations

from ...io.atomic import write_csv_atomic
from ...augment import resize_series
from ...cli.verbs import augment as verb
from ...labelmap import load_labelmap
from ...io.volume_files import volume_stem, write_volume
from ..opspec import JobContext, Slot

OP = "augment"
ENGINE_OPERATION = None
INPUTS = {"labelmap": Slot(None)}
OUTPUTS = {"labelmap": Slot(None), "stats": Slot(None, required=False, volume=False, suffix=".csv"),
           "ids": Slot(None, required=False)}
PARAMS = ("percent", "nodule", "method")
SEEDED = False
SAME_GRID = ()
OUTPUT_GRID = {"labelmap": "labelmap", "ids": "labelmap"}
add_arguments = verb.add_arguments


def fixed_argv(job, outputs) -> list[str]:
    """The verb writes into a folder: the one of the ``labelmap`` output."""
    return ["--out", str(outputs["labelmap"].parent)] if "labelmap" in outputs else []


def validate(args, job) -> None:
    verb.parse_nodule(args.nodule)


def run(ctx: JobContext) -> dict:
    args = ctx.args
    source = load_labelmap(args.input)
    result = resize_series(source, verb.parse_nodule(args.nodule), [args.percent],
                           method=args.method, progress=ctx.progress, cancel=ctx.cancel)[0]
    write_volume(result.labelmap, ctx.outputs["labelmap"])
    if "ids" in ctx.outputs:
        from ...cohort.source_nodules import resized_ids

        write_volume(resized_ids(source, result.labelmap), ctx.outputs["ids"])
    rows = verb.stats_rows(volume_stem(args.input), [result])
    if "stats" in ctx.outputs:
        write_csv_atomic(ctx.outputs["stats"], rows)
    return {"nodules": rows}
