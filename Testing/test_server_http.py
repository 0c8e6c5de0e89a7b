"""``nodsynth serve`` over real loopback HTTP: health, bearer token, upload cap, request validation.

Every rejected request must leave the jobs folder exactly as it was.
"""
from __future__ import annotations

import re
import shutil

import httpx
import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.engines.base import EditRequest, InpaintRequest
from nodsynth.server import API_VERSION
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from server_harness import (TOKEN, ServerProcess, auth_headers, jobs_dir_entries, post_measuring_memory,
                            write_token, zip_bomb)

CAP_MB = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_http")
    proc = ServerProcess(folder / "jobs", write_token(folder), extra_args=["--max-upload-mb", str(CAP_MB)])
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def lidc_edit() -> EditRequest:
    name = "LIDC-IDRI-0001_R_1.nii.gz"
    ct = read_volume(shared_path("lidc_vois", "image", name))
    mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
    labelmap = mask.with_array(np.where(mask.array > 0, 23, 28).astype(np.uint8))
    return EditRequest(ct=ct, labelmap=labelmap, edited_labelmap=labelmap)


def _body(operation: str, request, engine: str = "classic") -> bytes:
    return wire.join(wire.encode_request(operation, engine, request))


def _rejected(server, expected_status: int, **post_kwargs) -> httpx.Response:
    before = jobs_dir_entries(server.jobs_dir)
    response = httpx.post(server.url + "/v1/jobs", timeout=30.0, **post_kwargs)
    assert response.status_code == expected_status, response.text
    assert jobs_dir_entries(server.jobs_dir) == before, "a rejected request wrote to the jobs folder"
    return response


def test_health_needs_no_token_and_describes_server(server):
    health = httpx.get(server.url + "/v1/health", timeout=10).json()
    assert health["server"] == "nodsynth" and health["api_version"] == API_VERSION
    assert health["wire_version"] == wire.WIRE_VERSION and health["auth"] == "bearer"
    assert health["engines"]["classic"]["weights_found"] is True
    assert "edit" in health["engines"]["classic"]["operations"]
    device = health["devices"][0]
    assert device["kind"] == "CPU" and device["free_memory_mb"] > 0
    assert health["max_upload_mb"] == CAP_MB


def test_401_without_or_with_a_wrong_token(server, lidc_edit):
    body = _body("edit", lidc_edit)
    for headers in ({}, auth_headers("wrong-token-0000000000000000000"), auth_headers(TOKEN + "x"),
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}):
        response = _rejected(server, 401, content=body, headers=headers)
        assert response.headers["www-authenticate"] == "Bearer"
    for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/jobs/" + "0" * 32), ("DELETE", "/v1/jobs/" + "0" * 32)):
        assert httpx.request(method, server.url + path, timeout=10).status_code == 401


def test_413_over_the_upload_cap_declared_or_streamed(server):
    slices = -(-((CAP_MB << 20) + 4096) // (2 * 512 * 512))
    noise = np.random.default_rng(0).integers(-1000, 1000, (slices, 512, 512)).astype(np.int16)
    request = InpaintRequest(ct=Volume(noise), nodule_mask=Volume(np.zeros(noise.shape, np.uint8)))
    big = wire.join(wire.encode_request("inpaint", "classic", request, codec="none"))  # a real message over the cap
    response = _rejected(server, 413, content=big, headers=auth_headers())
    assert "cap" in response.json()["detail"]

    def chunked(data: bytes):  # no Content-Length: the server must count while the body streams in
        for start in range(0, len(data), 64 << 10):
            yield data[start:start + (64 << 10)]

    _rejected(server, 413, content=chunked(big), headers=auth_headers())
    garbage = np.random.default_rng(0).integers(0, 255, len(big), dtype=np.uint8).tobytes()
    response = _rejected(server, 422, content=chunked(garbage), headers=auth_headers())  # refused at its first bytes
    assert "not a nodsynth wire message" in response.json()["detail"]


def test_422_for_volumes_on_different_grids(server, lidc_edit):
    shifted = Volume(lidc_edit.labelmap.array, lidc_edit.labelmap.spacing,
                     lidc_edit.labelmap.origin + np.array([0.0, 0.0, 2.5]))
    request = EditRequest(ct=lidc_edit.ct, labelmap=lidc_edit.labelmap, edited_labelmap=shifted)
    response = _rejected(server, 422, content=_body("edit", request), headers=auth_headers())
    assert response.json()["error_type"] == "GeometryError"
    assert re.search(r"ct and edited_labelmap are not on the same voxel grid: origin", response.json()["detail"])


def test_422_names_other_invalid_requests(server, lidc_edit):
    cases = [
        (_body("edit", lidc_edit, engine="nodmaisi-xl"), "engine 'nodmaisi-xl' is not served here"),
        (_body("edit", EditRequest(ct=lidc_edit.ct, labelmap=lidc_edit.labelmap,
                                   edited_labelmap=lidc_edit.labelmap, steps=0)), "steps must be a positive"),
        (_body("inpaint", InpaintRequest(ct=lidc_edit.ct, nodule_mask=lidc_edit.labelmap, subtype="calcified")),
         "unknown nodule subtype"),
        (_body("inpaint", InpaintRequest(ct=lidc_edit.ct, nodule_mask=lidc_edit.labelmap,
                                         histogram=np.ones(12))), "40 bins"),
        (b"GIF89a" + bytes(100), "not a nodsynth wire message"),
    ]
    for body, reason in cases:
        response = _rejected(server, 422, content=body, headers=auth_headers())
        assert reason in response.json()["detail"]
    for version, who in ((wire.WIRE_VERSION + 1, "newer"), (1, "older")):  # 1: a client before content hashes
        other = bytearray(_body("edit", lidc_edit))
        other[8:10] = version.to_bytes(2, "little")
        response = _rejected(server, 422, content=bytes(other), headers=auth_headers())
        assert (f"version {version} is not supported: this nodsynth reads version {wire.WIRE_VERSION} "
                f"(the sender's nodsynth is {who} than this one); install the same nodsynth version"
                in response.json()["detail"])


def test_job_ids_are_unguessable_and_client_strings_never_paths(server, lidc_edit):
    body = _body("edit", lidc_edit)
    ids = []
    for _ in range(2):
        response = httpx.post(server.url + "/v1/jobs", content=body, headers=auth_headers(), timeout=30)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    assert set(ids) <= set(jobs_dir_entries(server.jobs_dir))
    for probe in ("..", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", ".incoming-" + ids[0], ids[0].upper(), "job.json"):
        for suffix in ("", "/result"):
            response = httpx.get(f"{server.url}/v1/jobs/{probe}{suffix}", headers=auth_headers(), timeout=10)
            assert response.status_code == 404, (probe, response.text)
    listed = httpx.get(server.url + "/v1/jobs", headers=auth_headers(), timeout=10).json()
    assert set(ids) <= {job["id"] for job in listed}


def test_remote_engine_explains_the_upload_cap(server):
    from nodsynth.engines.remote import RemoteEngine, RemoteError

    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))  # ~ 5 MB on the wire
    mask = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    before = jobs_dir_entries(server.jobs_dir)
    with RemoteEngine(server.url, token=TOKEN) as engine:
        with pytest.raises(RemoteError, match=r"over the server's upload cap of 1 MiB.*--max-upload-mb"):
            engine.inpaint(InpaintRequest(ct=ct, nodule_mask=mask))
    assert jobs_dir_entries(server.jobs_dir) == before


@pytest.mark.parametrize("argv, reason", [
    (["--host", "0.0.0.0", "--insecure-no-token"], "only allowed on a loopback address"),
    ([], "--token-file is required"),
    (["--token-file", "/nonexistent/token.txt"], "token file not found"),
])
def test_serve_refuses_unsafe_or_incomplete_settings(argv, reason, tmp_path, capsys):
    from nodsynth.cli.main import main

    assert main(["serve", "--jobs-dir", str(tmp_path / "jobs"), *argv]) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "jobs").exists()


def test_a_second_server_on_the_same_jobs_folder_refuses_naming_the_first(server):
    second = ServerProcess(server.jobs_dir, server.token_file)
    with pytest.raises(RuntimeError, match="server exited with 2"):
        second.start(timeout_s=60)
    log = second.log()
    assert f"is used by another nodsynth serve (pid {server.process.pid}, {server.url})" in log, log
    assert httpx.get(server.url + "/v1/health", timeout=10).status_code == 200  # the first one serves on


MEMORY_LIMIT_MB = 1536
"""Address space of the zip-bomb server: its idle size (about 0.5 GiB) and 1 GiB to spare."""


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux) to limit the server's memory")
def test_a_zip_bomb_is_refused_with_its_reason_under_a_memory_limit(tmp_path):
    bomb = zip_bomb()  # 2 MiB that inflate to a 2 GiB CT
    response, idle_mb, peak_mb = post_measuring_memory(tmp_path / "jobs", bomb, as_mb=MEMORY_LIMIT_MB)
    print(f"\nzip bomb of {len(bomb) / 2**20:.1f} MiB (2048 MiB CT) under prlimit --as={MEMORY_LIMIT_MB} MiB: "
          f"HTTP {response.status_code}, server peak RSS {idle_mb:.0f} MiB idle -> {peak_mb:.0f} MiB")
    assert response.status_code == 422, response.text
    assert re.search(r"'ct' has 1073741824 elements \(1024 x 1024 x 1024\), over the limit of 268435456 voxels",
                     response.json()["detail"])
    assert peak_mb - idle_mb < 64
    assert jobs_dir_entries(tmp_path / "jobs") == []


def test_docs_and_openapi_need_the_token(server):
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert httpx.get(server.url + path, timeout=10).status_code in (401, 404), path
        assert httpx.get(server.url + path, headers=auth_headers("wrong-token-0000000000000000000"),
                         timeout=10).status_code in (401, 404), path
    schema = httpx.get(server.url + "/openapi.json", headers=auth_headers(), timeout=10)
    assert schema.status_code == 200 and "/v1/jobs" in schema.json()["paths"]
    docs = httpx.get(server.url + "/docs", headers=auth_headers(), timeout=10)
    assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text and '"/v1/jobs"' in docs.text


def test_without_a_token_web_pages_are_refused_by_host_and_origin(tmp_path, lidc_edit):
    server = ServerProcess(tmp_path / "jobs", None, extra_args=["--allow-host", "gpu-box.lan"]).start()
    try:
        port, body = server.port, _body("edit", lidc_edit)

        def answer(method: str, path: str, **headers) -> httpx.Response:
            return httpx.request(method, server.url + path, headers=headers, timeout=30,
                                 content=body if method == "POST" else None)

        for host in (f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "evil.example"):  # DNS rebinding
            for method, path in (("GET", "/v1/health"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/docs")):
                response = answer(method, path, host=host)
                assert response.status_code == 403, (host, path, response.text)
                assert "not a loopback name or address" in response.json()["detail"]
        for origin in ("http://evil.example", "null", f"http://evil.example:{port}", f"http://localhost:{port + 1}"):
            response = answer("POST", "/v1/jobs", origin=origin)
            assert response.status_code == 403 and "cross-origin request" in response.json()["detail"], origin
        assert jobs_dir_entries(server.jobs_dir) == []
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"gpu-box.lan:{port}"):
            assert answer("GET", "/v1/health", host=host).status_code == 200, host
        assert answer("GET", "/v1/jobs", origin=server.url).status_code == 200  # its own origin
        assert answer("POST", "/v1/jobs").status_code == 202  # a plain local client, no Origin
    finally:
        server.stop()
