"""The ``output_format`` param of the ops that write a CT (``twin``, ``inpaint``, ``edit``, ``cohort_case``,
``cohort_edit``): ``volume`` (default: the file the output path names, NIfTI / NRRD / MHA) or ``dicom``: the output
path names a folder (no suffix) that becomes a CT Image Storage series written by ``nodsynth dicom export``'s writer
(:mod:`nodsynth.io.dicom.export`): marked synthetic, the engine, its weights' SHA-256 and the seed in
DerivationDescription, a new de-identified patient and study per job, float HU rounded to integers and clipped to
signed 16 bits. As every batch output it is written in the job's staging folder and moved into place whole.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from ...io.atomic import file_suffixes
from ...errors import InputError
from ..manifest import Job
from ..opspec import JobContext

PARAM = "output_format"
FORMATS = ("volume", "dicom")


def add_output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-format", choices=FORMATS, default=FORMATS[0],
                        help="volume: the output file; dicom: the output path is a folder for a synthetic CT series")


def check_output_format(args: argparse.Namespace, job: Job, output: str = "ct") -> None:
    """A DICOM output must name a folder (a path without suffix)."""
    path = job.outputs.get(output)
    if args.output_format != "dicom":
        return
    from ...io.dicom.series import pydicom_module

    pydicom_module()  # refused before any job runs when pydicom is missing
    if path is not None and file_suffixes(path):
        raise InputError(f"output {output!r} is written as a DICOM series, a folder: name it without a suffix "
                         f"(got {path.name})")


@contextmanager
def ct_output(ctx: JobContext, seed: Optional[object] = None, output: str = "ct") -> Iterator[Path]:
    """The path the op writes its CT to: the output itself, or with ``output_format`` dicom an NRRD beside it in
    the staging folder (its header keeps the engine and checkpoint entries), made the series when the block ends."""
    target = ctx.outputs[output]
    if ctx.args.output_format != "dicom":
        yield target
        return
    volume_path = target.with_name(f"{target.name}.volume.nrrd")
    yield volume_path
    from ...io.dicom.export import file_provenance, synthetic_header
    from ...io.dicom.write import ct_slices, save_slices
    from ...io.volume_files import read_volume

    provenance = {"nodsynth_engine": ctx.args.engine, **file_provenance(volume_path)}
    header = synthetic_header(provenance, ctx.job.seed if seed is None else seed)
    slices = ct_slices(read_volume(volume_path), header)
    target.mkdir()
    save_slices(slices, target)
    volume_path.unlink()
