"""The persisted job store on its own: ordering, recovery of every state after a crash, expiry."""
from __future__ import annotations

import json

import numpy as np

from nodsynth.server.jobs import DONE, FAILED, QUEUED, RUNNING, JobStore


def test_order_recovery_and_expiry(tmp_path):
    store = JobStore(tmp_path, keep_s=3600)
    jobs = [store.submit([b"request-%d" % n], "edit", "classic") for n in range(4)]
    assert [store.queue_position(j) for j in jobs] == [0, 1, 2, 3]
    first = store.next_job(timeout_s=0)
    assert first is jobs[0] and first.state == RUNNING and first.attempts == 1
    store.result_path(first).write_bytes(b"result")
    store.finish(first, DONE, "done")
    second = store.next_job(timeout_s=0)
    (tmp_path / ".incoming-deadbeef").mkdir()  # a half-made submission at crash time
    (tmp_path / "not-a-job").mkdir()
    (tmp_path / jobs[3].id / "request.bin").unlink()  # a queued job whose request is gone

    restarted = JobStore(tmp_path, keep_s=3600)  # as after SIGKILL: nothing was closed cleanly
    states = {j.id: j.state for j in restarted.jobs()}
    assert states == {jobs[0].id: DONE, second.id: QUEUED, jobs[2].id: QUEUED, jobs[3].id: FAILED}
    assert not (tmp_path / ".incoming-deadbeef").exists() and (tmp_path / "not-a-job").exists()
    assert restarted.next_job(timeout_s=0).id == second.id  # the interrupted job runs first again
    assert restarted.get(second.id).attempts == 2
    assert restarted.get("../" + jobs[0].id) is None and restarted.get(jobs[0].id.upper()) is None

    record = json.loads((tmp_path / jobs[0].id / "job.json").read_text())
    assert restarted.expire(now_s=record["finished_s"] + 3599) == 0
    assert restarted.expire(now_s=record["finished_s"] + 3700) == 2  # the done and the failed job
    assert not (tmp_path / jobs[0].id).exists() and restarted.get(jobs[0].id) is None
    assert not (tmp_path / jobs[3].id).exists()
    assert [j.state for j in restarted.jobs()] == [RUNNING, QUEUED]  # unfinished jobs never expire


def test_cancel_queued_and_running(tmp_path):
    store = JobStore(tmp_path)
    running_job = store.submit([b"a"], "twin", "nodmaisi")
    queued_job = store.submit([b"b"], "twin", "nodmaisi")
    assert store.next_job(timeout_s=0) is running_job
    store.cancel(queued_job)
    store.cancel(running_job)
    assert queued_job.state == "cancelled" and running_job.state == RUNNING and running_job.cancel.cancelled
    assert store.next_job(timeout_s=0) is None


def test_a_job_that_kills_the_server_fails_at_the_restart_after_its_third_start(tmp_path):
    store = JobStore(tmp_path)
    crasher = store.submit([b"request"], "edit", "classic")
    for attempt in (1, 2, 3):
        running = store.next_job(timeout_s=0)
        assert running.id == crasher.id and running.attempts == attempt
        store = JobStore(tmp_path)  # the job killed the server: nothing was finished cleanly
    job = store.get(crasher.id)
    assert job.state == FAILED and job.attempts == 3 and job.finished_s is not None
    assert "the server stopped 3 times while running this job" in job.error
    assert "--max-attempts 3" in job.error
    assert store.next_job(timeout_s=0) is None
    on_disk = json.loads((tmp_path / crasher.id / "job.json").read_text())
    assert on_disk["state"] == FAILED and on_disk["attempts"] == 3
    assert JobStore(tmp_path, max_attempts=5).get(crasher.id).state == FAILED  # failed stays failed


def test_a_request_written_while_it_arrives_becomes_a_job_whole_or_leaves_nothing(tmp_path):
    body = np.random.default_rng(0).integers(0, 255, 9 << 20, dtype=np.uint8).tobytes()  # > 2 write pieces
    store = JobStore(tmp_path)
    incoming = store.incoming()
    for start in range(0, len(body), 65536):
        incoming.write(body[start:start + 65536])
    job = store.commit(incoming, "edit", "classic")
    assert store.request_path(job).read_bytes() == body
    assert oct(store.request_path(job).stat().st_mode & 0o777) == "0o600"
    abandoned = store.incoming()
    abandoned.write(body[:1000])
    abandoned.discard()
    left = store.incoming()  # as a server killed mid-upload leaves it
    left.write(body[:1000])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([job.id, left.folder.name])
    JobStore(tmp_path)  # a restart
    assert sorted(p.name for p in tmp_path.iterdir()) == [job.id]
