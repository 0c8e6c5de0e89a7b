"""``nodsynth dicom pull``: series fetched from a PACS into ``OUT/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``;
the instances already there are skipped."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import InputError
from .transport import check_uid, pull_instances, series_instances, with_retries
from .transport_cli import add_server_options, open_store, progress_lines

NAME = "pull"
HELP = ("fetch series from a PACS (DICOMweb or DIMSE) into OUT/<SeriesInstanceUID>/<SOPInstanceUID>.dcm; "
        "instances already there are skipped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--series", dest="series_uid", metavar="UID", help="the SeriesInstanceUID")
    what.add_argument("--study", dest="study_uid", metavar="UID", help="every series of this StudyInstanceUID")
    what.add_argument("--query", nargs="+", metavar="KEY=VALUE",
                      help="every series matching these DICOM keywords, e.g. PatientID=LIDC-IDRI-0001 Modality=CT")
    parser.add_argument("--out", required=True, help="folder to write into (one sub-folder per series)")
    add_server_options(parser)


def parse_query(pairs: list[str]) -> dict[str, str]:
    """``["Modality=CT", ...]`` -> ``{"Modality": "CT"}``; the keys must be DICOM keywords."""
    from pydicom.datadict import tag_for_keyword

    query = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or tag_for_keyword(key) is None:
            raise InputError(f"--query takes KEYWORD=VALUE with a DICOM keyword (e.g. Modality=CT), got {pair!r}")
        query[key] = value
    return query


def _wanted_series(store, args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.series_uid:
        return [(None, check_uid(args.series_uid, "--series"))]
    query = ({"StudyInstanceUID": check_uid(args.study_uid, "--study")} if args.study_uid
             else parse_query(args.query))
    found = with_retries(lambda: store.find_series(query), f"finding the series of {query}", args.retries)
    if not found:
        raise InputError(f"no series on the server matches {query}")
    return found


def run(args: argparse.Namespace) -> int:
    out, totals = Path(args.out), {"pulled": 0, "present": 0}
    with open_store(args) as store:
        for study, series in _wanted_series(store, args):
            instances = series_instances(store, series, study, args.retries)
            counts = pull_instances(store, instances, out / series, progress_lines(f"pull {series}"), args.retries)
            totals = {k: totals[k] + counts[k] for k in totals}
    print(f"{totals['pulled']} instance(s) pulled, {totals['present']} already in {out}")
    return 0
