"""Durability: SIGKILL the server with jobs queued and one running; after a restart every job finishes
once, every result is retrievable and equals the local engine's output, and a RemoteEngine client
that was waiting on its job through the crash gets its result without noticing more than a pause."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.augment import resize_nodule
from nodsynth.engines.base import EditRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.engines.remote import RemoteEngine
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from server_harness import TOKEN, ServerProcess, auth_headers, jobs_dir_entries, write_token

JOBS = 6


def _edit_requests() -> list[EditRequest]:
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    mask = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    labels = ct.with_array(np.where(mask.array > 0, 23, np.where(ct.array < -500, 28, 0)).astype(np.uint8))
    percents = (30.0, 50.0, 70.0, 80.0, 40.0, 60.0)
    return [EditRequest(ct=ct, labelmap=labels, edited_labelmap=resize_nodule(labels, "all", p).labelmap, seed=i)
            for i, p in enumerate(percents[:JOBS])]


def _states_on_disk(jobs_dir) -> dict[str, dict]:
    return {name: json.loads((jobs_dir / name / "job.json").read_text()) for name in jobs_dir_entries(jobs_dir)}


def _wait_all_finished(url: str, ids: list[str], timeout_s: float = 180.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = {i: httpx.get(f"{url}/v1/jobs/{i}", headers=auth_headers(), timeout=10).json() for i in ids}
        if all(s["state"] in ("done", "failed", "cancelled") for s in status.values()):
            return status
        time.sleep(0.2)
    raise AssertionError(f"jobs not finished after {timeout_s} s: {status}")


def test_sigkill_with_queued_and_running_jobs_loses_and_duplicates_nothing(tmp_path):
    requests = _edit_requests()
    bodies = [wire.join(wire.encode_request("edit", "classic", r)) for r in requests[:-1]]
    token_file, jobs_dir = write_token(tmp_path), tmp_path / "jobs"
    server = ServerProcess(jobs_dir, token_file).start()
    client_result: dict = {}

    def waiting_client():  # a RemoteEngine user whose job is queued when the server dies
        with RemoteEngine(server.url, token=TOKEN, poll_interval_s=0.1, backoff_s=0.2) as engine:
            client_result["result"] = engine.edit(requests[-1])

    client = threading.Thread(target=waiting_client)
    try:
        ids = []
        for body in bodies:
            response = httpx.post(server.url + "/v1/jobs", content=body, headers=auth_headers(), timeout=60)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        client.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill while one job runs and others, the client's too, wait
            states = [j["state"] for j in httpx.get(server.url + "/v1/jobs", headers=auth_headers(), timeout=10).json()]
            if len(states) == JOBS and "running" in states and states.count("queued") >= 2:
                break
        server.kill()
    finally:
        server.kill()
    before = _states_on_disk(jobs_dir)
    assert len(before) == JOBS and set(ids) < set(before)
    states_before = [before[i]["state"] for i in before]
    assert states_before.count("running") == 1 and states_before.count("queued") >= 2, states_before
    interrupted = next(i for i in before if before[i]["state"] == "running")
    assert interrupted in ids  # the client's job, submitted last, was still queued

    restarted = ServerProcess(jobs_dir, token_file)
    try:
        restarted.start(port=server.port)  # same address: the waiting client reconnects by itself
        client.join(timeout=180)
        assert not client.is_alive()
        local_engine = ClassicEngine()
        assert client_result["result"].ct.array.tobytes() == local_engine.edit(requests[-1]).ct.array.tobytes()
        status = _wait_all_finished(restarted.url, ids)
        assert all(s["state"] == "done" for s in status.values()), [(s["state"], s["error"]) for s in status.values()]
        listed = [j["id"] for j in httpx.get(restarted.url + "/v1/jobs", headers=auth_headers(), timeout=10).json()]
        assert sorted(listed) == sorted(ids) and len(set(listed)) == len(listed)  # nothing lost or duplicated
        assert jobs_dir_entries(jobs_dir) == sorted(ids)  # the client deleted its job after fetching it
        assert status[interrupted]["attempts"] == 2  # it re-ran after the restart
        assert all(status[i]["attempts"] == 1 for i in ids if i != interrupted)
        order = sorted(ids, key=lambda i: status[i]["started_s"])
        queued_order = [i for i in ids if before[i]["state"] in ("running", "queued")]
        assert [i for i in order if i in queued_order] == queued_order  # resumed in submission order
        for job_id, request in zip(ids, requests):
            response = httpx.get(f"{restarted.url}/v1/jobs/{job_id}/result", headers=auth_headers(), timeout=60)
            assert response.status_code == 200
            remote = wire.decode_result(response.content).ct
            local = local_engine.edit(request).ct
            assert remote.array.tobytes() == local.array.tobytes() and remote.array.dtype == local.array.dtype
            deleted = httpx.delete(f"{restarted.url}/v1/jobs/{job_id}", headers=auth_headers(), timeout=10)
            assert deleted.json()["deleted"] is True
        assert jobs_dir_entries(jobs_dir) == []
    finally:
        restarted.stop()


def test_a_job_that_kills_the_server_is_failed_after_max_attempts_not_rerun_forever(tmp_path):
    token_file, jobs_dir = write_token(tmp_path), tmp_path / "jobs"

    def server() -> ServerProcess:  # serves the engine "killer", whose edit SIGKILLs the server
        return ServerProcess(jobs_dir, token_file, engines="classic,killer", extra_args=["--max-attempts", "2"],
                             launcher=[sys.executable, str(Path(__file__).with_name("killer_serve.py"))])

    grid = Volume(np.zeros((4, 4, 4), np.int16))
    body = wire.join(wire.encode_request("edit", "killer", EditRequest(ct=grid, labelmap=grid.with_array(
        np.zeros((4, 4, 4), np.uint8)), edited_labelmap=grid.with_array(np.zeros((4, 4, 4), np.uint8)))))
    first = server().start()
    try:
        response = httpx.post(first.url + "/v1/jobs", content=body, headers=auth_headers(), timeout=60)
        assert response.status_code == 202, response.text
    except httpx.TransportError:  # the job may kill the server before its 202 is sent
        pass
    [job_id] = jobs_dir_entries(jobs_dir)
    assert first.process.wait(timeout=60) == -signal.SIGKILL  # attempt 1 killed the server
    assert server().launch().process.wait(timeout=90) == -signal.SIGKILL  # attempt 2, at restart
    last = server().start()
    try:
        status = httpx.get(f"{last.url}/v1/jobs/{job_id}", headers=auth_headers(), timeout=10).json()
        assert status["state"] == "failed" and status["attempts"] == 2, status
        assert "the server stopped 2 times while running this job" in status["error"]
        assert last.process.poll() is None  # and the server stays up
    finally:
        last.stop()
