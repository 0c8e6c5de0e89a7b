"""``nodsynth dicom <sub-verb>``: DICOM out (and in transport). Each sub-verb is a module in
:data:`SUB_VERB_MODULES` defining ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``."""
from __future__ import annotations

import argparse
import importlib

VERB = "dicom"
HELP = ("write synthetic CTs as DICOM (CT series, SEG, TID 1500 SR); move DICOM series to and from a PACS "
        "(DICOMweb or DIMSE)")

SUB_VERB_MODULES = [
    "nodsynth.io.dicom.export_cli",
    "nodsynth.io.dicom.transport_push",
    "nodsynth.io.dicom.transport_pull",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name in SUB_VERB_MODULES:
        module = importlib.import_module(name)
        sub_parser = sub.add_parser(module.NAME, help=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_dicom_run=module.run)


def run(args: argparse.Namespace) -> int:
    return args._dicom_run(args)
