"""Moving DICOM instances between a folder and a PACS, whatever the protocol (DICOMweb or DIMSE).

A *store* (:class:`~.dicomweb.DicomWebStore`, :class:`~.dimse.DimseStore`) is opened as a context manager
and offers ``find_instances(study, series)``, ``find_series(query)``, ``store(dataset)`` and
``fetch(instance) -> Dataset``. On top of that, :func:`push_folders` sends every instance of some series
folders that the server does not hold yet, and :func:`pull_series` writes every instance of a series that
the folder does not hold yet as ``<SOPInstanceUID>.dcm``: a re-run moves nothing twice. Each instance is one
step of the progress callback; a failing request is retried with growing waits (:func:`with_retries`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, TypeVar

from ..atomic import atomic_path
from ...errors import InputError, NodsynthError
from ...progress import ProgressFn, no_progress

T = TypeVar("T")
UID_CHARACTERS = frozenset("0123456789.")


class TransferError(NodsynthError):
    """The server refused or did not answer a request, also after the retries."""


class TransientError(TransferError):
    """A failure worth another try (no connection, a time-out, a busy server)."""


@dataclass(frozen=True, order=True)
class Instance:
    """Where one instance sits in the DICOM hierarchy."""

    study: str
    series: str
    sop: str
    sop_class: str = ""


def check_uid(text: str, what: str) -> str:
    """``text`` when it is a DICOM UID (digits and dots, at most 64); :class:`InputError` otherwise."""
    if not text or len(text) > 64 or not set(text) <= UID_CHARACTERS or ".." in text or text[0] == ".":
        raise InputError(f"{what} must be a DICOM UID (digits and dots, at most 64 characters), got {text!r}")
    return text


def with_retries(call: Callable[[], T], what: str, retries: int = 4, first_wait_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, tried again after 0.5, 1, 2, ... s (doubling) while it raises :class:`TransientError`,
    at most ``retries`` more times; the last failure is raised as :class:`TransferError` naming ``what``."""
    wait_s = first_wait_s
    for attempt in range(retries + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt == retries:
                raise TransferError(f"{what} failed after {retries + 1} tries: {exc}") from exc
            sleep(wait_s)
            wait_s *= 2
    raise AssertionError("unreachable")


def instance_of(dataset) -> Instance:
    """The :class:`Instance` a pydicom dataset is."""
    return Instance(str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID), str(dataset.SOPInstanceUID),
                    str(dataset.SOPClassUID))


def folder_instances(folder: Path) -> dict[Instance, Path]:
    """Every DICOM file directly in ``folder`` (headers only are read), by instance; :class:`InputError`
    for a missing or empty folder or a file that is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        raise InputError(f"series folder not found: {folder}")
    found: dict[Instance, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True,
                                     specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                                                    "SOPClassUID"])
            found[instance_of(header)] = path
        except (InvalidDicomError, AttributeError, OSError) as exc:
            raise InputError(f"{path} is not a DICOM instance with study, series and SOP instance UIDs: {exc}") from exc
    if not found:
        raise InputError(f"no DICOM file in {folder}")
    return found


def instance_path(folder: Path, instance: Instance) -> Path:
    """Where a pulled instance is written: ``FOLDER/<SOPInstanceUID>.dcm``."""
    return folder / f"{check_uid(instance.sop, 'SOPInstanceUID')}.dcm"


def write_instance(dataset, target: Path) -> Path:
    """Write a received dataset as a DICOM file (with file meta) atomically."""
    with atomic_path(target) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return target


def push_folders(store, folders: Sequence[Path], progress: ProgressFn = no_progress,
                 retries: int = 4) -> dict[str, int]:
    """Send every instance of ``folders`` that the server does not hold yet; ``{"stored": n, "present": m}``."""
    import pydicom

    local: dict[Instance, Path] = {}
    for folder in folders:
        local.update(folder_instances(Path(folder)))
    held: set[str] = set()
    for study, series in sorted({(i.study, i.series) for i in local}):
        held.update(i.sop for i in with_retries(lambda: store.find_instances(study, series),
                                                f"finding the instances of series {series}", retries))
    todo = sorted(i for i in local if i.sop not in held)
    for number, instance in enumerate(todo, 1):
        dataset = pydicom.dcmread(local[instance])
        with_retries(lambda: store.store(dataset), f"storing instance {instance.sop}", retries)
        progress(number / len(todo), f"pushed {number}/{len(todo)} instances")
    return {"stored": len(todo), "present": len(local) - len(todo)}


def _write_received(dataset, wanted: dict[str, Instance], folder: Path) -> None:
    """Write a received instance after checking it is one of ``wanted`` (by SOP instance UID), in its series."""
    received = instance_of(dataset)
    expected = wanted.get(received.sop)
    if expected is None or (received.study, received.series) != (expected.study, expected.series):
        raise TransferError(f"received instance {received.sop} of series {received.series}, which is not one of "
                            "the instances asked for")
    write_instance(dataset, instance_path(folder, expected))


def pull_instances(store, instances: Iterable[Instance], folder: Path, progress: ProgressFn = no_progress,
                   retries: int = 4) -> dict[str, int]:
    """Write each of ``instances`` (one series) missing from ``folder`` there, received UIDs checked;
    ``{"pulled": n, "present": m}``. When none is there yet and the store can stream a whole series
    (``fetch_series``: one WADO-RS request instead of one per instance), it is streamed; what a broken
    stream did not bring is then fetched instance by instance."""
    wanted = {i.sop: i for i in instances}
    missing = lambda: sorted(i for i in wanted.values() if not instance_path(folder, i).is_file())  # noqa: E731
    todo, written = missing(), 0
    if todo and len(todo) == len(wanted) and hasattr(store, "fetch_series"):
        try:
            for dataset in store.fetch_series(todo[0].study, todo[0].series):
                _write_received(dataset, wanted, folder)
                written += 1
                progress(written / len(todo), f"pulled {written}/{len(todo)} instances")
        except TransientError:
            pass  # the rest one by one, with retries
    rest = missing()
    for instance in rest:
        _write_received(with_retries(lambda: store.fetch(instance), f"retrieving instance {instance.sop}", retries),
                        wanted, folder)
        written += 1
        progress(written / len(todo), f"pulled {written}/{len(todo)} instances")
    return {"pulled": len(todo), "present": len(wanted) - len(todo)}


def series_instances(store, series: str, study: Optional[str] = None, retries: int = 4) -> list[Instance]:
    """The instances the server holds of one series; :class:`InputError` when it holds none."""
    found = with_retries(lambda: store.find_instances(study, series), f"finding the instances of series {series}",
                         retries)
    if not found:
        raise InputError(f"the server holds no instance of series {series}")
    return found
