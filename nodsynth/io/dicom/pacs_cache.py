"""A series on a DICOMweb server named as an input: pulled once into a local cache, verified, and read
from there.

Form (in a batch manifest, a cohort spec, or wherever a path is read by
:func:`nodsynth.io.tables.path_in_folder`)::

    dicomweb://HOST:PORT/DICOMWEB/ROOT?series=SERIES_INSTANCE_UID[&study=STUDY_INSTANCE_UID]

(``dicomweb+https://`` for HTTPS). Credentials are never part of the address: the files named by the
environment variables ``NODSYNTH_PACS_TOKEN_FILE`` (a bearer token) or ``NODSYNTH_PACS_BASIC_AUTH_FILE``
(``USER:PASSWORD``) are used. The cache is ``NODSYNTH_PACS_CACHE`` (default ``~/.cache/nodsynth/pacs``),
one folder per SeriesInstanceUID: instances are pulled into ``UID.partial`` (a broken pull resumes
there), each received instance's study, series and SOP instance UIDs checked against the server's
listing, then the SHA-256 of every file is written to :data:`INDEX` and the folder renamed to ``UID``.
A cached series is checked against its index and used without contacting the server.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from ..atomic import write_text_atomic
from ...errors import InputError
from ...progress import ProgressFn, no_progress
from .transport import check_uid, pull_instances, series_instances

SCHEMES = {"dicomweb": "http", "dicomweb+https": "https"}
INDEX = ".nodsynth-series.json"


@dataclass(frozen=True)
class RemoteSeries:
    url: str
    """The DICOMweb root (http or https)."""
    series: str
    study: Optional[str] = None


def parse_remote(text: str) -> RemoteSeries:
    """The server and series a ``dicomweb://`` address names; :class:`InputError` for a malformed one."""
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise InputError(f"{text!r}: a remote series is dicomweb://HOST:PORT/ROOT?series=UID")
    if parts.username or parts.password:
        raise InputError(f"{text!r}: no credentials in the address; name a file in NODSYNTH_PACS_TOKEN_FILE or "
                         "NODSYNTH_PACS_BASIC_AUTH_FILE")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"series", "study"})
    if unknown or len(query.get("series", [])) != 1 or len(query.get("study", [])) > 1:
        raise InputError(f"{text!r}: the query must be series=UID, optionally &study=UID (got {parts.query!r})")
    study = query.get("study", [None])[0]
    return RemoteSeries(f"{SCHEMES[parts.scheme]}://{parts.netloc}{parts.path}".rstrip("/"),
                        check_uid(query["series"][0], "series"), study and check_uid(study, "study"))


def cache_root() -> Path:
    """Where pulled series are kept: ``NODSYNTH_PACS_CACHE`` or ``~/.cache/nodsynth/pacs``."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nodsynth" / "pacs"
    return Path(os.environ.get("NODSYNTH_PACS_CACHE") or default)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_cached(folder: Path) -> None:
    """:class:`InputError` unless every file the index lists is there with its SHA-256 and no other is."""
    from ..tables import read_json

    index = read_json(folder / INDEX, "series cache index")
    files = {p.name for p in folder.glob("*.dcm")}
    listed = set(index.get("sha256", {}))
    changed = sorted(files ^ listed) + sorted(n for n in files & listed if _sha256(folder / n) != index["sha256"][n])
    if changed:
        raise InputError(f"the cached series {folder} was changed ({', '.join(changed[:5])}); remove the folder "
                         "to pull the series again")


def local_series(text: str, root: Optional[Path] = None, progress: ProgressFn = no_progress) -> Path:
    """The local folder of the series a ``dicomweb://`` address names, pulled into the cache unless there."""
    from .dicomweb import DicomWebStore, session_auth

    remote = parse_remote(text)
    root = Path(root or cache_root())
    final = root / remote.series
    if final.is_dir():
        verify_cached(final)
        return final
    partial = root / f"{remote.series}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    with DicomWebStore(remote.url, session_auth()) as store:
        instances = series_instances(store, remote.series, remote.study)
        pull_instances(store, instances, partial, progress)
    names = {f"{i.sop}.dcm" for i in instances}
    for stray in set(p.name for p in partial.glob("*.dcm")) - names:
        (partial / stray).unlink()  # an instance the server no longer lists
    index = {"url": remote.url, "series": remote.series, "sha256": {n: _sha256(partial / n) for n in sorted(names)}}
    write_text_atomic(partial / INDEX, json.dumps(index, indent=1) + "\n")
    os.replace(partial, final)
    return final
