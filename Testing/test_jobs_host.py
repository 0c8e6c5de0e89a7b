"""The job host (``nodsynth.jobs``): long work in a child process that a GUI thread follows without
blocking: progress then the result, cooperative cancel, a job that ignores cancel stopped by ending
its process, a crash reported with its cause, and no process left behind (stop, or the parent gone)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nodsynth.errors import NodsynthError
from nodsynth.jobs import CANCELLED, DONE, FAILED, RUNNING
from nodsynth.jobs.client import JobHost, describe_exit

TESTING = Path(__file__).resolve().parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():  # a zombie has exited
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@pytest.fixture
def host():
    host = JobHost()
    yield host
    host.stop()


def test_progress_then_the_result_and_the_host_stays_warm(host):
    job = host.submit("job_targets:count", 20, 0.02)
    seen = []
    while not job.poll().finished:
        seen.append(job.poll())
        time.sleep(0.01)
    assert job.poll().state == DONE and job.result() == sum(range(20))
    running = [s for s in seen if s.state == RUNNING and s.fraction > 0]
    assert running and running[0].message.startswith("step ") and all(0 < s.fraction <= 1 for s in running)
    first = host.submit("job_targets:pid")
    assert first.wait(30).state == DONE
    again = host.submit("job_targets:pid")
    assert again.wait(30).state == DONE and again.result() == first.result() == host.pid


def test_cancel_stops_a_cooperative_job_and_the_host_serves_on(host):
    job = host.submit("job_targets:count", 10_000, 0.01)
    while job.poll().fraction == 0:
        time.sleep(0.01)
    pid = host.pid
    job.cancel()
    assert job.wait(5).state == CANCELLED and host.alive and host.pid == pid
    with pytest.raises(NodsynthError, match="no result"):
        job.result()


def test_a_job_that_ignores_cancel_is_ended_with_its_process(host):
    job = host.submit("job_targets:stubborn", 60.0)
    while job.poll().fraction == 0:
        time.sleep(0.01)
    pid = host.pid
    start = time.monotonic()
    job.cancel()
    status = job.wait(10)
    print(f"cancel to stopped: {time.monotonic() - start:.2f} s")
    assert status.state == CANCELLED and "its process was ended" in status.message
    assert time.monotonic() - start <= 2.0 and not alive(pid)
    assert host.submit("job_targets:pid").wait(30).state == DONE, "the next job gets a new process"


def test_a_crash_is_reported_with_its_cause(host):
    status = host.submit("job_targets:die").wait(30)
    assert status.state == FAILED and "killed by signal SIGKILL (out of memory?)" in status.error
    failure = host.submit("job_targets:fail").wait(30)
    assert failure.state == FAILED and failure.error_type == "InputError" and "outside the volume" in failure.error
    assert "Traceback" in failure.details
    assert host.submit("job_targets:no_such_function").wait(30).state == FAILED


def test_stop_leaves_no_process(host):
    job = host.submit("job_targets:stubborn", 60.0)
    while job.poll().fraction == 0:
        time.sleep(0.01)
    pid = host.pid
    host.stop()
    assert not alive(pid)


def test_the_host_ends_when_its_parent_is_killed(tmp_path):
    """A parent that dies without stopping its host (Slicer killed) leaves no orphan behind."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(TESTING)!r})
        from nodsynth.jobs.client import JobHost
        host = JobHost()
        job = host.submit("job_targets:stubborn", 120.0)
        while job.poll().fraction == 0:
            time.sleep(0.01)
        print(host.pid, flush=True)
        time.sleep(120)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    host_pid = int(parent.stdout.readline())
    assert alive(host_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 5
    while alive(host_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(host_pid), "the job host outlived its parent"


def test_exit_descriptions():
    assert describe_exit(-signal.SIGKILL) == "was killed by signal SIGKILL (out of memory?)"
    assert describe_exit(-signal.SIGSEGV) == "was killed by signal SIGSEGV"
    assert describe_exit(1) == "exited with status 1"


def test_a_stored_input_is_written_once_and_jobs_name_it(host):
    import numpy as np

    from nodsynth.jobs.client import STORED_ON_DISK
    from nodsynth.jobs.protocol import stored_path

    first = host.put("ct:1", np.arange(10))
    assert host.put("ct:1", np.arange(999)) == first, "the same key is not written again"
    assert host.submit("job_targets:total", first).wait(30).state == DONE
    jobs = [host.submit("job_targets:total", first) for _ in range(3)]
    assert [j.wait(30) and j.result() for j in jobs] == [45, 45, 45]
    later = [host.put(f"ct:{n}", np.arange(n)) for n in range(2, STORED_ON_DISK + 2)]
    assert not stored_path(host._root, "ct:1").exists(), "the oldest stored input makes room"
    for ref in later[-2:]:  # the host keeps the last two it used loaded
        assert host.submit("job_targets:total", ref).wait(30).state == DONE
    failed = host.submit("job_targets:total", first).wait(30)
    assert failed.state == FAILED and "stored job input 'ct:1' is gone" in failed.error


def test_an_input_handed_over_in_pieces_counts_only_once_complete(host):
    import numpy as np

    from nodsynth.jobs.protocol import STORED_PIECE_BYTES, stored_path

    value = np.arange(5_000_000, dtype=np.int64)  # 40 MB
    stored, pieces = host.put_in_pieces("big", value)
    steps = 0
    for _ in pieces:
        steps += 1
        assert not host.holds("big") and not stored_path(host._root, "big").exists()
    assert steps == -(-value.nbytes // STORED_PIECE_BYTES) and host.holds("big")
    job = host.submit("job_targets:total", stored)
    assert job.wait(30).state == DONE and job.result() == int(value.sum())
    abandoned, pieces = host.put_in_pieces("other", value)
    next(pieces)
    pieces.close()  # the GUI gave up (scene closed): nothing is left, nothing counts
    assert not host.holds("other") and list((host._root / "store").iterdir()) == [stored_path(host._root, "big")]


def test_the_status_exchange_survives_windows_file_sharing(host):
    """On Windows a status file another process holds open cannot be replaced, nor opened while it is
    being replaced: a job whose status a slow reader keeps opening still finishes, with its result."""
    import threading

    windows_files = pytest.importorskip("windows_files")
    if windows_files.fcntl is None:
        pytest.skip("needs flock (on Windows the semantics are the real ones)")
    assert host.submit("windows_files:install_in_job").wait(30).state == DONE
    windows_files.install()
    stop = threading.Event()
    try:
        job = host.submit("job_targets:count", 40, 0.02)
        holds = []
        reader = threading.Thread(target=lambda: holds.append(windows_files.hold_repeatedly(
            job.dir / "status.json", 0.03, 0.01, stop)))
        reader.start()
        status = job.wait(60, poll_s=0.01)
        stop.set()
        reader.join()
        assert status.state == DONE, status
        assert job.result() == sum(range(40)) and holds[0] > 10
        assert host.submit("job_targets:count", 3).wait(30).state == DONE, "the host serves on"
    finally:
        stop.set()
        windows_files.uninstall()


def test_through_the_launcher_a_kill_a_crash_and_an_exit_are_told_apart(tmp_path):
    """Slicer starts the host through PythonSlicer, which exits with status 1 whatever ended its child:
    the host's own record tells a kill (out of memory) from a fatal error from an exit."""
    from slicer_harness.launcher import write_launcher

    host = JobHost(python=str(write_launcher(tmp_path / "bin")))
    try:
        first = host.submit("job_targets:pid")
        assert first.wait(60).state == DONE
        pid = first.result()
        assert pid == host.job_pid != host.pid
        killed = host.submit("job_targets:die").wait(60)
        assert host._process.returncode == 1, "the launcher hides the signal"
        assert killed.state == FAILED and "was killed (out of memory?)" in killed.error, killed.error
        assert f"pid {pid}" in killed.error
        crashed = host.submit("job_targets:segfault").wait(60)
        assert crashed.state == FAILED and "crashed: Fatal Python error: Segmentation fault" in crashed.error
        assert "segfault" in crashed.details, "the fatal error's traceback names the job's function"
        left = host.submit("job_targets:leave", 7).wait(60)
        assert left.state == FAILED and "exited with status 7" in left.error and "killed" not in left.error
    finally:
        host.stop()


def test_the_host_folder_goes_in_the_given_temp_folder_and_stale_ones_are_swept(tmp_path):
    """A crashed Slicer leaves its job folder (pickled CTs): the next host start removes the folders of
    applications that are gone, and only those."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"nodmaisi-jobs-{int(finished.stdout)}-abc"
    (dead / "store").mkdir(parents=True)
    (dead / "store" / "ct.pkl").write_bytes(b"patient data")
    living = tmp_path / f"nodmaisi-jobs-{os.getppid()}-def"
    other = tmp_path / "nodmaisi-jobs-notes"
    living.mkdir()
    other.mkdir()
    host = JobHost(temp_dir=str(tmp_path / "Slicer"))
    try:
        host.start()
        assert host._root.parent == tmp_path / "Slicer" and dead.exists(), "only the given folder is swept"
        host.stop()
        host.temp_dir = str(tmp_path)
        host.start()
        assert host._root.parent == tmp_path and host._root.name.startswith(f"nodmaisi-jobs-{os.getpid()}-")
        assert not dead.exists() and living.is_dir() and other.is_dir()
    finally:
        host.stop()


def test_a_server_token_never_reaches_the_disk(host):
    import hashlib

    from NodMAISICommon.settings import EngineSettings

    settings = EngineSettings(location="remote", server_url="http://gpu-box:8000", token="s3cret-T0KEN")
    job = host.submit("job_targets:token_digest", settings)
    assert job.wait(30).state == DONE
    written = [p for p in host._root.rglob("*") if p.is_file() and b"s3cret-T0KEN" in p.read_bytes()]
    assert written == [] and job.result() == hashlib.sha256(b"s3cret-T0KEN").hexdigest(), "the job had the token"
    assert "s3cret" not in repr(settings)


def test_an_input_used_again_is_the_last_to_make_room(host):
    """A CT clicked again is kept while computed inputs (a mask per job) come and go: the input evicted
    is the one least recently used, not the first stored."""
    import numpy as np

    from nodsynth.jobs.client import STORED_ON_DISK
    from nodsynth.jobs.protocol import stored_path

    ct = host.put("ct", np.arange(10))
    for n in range(STORED_ON_DISK + 2):
        assert host.put("ct", np.arange(999)) == ct, "held: not written again"
        host.put(f"mask:{n}", np.arange(n))
        assert stored_path(host._root, "ct").is_file(), f"job {n}: the CT it names was evicted"
    assert host.submit("job_targets:total", ct).wait(30).state == DONE
    assert not stored_path(host._root, "mask:0").exists()


def test_jobs_waiting_behind_one_that_ignores_cancel_run_in_the_next_process(host):
    """One host serves every module: when a job ignores Cancel and the host is ended, the jobs other
    modules queued behind it are handed to the next host process, not lost."""
    import numpy as np

    stubborn = host.submit("job_targets:stubborn", 60.0)
    stored = host.put("ct", np.arange(10))
    waiting = [host.submit("job_targets:count", 5), host.submit("job_targets:total", stored)]
    while stubborn.poll().fraction == 0:
        time.sleep(0.01)
    first_pid = host.pid
    stubborn.cancel()
    assert stubborn.wait(10).state == CANCELLED and "its process was ended" in stubborn.poll().message
    assert [job.wait(60).state for job in waiting] == [DONE, DONE], [job.poll() for job in waiting]
    assert [job.result() for job in waiting] == [10, 45] and host.pid != first_pid


def test_cancelling_a_waiting_job_skips_it_and_leaves_the_running_one_alone(host):
    running = host.submit("job_targets:count", 40, 0.03)
    waiting = host.submit("job_targets:count", 5)
    while running.poll().fraction == 0:
        time.sleep(0.01)
    pid = host.pid
    waiting.cancel()
    assert waiting.wait(5).state == CANCELLED
    assert running.wait(30).state == DONE and host.pid == pid, "the other module's job ran on, in its process"
    after = host.submit("job_targets:count", 3)
    assert after.wait(30).state == DONE and after.result() == 3


def test_after_a_failed_job_cudas_cached_memory_is_given_back(tmp_path, monkeypatch):
    """A job that fails (out of GPU memory, say) must not leave its tensors in CUDA's cache, where the
    next job, or another program, cannot use them."""
    torch = pytest.importorskip("torch")
    from nodsynth.jobs.host import StoredInputs, run_job
    from nodsynth.jobs.protocol import write_call
    from nodsynth.progress import CancelToken

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    for target, state in (("job_targets:count", DONE), ("job_targets:fail", FAILED)):
        job_dir = tmp_path / target.split(":")[1]
        job_dir.mkdir()
        write_call(job_dir, target, (3,) if state == DONE else (), {})
        assert run_job(job_dir, CancelToken(), StoredInputs(tmp_path)).state == state
        assert len(emptied) == (0 if state == DONE else 1)

    from NodMAISICommon import engines

    monkeypatch.setitem(engines._WARM_ENGINES, "nodmaisi", ("settings", "engine"))
    assert engines.release_engines() == ["nodmaisi"] and engines._WARM_ENGINES == {}
    assert len(emptied) == 2, "'Release GPU memory' empties CUDA's cache too"


def test_jobs_of_a_stopped_host_are_not_started_again(host):
    running = host.submit("job_targets:stubborn", 60.0)
    waiting = host.submit("job_targets:count", 3)
    while running.poll().fraction == 0:
        time.sleep(0.01)
    host.stop()
    assert [running.poll().state, waiting.poll().state] == [CANCELLED, CANCELLED]
    assert not host.alive, "stopping the host means no new one"


def test_a_result_is_read_a_piece_per_step(host):
    """A GUI reads a CT-sized result one piece per timer tick, never all at once."""
    from nodsynth.jobs.protocol import STORED_PIECE_BYTES

    shape = (64, 512, 512)  # 32 MB of int16
    job = host.submit("job_targets:padded_ct", shape)
    assert job.wait(60).state == DONE
    steps = list(job.result_pieces())
    *reading, (ct,) = steps
    assert set(reading) == {None} and len(reading) >= 2 * 64 * 512 * 512 // STORED_PIECE_BYTES  # + geometry arrays
    assert ct.array.shape == shape
    assert ct.array.flags.c_contiguous and int(ct.array.min()) == int(ct.array.max()) == -1000
