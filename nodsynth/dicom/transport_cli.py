"""``nodsynth dicom push`` and ``nodsynth dicom pull``: series to and from a PACS, by DICOMweb (``--url``)
or DIMSE (``--dimse HOST:PORT --aet AE --called-aet AE``). :func:`add_push_pull` registers both on the
``dicom`` verb's sub-parsers; each sets ``dicom_run`` to its function."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from .transport import check_uid, pull_instances, push_folders, series_instances, with_retries

AUTH_HELP = ("(DICOMweb) file holding {}; credentials are never taken from the command line "
             "(default: the file named by {})")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="DICOMweb root, e.g. http://pacs:8042/dicom-web (QIDO-RS, STOW-RS, WADO-RS)")
    where.add_argument("--dimse", metavar="HOST:PORT", help="DICOM port of the PACS (C-FIND, C-STORE, C-GET)")
    parser.add_argument("--aet", default="NODSYNTH", help="(DIMSE) our application entity title (default: NODSYNTH)")
    parser.add_argument("--called-aet", default="ANY-SCP", help="(DIMSE) the PACS's AE title (default: ANY-SCP)")
    parser.add_argument("--no-nodelay", dest="nodelay", action="store_false",
                        help="(DIMSE) leave Nagle's algorithm on (TCP_NODELAY is set by default; for measuring)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token-file", help=AUTH_HELP.format("a bearer token", "NODSYNTH_PACS_TOKEN_FILE"))
    auth.add_argument("--basic-auth-file", help=AUTH_HELP.format("USER:PASSWORD on one line (HTTP basic auth)",
                                                                  "NODSYNTH_PACS_BASIC_AUTH_FILE"))
    parser.add_argument("--retries", type=int, default=4,
                        help="tries again after a failed request this many times, waiting 0.5 s, 1 s, 2 s, ... (default: 4)")


def add_push_pull(sub) -> None:
    """Add the ``push`` and ``pull`` sub-verbs to ``sub`` (the ``dicom`` verb's sub-parsers)."""
    push = sub.add_parser("push", help="send DICOM series folders to a PACS; instances it already holds are skipped")
    push.add_argument("input", nargs="+", metavar="SERIES_DIR", help="folder(s) of DICOM files")
    add_server_options(push)
    push.set_defaults(dicom_run=run_push)
    pull = sub.add_parser("pull", help="fetch series from a PACS into OUT/<SeriesInstanceUID>/<SOPInstanceUID>.dcm; "
                                       "instances already there are skipped")
    what = pull.add_mutually_exclusive_group(required=True)
    what.add_argument("--series", dest="series_uid", metavar="UID", help="the SeriesInstanceUID")
    what.add_argument("--study", dest="study_uid", metavar="UID", help="every series of this StudyInstanceUID")
    what.add_argument("--query", nargs="+", metavar="KEY=VALUE",
                      help="every series matching these DICOM keywords, e.g. PatientID=LIDC-IDRI-0001 Modality=CT")
    pull.add_argument("--out", required=True, help="folder to write into (one sub-folder per series)")
    add_server_options(pull)
    pull.set_defaults(dicom_run=run_pull)


def open_store(args: argparse.Namespace):
    """The DICOMweb or DIMSE store the options name (not yet opened)."""
    if args.retries < 0:
        raise InputError(f"--retries must be 0 or more, got {args.retries}")
    if args.url:
        from .dicomweb import DicomWebStore, session_auth

        return DicomWebStore(args.url, session_auth(args.token_file, args.basic_auth_file))
    if args.token_file or args.basic_auth_file:
        raise InputError("--token-file and --basic-auth-file are for DICOMweb (--url); DIMSE has no credentials")
    from .dimse import DimseStore

    return DimseStore(args.dimse, args.aet, args.called_aet, nodelay=args.nodelay)


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


def _progress(verb: str):
    def report(fraction: float, message: str) -> None:
        print(f"{verb}: {message}", file=sys.stderr, flush=True)
    return report


def run_push(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        counts = push_folders(store, [Path(p) for p in args.input], _progress("push"), args.retries)
    print(f"{counts['stored']} instance(s) stored, {counts['present']} already on the server")
    return 0


def _wanted_series(store, args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.series_uid:
        return [(None, check_uid(args.series_uid, "--series"))]
    query = ({"StudyInstanceUID": check_uid(args.study_uid, "--study")} if args.study_uid
             else parse_query(args.query))
    found = with_retries(lambda: store.find_series(query), f"finding the series of {query}", args.retries)
    if not found:
        raise InputError(f"no series on the server matches {query}")
    return found


def run_pull(args: argparse.Namespace) -> int:
    out, totals = Path(args.out), {"pulled": 0, "present": 0}
    with open_store(args) as store:
        for study, series in _wanted_series(store, args):
            instances = series_instances(store, series, study, args.retries)
            counts = pull_instances(store, instances, out / series, _progress(f"pull {series}"), args.retries)
            totals = {k: totals[k] + counts[k] for k in totals}
    print(f"{totals['pulled']} instance(s) pulled, {totals['present']} already in {out}")
    return 0
