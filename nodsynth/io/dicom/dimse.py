"""A DIMSE peer (a PACS's DICOM port) as a store of :mod:`.transport`: C-FIND to find, C-STORE to
store, C-GET to fetch (Study Root), with pynetdicom.

Every association's socket gets ``TCP_NODELAY`` (Nagle's algorithm off), so that a small message is not held
back waiting for the peer's delayed ACK (about 40 ms a message on Linux). The peer needs the same: DCMTK,
the DICOM layer of Orthanc and many PACS, sets it only when started with the environment variable
``TCP_NODELAY=1`` (measured with Orthanc 1.10 of Debian 12; figures in
``Testing/benchmarks/bench_pacs_transfer.py``). Associations are kept open
between instances and reopened when an instance needs a presentation context the open one lacks.
"""
from __future__ import annotations

import socket
from typing import Optional

from ...errors import InputError
from .transport import Instance, TransferError, TransientError

SUCCESS, PENDING = frozenset({0x0000}), frozenset({0xFF00, 0xFF01})
STORE_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; :class:`InputError` otherwise."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--dimse must be HOST:PORT (a port 1-65535), got {text!r}")
    return host.strip("[]"), int(port)


def check_ae_title(text: str, option: str) -> str:
    """An application entity title: 1-16 printable ASCII characters, no backslash."""
    if not 0 < len(text.strip()) <= 16 or not text.isascii() or not text.isprintable() or "\\" in text:
        raise InputError(f"{option} must be 1-16 printable ASCII characters without a backslash, got {text!r}")
    return text


def _status(answer) -> Optional[int]:
    """The status code of a DIMSE answer; None when the association died before answering."""
    return int(answer.Status) if answer is not None and "Status" in answer else None


class DimseStore:
    """``with DimseStore("127.0.0.1:4242", "NODSYNTH", "ORTHANC") as store: ...``"""

    def __init__(self, address: str, aet: str, called_aet: str, nodelay: bool = True, timeout_s: float = 60.0):
        self.host, self.port = parse_address(address)
        self.aet, self.called_aet = check_ae_title(aet, "--aet"), check_ae_title(called_aet, "--called-aet")
        self.nodelay, self.timeout_s = nodelay, timeout_s
        self._assoc, self._kind, self._needs, self._received = None, None, frozenset(), []

    def __enter__(self) -> "DimseStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self._release()

    def _release(self) -> None:
        if self._assoc is not None and self._assoc.is_established:
            self._assoc.release()
        self._assoc = None

    def _on_store(self, event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        self._received.append(dataset)
        return 0x0000

    def _open(self, kind: str, needs: frozenset):
        """An established association for ``kind`` (find, store, get) offering every context in ``needs``."""
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, build_role, evt
        from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,
                                          StudyRootQueryRetrieveInformationModelGet)

        if self._assoc is not None and self._assoc.is_established and self._kind == kind and needs <= self._needs:
            return self._assoc
        self._release()
        needs = needs | (self._needs if self._kind == kind else frozenset())
        ae = AE(ae_title=self.aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = self.timeout_s
        roles, handlers = [], []
        if kind == "find":
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        elif kind == "store":
            for sop_class, syntax in sorted(needs):
                ae.add_requested_context(sop_class, syntax)
        else:
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
            for sop_class in sorted(needs):
                ae.add_requested_context(sop_class, ALL_TRANSFER_SYNTAXES)
                roles.append(build_role(sop_class, scp_role=True))
            handlers = [(evt.EVT_C_STORE, self._on_store)]
        assoc = ae.associate(self.host, self.port, ae_title=self.called_aet, ext_neg=roles, evt_handlers=handlers)
        where = f"{self.called_aet} at {self.host}:{self.port}"
        if assoc.is_rejected:
            raise TransferError(f"{where} rejected the association of {self.aet}")
        if not assoc.is_established:
            raise TransientError(f"no association with {where}")
        if self.nodelay:
            assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._assoc, self._kind, self._needs = assoc, kind, needs
        return assoc

    def _find(self, identifier) -> list:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        assoc, found = self._open("find", frozenset()), []
        for status, answer in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            code = _status(status)
            if code in PENDING:
                found.append(answer)
            elif code is None:
                self._release()
                raise TransientError(f"C-FIND: the association with {self.called_aet} ended without an answer")
            elif code not in SUCCESS:
                raise TransferError(f"C-FIND refused by {self.called_aet}: status 0x{code:04X}")
        return found

    def _identifier(self, level: str, **keys):
        from pydicom import Dataset

        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        return identifier

    def find_series(self, query: dict[str, str]) -> list[tuple[str, str]]:
        """``(StudyInstanceUID, SeriesInstanceUID)`` of every series matching ``query`` (keywords -> values)."""
        keys = {"StudyInstanceUID": "", "SeriesInstanceUID": "", **query}
        return sorted({(str(a.StudyInstanceUID), str(a.SeriesInstanceUID))
                       for a in self._find(self._identifier("SERIES", **keys))})

    def find_instances(self, study: Optional[str], series: str) -> list[Instance]:
        studies = [study] if study else sorted({s for s, _ in self.find_series({"SeriesInstanceUID": series})})
        return [Instance(str(a.StudyInstanceUID), str(a.SeriesInstanceUID), str(a.SOPInstanceUID), str(a.SOPClassUID))
                for s in studies
                for a in self._find(self._identifier("IMAGE", StudyInstanceUID=s, SeriesInstanceUID=series,
                                                     SOPInstanceUID="", SOPClassUID=""))]

    def store(self, dataset) -> None:
        syntax = str(dataset.file_meta.TransferSyntaxUID)
        assoc = self._open("store", frozenset({(str(dataset.SOPClassUID), syntax)}))
        code = _status(assoc.send_c_store(dataset))
        if code is None:
            self._release()
            raise TransientError(f"C-STORE: the association with {self.called_aet} ended without an answer")
        if code not in SUCCESS | STORE_WARNINGS:
            raise TransferError(f"{self.called_aet} refused instance {dataset.SOPInstanceUID}: C-STORE status 0x{code:04X}")

    def fetch(self, instance: Instance):
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

        if not instance.sop_class:
            raise InputError(f"instance {instance.sop}: C-GET needs its SOP class UID")
        assoc = self._open("get", frozenset({instance.sop_class}))
        self._received = []
        identifier = self._identifier("IMAGE", StudyInstanceUID=instance.study, SeriesInstanceUID=instance.series,
                                      SOPInstanceUID=instance.sop)
        code = None
        for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
            code = _status(status)
            if code is None:
                self._release()
                raise TransientError(f"C-GET: the association with {self.called_aet} ended without an answer")
        if code not in SUCCESS or len(self._received) != 1:
            raise TransferError(f"C-GET of instance {instance.sop} from {self.called_aet}: status "
                                f"0x{code or 0:04X}, {len(self._received)} instance(s) received")
        return self._received[0]
