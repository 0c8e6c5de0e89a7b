"""The PACS transport's pieces that need no server: retries with back-off, the ``dicomweb://`` form,
credentials from files, DIMSE addresses, the series cache's check, and the CLI's one-line refusals.
(Against a real Orthanc: Testing/test_pacs_transfer.py.)"""
from __future__ import annotations

import hashlib
import json
import socket

import pytest

from nodsynth.cli.main import main
from nodsynth.io.dicom.pacs_cache import INDEX, parse_remote, verify_cached
from nodsynth.io.dicom.transport import TransferError, TransientError, with_retries
from nodsynth.errors import InputError

UID = "1.2.826.0.1.3680043.10.1299.5"


def test_transient_failures_are_retried_with_doubling_waits():
    waits, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("connection refused")
        return "done"

    assert with_retries(flaky, "storing", retries=4, sleep=waits.append) == "done"
    assert waits == [0.5, 1.0]


def test_retries_end_with_one_error_naming_the_request_and_tries():
    waits = []

    def down():
        raise TransientError("connection refused")

    with pytest.raises(TransferError, match=r"storing instance 1\.2 failed after 3 tries: connection refused"):
        with_retries(down, "storing instance 1.2", retries=2, sleep=waits.append)
    assert waits == [0.5, 1.0]


def test_a_refusal_is_not_retried():
    waits = []

    def refused():
        raise TransferError("HTTP 401")

    with pytest.raises(TransferError, match="HTTP 401"):
        with_retries(refused, "x", sleep=waits.append)
    assert waits == []


def test_dicomweb_address_names_server_and_series():
    remote = parse_remote(f"dicomweb://pacs.example:8042/dicom-web?series={UID}")
    assert (remote.url, remote.series, remote.study) == ("http://pacs.example:8042/dicom-web", UID, None)
    assert parse_remote(f"dicomweb+https://pacs/dw/?study=1.2&series={UID}").url == "https://pacs/dw"


@pytest.mark.parametrize("text, problem", [
    (f"dicomweb://user:pw@pacs/dw?series={UID}", "no credentials"),
    ("dicomweb://pacs/dw?study=1.2", "series=UID"),
    (f"dicomweb://pacs/dw?series={UID}&modality=CT", "series=UID"),
    ("dicomweb://pacs/dw?series=1.2.abc", "must be a DICOM UID"),
    (f"dicomweb:///dw?series={UID}", "HOST:PORT"),
])
def test_malformed_dicomweb_addresses_are_refused(text, problem):
    with pytest.raises(InputError, match=problem):
        parse_remote(text)


def test_credentials_come_from_files(tmp_path):
    from nodsynth.io.dicom.dicomweb import session_auth

    token, basic, bad = tmp_path / "token", tmp_path / "basic", tmp_path / "bad"
    for path, text in ((token, "abc123\n"), (basic, "reader:pa:ss\n"), (bad, "no-colon\n")):
        path.write_text(text)
        path.chmod(0o600)
    assert session_auth(token_file=str(token)) == {"headers": {"Authorization": "Bearer abc123"}}
    assert session_auth(basic_auth_file=str(basic)) == {"auth": ("reader", "pa:ss")}
    with pytest.raises(InputError, match="USER:PASSWORD"):
        session_auth(basic_auth_file=str(bad))


@pytest.mark.parametrize("argv, problem", [
    (["--dimse", "localhost"], "HOST:PORT"),
    (["--dimse", "localhost:104", "--aet", "A" * 17], "--aet must be 1-16"),
    (["--dimse", "localhost:104", "--token-file", "t"], "are for DICOMweb"),
    (["--url", "ftp://pacs"], "http:// or https://"),
    (["--url", "http://127.0.0.1:1/dw", "--retries", "-1"], "--retries must be 0 or more"),
])
def test_bad_server_options_are_one_line_errors(tmp_path, capsys, argv, problem):
    out = tmp_path / "out"
    assert main(["dicom", "pull", "--series", UID, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1
    assert not out.exists()


def test_query_keys_must_be_dicom_keywords(tmp_path, capsys):
    assert main(["dicom", "pull", "--query", "Modalty=CT", "--out", str(tmp_path / "o"),
                 "--url", "http://127.0.0.1:1/dw", "--retries", "0"]) == 2
    assert "DICOM keyword" in capsys.readouterr().err


def test_push_refuses_a_folder_without_dicom(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not DICOM")
    assert main(["dicom", "push", str(tmp_path), "--url", "http://127.0.0.1:1/dw"]) == 2
    assert "is not a DICOM instance" in capsys.readouterr().err


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_unreachable_server_is_retried_then_reported(tmp_path, capsys, protocol):
    pytest.importorskip("pynetdicom" if protocol == "dimse" else "dicomweb_client")
    port, out = _closed_port(), tmp_path / "out"
    server = (["--dimse", f"127.0.0.1:{port}", "--called-aet", "PACS"] if protocol == "dimse"
              else ["--url", f"http://127.0.0.1:{port}/dicom-web"])
    assert main(["dicom", "pull", "--series", UID, "--out", str(out), *server, "--retries", "1"]) == 2
    err = capsys.readouterr().err
    assert "failed after 2 tries" in err and err.count("\n") == 1
    assert ("no association with PACS" if protocol == "dimse" else "Connection refused") in err
    assert not out.exists()


def test_cached_series_is_checked_against_its_index(tmp_path):
    folder = tmp_path / UID
    folder.mkdir()
    (folder / "1.dcm").write_bytes(b"instance one")
    (folder / INDEX).write_text(json.dumps({"sha256": {"1.dcm": hashlib.sha256(b"instance one").hexdigest()}}))
    verify_cached(folder)
    (folder / "1.dcm").write_bytes(b"instance 1")
    with pytest.raises(InputError, match=r"was changed \(1\.dcm\)"):
        verify_cached(folder)
    (folder / "1.dcm").write_bytes(b"instance one")
    (folder / "2.dcm").write_bytes(b"stray")
    with pytest.raises(InputError, match=r"was changed \(2\.dcm\)"):
        verify_cached(folder)


def test_element_comparison_of_the_pacs_tests_sees_a_changed_element(tmp_path):
    """The comparison Testing/test_pacs_transfer.py relies on reports a change of one element."""
    import pydicom
    from pacs_scenarios import build_ct_series, differences

    from conftest import shared_path

    paths = build_ct_series(shared_path("lidc_slabs", "LIDC-IDRI-0002_slab.nrrd"), tmp_path / "ct", "case", 2)
    changed = pydicom.dcmread(paths[1])
    changed.PatientName = "Other"
    changed.save_as(tmp_path / "changed.dcm")
    assert differences(paths[1], paths[1]) == []
    assert [d.split(": ")[0] for d in differences(paths[1], tmp_path / "changed.dcm")] == ["changed.dcm (0010,0010)"]


class _BrokenStreamStore:
    """A store whose series stream breaks after two instances; single instances always arrive."""

    def __init__(self, datasets):
        self.datasets, self.fetched = {str(d.SOPInstanceUID): d for d in datasets}, []

    def fetch_series(self, study, series):
        yield from list(self.datasets.values())[:2]
        raise TransientError("connection reset")

    def fetch(self, instance):
        self.fetched.append(instance.sop)
        return self.datasets[instance.sop]


def test_a_broken_series_stream_is_completed_instance_by_instance(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from nodsynth.io.dicom.transport import instance_of, pull_instances

    datasets = []
    for number in range(5):
        dataset = Dataset()
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = "1.2.1", "1.2.2"
        dataset.SOPInstanceUID, dataset.SOPClassUID = f"1.2.3.{number}", "1.2.840.10008.5.1.4.1.1.2"
        datasets.append(dataset)
    store, progress = _BrokenStreamStore(datasets), []
    counts = pull_instances(store, [instance_of(d) for d in datasets], tmp_path, lambda f, m: progress.append(m))
    assert counts == {"pulled": 5, "present": 0}
    assert sorted(store.fetched) == ["1.2.3.2", "1.2.3.3", "1.2.3.4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"1.2.3.{n}.dcm" for n in range(5)]
    assert progress[-1] == "pulled 5/5 instances"


def test_bearer_token_from_file_is_sent_to_the_server(tmp_path, capsys):
    """A loopback HTTP server that answers every QIDO-RS search with no match records the request's header."""
    pytest.importorskip("dicomweb_client")
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        status = main(["dicom", "pull", "--series", UID, "--out", str(tmp_path / "out"),
                       "--url", f"http://127.0.0.1:{server.server_port}/dicom-web", "--token-file", str(token)])
        server.shutdown()
    assert status == 2 and f"the server holds no instance of series {UID}" in capsys.readouterr().err
    assert seen and all(header == "Bearer s3cret-token" for _, header in seen)
    assert seen[0][0].startswith("/dicom-web/instances?") and f"SeriesInstanceUID={UID}" in seen[0][0]
