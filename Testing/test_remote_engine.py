"""``RemoteEngine`` against a real ``nodsynth serve`` on loopback: the same answers as the local engine.

The model-free ClassicEngine runs the same ``edit`` / ``inpaint`` requests locally and through the
server; the volumes must be bit-identical (array bytes, dtype and geometry).
"""
from __future__ import annotations

import re
import threading
import time
import warnings

import httpx
import numpy as np
import pytest

from conftest import shared_path
from nodsynth.augment import resize_nodule
from nodsynth.engines import get_engine
from nodsynth.engines.base import EditRequest, InpaintRequest, TwinRequest, UnsupportedOperation
from nodsynth.engines.classic import ClassicEngine
from nodsynth.engines.remote import RemoteEngine, RemoteError, normalize_server_url
from nodsynth.errors import Cancelled, GeometryError, InputError
from nodsynth.progress import CancelToken
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from server_harness import TOKEN, ServerProcess, auth_headers, free_port, write_token


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote_engine")
    proc = ServerProcess(folder / "jobs", write_token(folder))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def slab() -> tuple[Volume, Volume, Volume]:
    """A real chest CT slab, a label map from it (nodule 23, lung 28) and the nodule shrunk to 50 %."""
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    mask = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    labels = ct.with_array(np.where(mask.array > 0, 23, np.where(ct.array < -500, 28, 0)).astype(np.uint8))
    return ct, labels, resize_nodule(labels, "all", 50.0).labelmap


def _remote(server, **kwargs) -> RemoteEngine:
    return RemoteEngine(server.url, token=TOKEN, poll_interval_s=0.05, **kwargs)


def assert_identical(remote_volume: Volume, local_volume: Volume) -> None:
    assert remote_volume.array.dtype == local_volume.array.dtype
    assert remote_volume.array.shape == local_volume.array.shape
    assert remote_volume.array.tobytes() == local_volume.array.tobytes()
    for attr in ("spacing", "origin", "direction"):
        assert getattr(remote_volume, attr).tobytes() == getattr(local_volume, attr).tobytes()


def test_edit_through_server_is_bit_identical_to_local(server, slab):
    ct, labels, edited = slab
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=11)
    local = ClassicEngine().edit(request)
    reports = []
    with _remote(server) as engine:
        remote = engine.edit(request, progress=lambda f, m: reports.append((f, m)))
    assert_identical(remote.ct, local.ct)
    assert remote.engine == local.engine == "classic"
    assert remote.info == local.info
    assert not np.array_equal(remote.ct.array, ct.array)  # the edit really changed the CT
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("uploading" in m for _, m in reports)


def test_inpaint_through_server_is_bit_identical_to_local(server):
    name = "LIDC-IDRI-0003_R_2.nii.gz"
    ct = read_volume(shared_path("lidc_vois", "image", name))
    mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
    for subtype, seed in (("solid", 0), ("ground-glass", 5), ("part-solid", None)):
        request = InpaintRequest(ct=ct, nodule_mask=mask, subtype=subtype, seed=seed)
        local = ClassicEngine().inpaint(request)
        with _remote(server) as engine:
            remote = engine.inpaint(request)
        if seed is not None:
            assert_identical(remote.ct, local.ct)
        else:  # unseeded: a fresh random nodule, on the same grid and type
            assert remote.ct.array.dtype == local.ct.array.dtype and remote.ct.shape_kji == local.ct.shape_kji


def test_engine_errors_come_back_as_the_same_exception_types(server, slab):
    ct, labels, edited = slab
    empty = ct.with_array(np.zeros(ct.array.shape, np.uint8))
    with _remote(server) as engine:
        with pytest.raises(InputError, match="the nodule mask is empty"):  # raised by the engine on the server
            engine.inpaint(InpaintRequest(ct=ct, nodule_mask=empty))
        shifted = Volume(edited.array, edited.spacing, edited.origin + 1.0)
        with pytest.raises(GeometryError, match="not on the same voxel grid"):  # rejected with 422
            engine.edit(EditRequest(ct=ct, labelmap=labels, edited_labelmap=shifted))
        with pytest.raises(InputError, match="cannot twin"):
            engine.twin(TwinRequest(labelmap=labels))
    with pytest.raises(UnsupportedOperation):
        ClassicEngine().twin(TwinRequest(labelmap=labels))


def test_cancel_deletes_the_server_job(server, slab):
    ct, labels, edited = slab
    cancel = CancelToken()

    def progress(fraction, message):
        if fraction >= 0.1:  # the upload is done: the job exists on the server
            cancel.cancel()

    with _remote(server) as engine:
        with pytest.raises(Cancelled):
            engine.edit(EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited), progress=progress, cancel=cancel)
    jobs = httpx.get(server.url + "/v1/jobs", headers=auth_headers(), timeout=10).json()
    assert jobs == []  # the client cancelled the job, waited for it to stop, then deleted it
    cancelled_before_upload = CancelToken()
    cancelled_before_upload.cancel()
    with _remote(server) as engine, pytest.raises(Cancelled):
        engine.edit(EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited), cancel=cancelled_before_upload)


def test_connection_checks_and_messages(server, tmp_path):
    host_port = server.url.removeprefix("http://")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = RemoteEngine(host_port + "/", token=TOKEN)
    assert engine.server_url == server.url
    assert any("has no scheme; using http://" in str(w.message) for w in caught)
    health = engine.health()
    assert health["api_version"] == 1 and "classic" in health["engines"]
    described = engine.describe()
    assert described["reachable"] and described["engine"] == "classic" and described["weights_found"]
    engine.close()
    assert normalize_server_url("https://gpu.example.org/v1/") == "https://gpu.example.org"
    with pytest.raises(InputError, match="http:// or https://"):
        normalize_server_url("ftp://gpu")

    token_file = tmp_path / "wrong.txt"
    token_file.write_text("not-the-token-0000000000000\n")
    for kwargs, reason in (({"token_file": str(token_file)}, "does not match"), ({}, "no token was given")):
        with RemoteEngine(server.url, **kwargs) as engine:
            with pytest.raises(RemoteError, match=rf"refused the token \(401\).*{reason}"):
                engine.edit(EditRequest(ct=Volume(np.zeros((2, 2, 2))), labelmap=Volume(np.zeros((2, 2, 2))),
                                        edited_labelmap=Volume(np.zeros((2, 2, 2)))))
    with RemoteEngine(server.url, token=TOKEN, engine="hrldm") as engine:
        with pytest.raises(RemoteError, match="does not serve engine 'hrldm'; it serves: classic"):
            engine.connect()
        assert engine.describe()["reachable"] is False


def test_version_mismatch_is_refused(server, monkeypatch):
    import nodsynth.engines.remote as remote_module

    monkeypatch.setattr(remote_module, "API_VERSION", 2)
    with RemoteEngine(server.url, token=TOKEN) as engine:
        with pytest.raises(RemoteError, match=r"version mismatch.*API v1.*API v2.*same version"):
            engine.connect()


def test_unreachable_server_is_retried_then_explained():
    with RemoteEngine(f"http://127.0.0.1:{free_port()}", token=TOKEN, retries=2, backoff_s=0.05) as engine:
        with pytest.raises(RemoteError, match="cannot connect to .*is `nodsynth serve` running"):
            engine.health()


def test_cli_options_build_a_remote_engine(server, tmp_path):
    import argparse

    from nodsynth.cli.engine_args import add_engine_arguments, engine_from_args

    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    token_file = write_token(tmp_path)
    args = parser.parse_args(["--server", server.url, "--token-file", str(token_file)])
    engine = engine_from_args(args)
    assert isinstance(engine, RemoteEngine) and engine.health()["server"] == "nodsynth"
    assert get_engine("remote", server_url=server.url, token=TOKEN).connect()["api_version"] == 1


def test_cli_verb_with_server_writes_the_same_file_as_local(server, tmp_path, monkeypatch):
    from nodsynth.cli.main import main

    monkeypatch.setenv("NODSYNTH_HASH_CACHE", str(tmp_path / "hashes.json"))  # the CT's hash is kept there

    name = "LIDC-IDRI-0001_R_1.nii.gz"
    args = ["inpaint", "--ct", str(shared_path("lidc_vois", "image", name)),
            "--mask", str(shared_path("lidc_vois", "nodule_mask", name)), "--subtype", "part-solid",
            "--seed", "9", "--engine", "classic"]
    assert main(args + ["--out", str(tmp_path / "local.nii.gz")]) == 0
    remote_args = args + ["--out", str(tmp_path / "remote.nii.gz"), "--server", server.url,
                          "--token-file", str(write_token(tmp_path))]
    assert main(remote_args) == 0
    local, remote = read_volume(tmp_path / "local.nii.gz"), read_volume(tmp_path / "remote.nii.gz")
    assert_identical(remote, local)
    assert str(shared_path("lidc_vois", "image", name).resolve()) in (tmp_path / "hashes.json").read_text()
    wrong = tmp_path / "wrong" / "token.txt"
    wrong.parent.mkdir()
    wrong.write_text("wrong-token-000000000000000")
    out = tmp_path / "refused.nii.gz"
    assert main(args + ["--out", str(out), "--server", server.url, "--token-file", str(wrong)]) == 2
    assert not out.exists()


class _BrokenProxy:
    """A real HTTP server on loopback standing in for a reverse proxy whose backend is down or slow."""

    def __init__(self, status: int = 502, delay_s: float = 0.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.server.hits += 1
                time.sleep(delay_s)
                body = b"<html>upstream error</html>"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.hits = 0
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_proxy_errors_are_retried_then_explained():
    proxy = _BrokenProxy(status=502)
    try:
        with RemoteEngine(proxy.url, token=TOKEN, retries=2, backoff_s=0.05) as engine:
            with pytest.raises(RemoteError, match=r"answered 502 Bad Gateway: a reverse proxy"):
                engine.health()
        assert proxy.httpd.hits == 3  # the first try and two retries
    finally:
        proxy.close()


def test_a_server_that_does_not_answer_times_out_clearly():
    proxy = _BrokenProxy(status=200, delay_s=3.0)
    try:
        with RemoteEngine(proxy.url, token=TOKEN, timeout_s=0.5) as engine:
            with pytest.raises(RemoteError, match=r"did not answer within 0.5 s"):
                engine.health()
    finally:
        proxy.close()


def _retry_notes(messages: list[str]) -> list[int]:
    """The seconds left of every 'not reachable, retrying' progress message."""
    return [int(m.group(1)) for m in (re.search(r"server http://\S+ not reachable, retrying \((\d+) s left\)", text)
                                      for text in messages) if m]


def test_a_submit_rides_out_a_server_that_starts_late(tmp_path, slab):
    ct, labels, edited = slab
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=5)
    port = free_port()
    server = ServerProcess(tmp_path / "jobs", write_token(tmp_path))
    starter = threading.Timer(3.0, lambda: server.start(port=port))  # e.g. a restart after an update
    messages: list[str] = []
    starter.start()
    try:
        began = time.monotonic()
        with RemoteEngine(f"http://127.0.0.1:{port}", token=TOKEN, backoff_s=0.05, retry_window_s=60,
                          poll_interval_s=0.05) as engine:
            result = engine.edit(request, progress=lambda fraction, message: messages.append(message))
        waited_s = time.monotonic() - began
    finally:
        starter.join()
        server.stop()
    assert_identical(result.ct, ClassicEngine().edit(request).ct)
    assert waited_s > 3.0 and _retry_notes(messages) and max(_retry_notes(messages)) <= 60


def test_an_unreachable_server_is_given_up_after_the_retry_window(slab):
    ct, labels, edited = slab
    messages: list[str] = []
    assert RemoteEngine("http://127.0.0.1:1", token=TOKEN).retry_window_s >= 60  # the default window
    with RemoteEngine(f"http://127.0.0.1:{free_port()}", token=TOKEN, backoff_s=0.1, retry_window_s=2.5) as engine:
        began = time.monotonic()
        with pytest.raises(RemoteError, match=r"cannot connect to .*tried for [23] s"):
            engine.edit(EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited),
                        progress=lambda fraction, message: messages.append(message))
        gave_up_s = time.monotonic() - began
    notes = _retry_notes(messages)
    assert 2.5 <= gave_up_s < 5.0
    assert len(notes) >= 4 and notes == sorted(notes, reverse=True) and notes[0] in (2, 3)  # counting down
