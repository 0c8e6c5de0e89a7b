"""``nodsynth dicom``: DICOM sub-verbs, each group registered by its own module (:data:`SUB_VERBS`);
each sub-verb sets ``dicom_run`` to the function that runs it."""
from __future__ import annotations

import argparse

from ...dicom.transport_cli import add_push_pull

VERB = "dicom"
HELP = "move DICOM series to and from a PACS (DICOMweb or DIMSE)"
SUB_VERBS = (add_push_pull,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dicom_verb", metavar="SUB_VERB", required=True)
    for add in SUB_VERBS:
        add(sub)


def run(args: argparse.Namespace) -> int:
    return args.dicom_run(args)
