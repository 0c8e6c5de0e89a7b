"""``nodsynth dicom push``: DICOM series folders sent to a PACS; the instances it already holds are skipped."""
from __future__ import annotations

import argparse
from pathlib import Path

from .transport import push_folders
from .transport_cli import add_server_options, open_store, progress_lines

NAME = "push"
HELP = "send DICOM series folders to a PACS (DICOMweb or DIMSE); instances it already holds are skipped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="+", metavar="SERIES_DIR", help="folder(s) of DICOM files")
    add_server_options(parser)


def run(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        counts = push_folders(store, [Path(p) for p in args.input], progress_lines("push"), args.retries)
    print(f"{counts['stored']} instance(s) stored, {counts['present']} already on the server")
    return 0
