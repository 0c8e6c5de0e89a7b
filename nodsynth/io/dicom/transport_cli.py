"""What ``nodsynth dicom push`` and ``nodsynth dicom pull`` share: the options naming the PACS, by DICOMweb
(``--url``) or DIMSE (``--dimse HOST:PORT --aet AE --called-aet AE``), the store they open, and the
progress lines (one per instance, on stderr)."""
from __future__ import annotations

import argparse
import sys

from ...errors import InputError

AUTH_HELP = ("(DICOMweb) file holding {}; credentials are never taken from the command line "
             "(default: the file named by {})")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The options naming the PACS, how to reach it and how often to try."""
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


def progress_lines(verb: str):
    """A progress callback printing ``VERB: MESSAGE`` on stderr."""
    def report(fraction: float, message: str) -> None:
        print(f"{verb}: {message}", file=sys.stderr, flush=True)
    return report
