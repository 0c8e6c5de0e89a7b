"""Op ``push``: a DICOM series folder sent to a PACS (``nodsynth dicom push``): a server as a batch's
destination.

Input ``series`` (a folder of DICOM files, e.g. another job's output, or a ``dicomweb://`` series);
output ``receipt`` (JSON: the server, how many instances were stored and how many it held already, and
their SOP instance UIDs); params ``url`` (DICOMweb) or ``dimse`` with ``aet`` and ``called_aet``, and
``retries``. Credentials come from the files named by ``NODSYNTH_PACS_TOKEN_FILE`` or
``NODSYNTH_PACS_BASIC_AUTH_FILE``. A re-run skips the job (its record); without the record, instances the
server already holds are still not sent again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...io.dicom.transport import folder_instances, push_folders
from ...io.dicom.transport_cli import add_server_options, open_store
from ..opspec import JobContext, Slot

OP = "push"
ENGINE_OPERATION = None
INPUTS = {"series": Slot("--series-dir", volume=False)}
OUTPUTS = {"receipt": Slot("--receipt", volume=False, suffix=".json")}
PARAMS = ("url", "dimse", "aet", "called_aet", "retries")
SEEDED = False
SAME_GRID: tuple = ()
OUTPUT_GRID: dict = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--series-dir", required=True)
    parser.add_argument("--receipt", required=True)
    add_server_options(parser)


def run(ctx: JobContext) -> dict:
    args, folder = ctx.args, Path(ctx.args.series_dir)
    with open_store(args) as store:
        counts = push_folders(store, [folder], ctx.progress, args.retries)
    receipt = {"server": args.url or f"{args.called_aet}@{args.dimse}", **counts,
               "sop_instance_uids": sorted(i.sop for i in folder_instances(folder))}
    write_text_atomic(ctx.outputs["receipt"], json.dumps(receipt, indent=1) + "\n")
    return counts
