"""A DICOMweb server as a store of :mod:`.transport`: QIDO-RS to find, STOW-RS to store, WADO-RS to fetch.

Authentication comes from a file, never from the command line: ``--token-file`` holds a bearer token,
``--basic-auth-file`` holds ``USER:PASSWORD`` on one line; without either option, the files named by the
environment variables ``NODSYNTH_PACS_TOKEN_FILE`` or ``NODSYNTH_PACS_BASIC_AUTH_FILE`` (batch jobs,
``dicomweb://`` inputs). Connection failures, time-outs and the
answers 429, 502, 503 and 504 are :class:`~.transport.TransientError` (retried); any other refusal is
:class:`~.transport.TransferError`.
"""
from __future__ import annotations

import os
import re
from typing import Iterator, Optional

from ...errors import InputError
from ...server.auth import read_token_file
from .transport import Instance, TransferError, TransientError

RETRIED_STATUS = frozenset({429, 502, 503, 504})
TOKEN_FILE_VARIABLE, BASIC_AUTH_FILE_VARIABLE = "NODSYNTH_PACS_TOKEN_FILE", "NODSYNTH_PACS_BASIC_AUTH_FILE"
STUDY, SERIES, SOP, SOP_CLASS = "0020000D", "0020000E", "00080018", "00080016"


def session_auth(token_file: Optional[str] = None, basic_auth_file: Optional[str] = None) -> dict:
    """``requests`` session settings for the credentials in a file: ``{"headers": {...}}`` for a bearer
    token, ``{"auth": (user, password)}`` for basic authentication, ``{}`` for none. Without either file,
    those the environment names (:data:`TOKEN_FILE_VARIABLE`, :data:`BASIC_AUTH_FILE_VARIABLE`)."""
    if not token_file and not basic_auth_file:
        token_file, basic_auth_file = os.environ.get(TOKEN_FILE_VARIABLE), os.environ.get(BASIC_AUTH_FILE_VARIABLE)
    if token_file and basic_auth_file:
        raise InputError("give --token-file or --basic-auth-file, not both")
    if token_file:
        return {"headers": {"Authorization": f"Bearer {read_token_file(token_file)}"}}
    if basic_auth_file:
        user, colon, password = read_token_file(basic_auth_file).partition(":")
        if not user or not colon:
            raise InputError(f"basic-auth file {basic_auth_file} must hold USER:PASSWORD on one line")
        return {"auth": (user, password)}
    return {}


def _value(attributes: dict, tag: str) -> str:
    values = attributes.get(tag, {}).get("Value") or [""]
    return str(values[0])


class DicomWebStore:
    """``with DicomWebStore("http://host:8042/dicom-web") as store: ...``"""

    def __init__(self, url: str, auth: Optional[dict] = None, timeout_s: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--url must start with http:// or https://, got {url!r}")
        self.url, self.auth, self.timeout_s = url.rstrip("/"), auth or {}, timeout_s
        self.client, self.session = None, None

    def __enter__(self) -> "DicomWebStore":
        import requests
        from dicomweb_client import DICOMwebClient

        self.session = requests.Session()
        self.session.headers.update(self.auth.get("headers", {}))
        self.session.auth = self.auth.get("auth")
        self.client = DICOMwebClient(self.url, session=self.session, timeout=self.timeout_s)
        self.client.set_http_retry_params(retry=False)  # one retry policy: transport.with_retries
        return self

    def __exit__(self, *exc_info) -> None:
        self.session.close()

    def _call(self, method, *args, **kwargs):
        import requests

        try:
            return method(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
            raise TransientError(f"no answer from {self.url} ({reason.group(0) if reason else type(exc).__name__})") from exc
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            error = TransientError if status in RETRIED_STATUS else TransferError
            hint = "; check the credentials file" if status in (401, 403) else ""
            raise error(f"{self.url} answered HTTP {status} ({exc.response.reason if exc.response is not None else exc})"
                        f"{hint}") from exc

    def find_instances(self, study: Optional[str], series: str) -> list[Instance]:
        found = self._call(self.client.search_for_instances, study_instance_uid=study,
                           search_filters={"SeriesInstanceUID": series}, fields=[SOP_CLASS], get_remaining=True)
        return [Instance(_value(a, STUDY), _value(a, SERIES), _value(a, SOP), _value(a, SOP_CLASS)) for a in found]

    def find_series(self, query: dict[str, str]) -> list[tuple[str, str]]:
        """``(StudyInstanceUID, SeriesInstanceUID)`` of every series matching the QIDO-RS ``query``."""
        found = self._call(self.client.search_for_series, search_filters=query, get_remaining=True)
        return sorted({(_value(a, STUDY), _value(a, SERIES)) for a in found})

    def store(self, dataset) -> None:
        answer = self._call(self.client.store_instances, [dataset])
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reason = failed[0].get("FailureReason", "no reason given")
            raise TransferError(f"{self.url} refused instance {dataset.SOPInstanceUID} (failure reason {reason})")

    def fetch_series(self, study: str, series: str) -> Iterator:
        """Every instance of a series, in one WADO-RS request, each as soon as it has arrived."""
        stream = self._call(self.client.iter_series, study, series, media_types=(("application/dicom", "*"),))
        while True:
            try:
                dataset = self._call(next, stream)
            except StopIteration:
                return
            yield dataset

    def fetch(self, instance: Instance):
        return self._call(self.client.retrieve_instance, instance.study, instance.series, instance.sop,
                          media_types=(("application/dicom", "*"),))
