"""The Ray executor on a local 2-CPU Ray cluster started here: 40 jobs (model-free augment and inpaint,
tiny-config NodMAISI twins); a Ray worker process is SIGKILLed mid-twin; every job is still done
exactly once and every output equals a serial (inline) run's, byte for byte.

Skipped when Ray is not installed (the optional extra ``nodsynth[ray]``)."""
from __future__ import annotations

import json
import os
import signal
import threading

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor test needs Ray: pip install 'nodsynth[ray]'")
pytest.importorskip("monai", reason="the twin jobs need torch and MONAI (pip install 'nodsynth[engines]')")

from batch_cases import (ENGINE_OPTIONS, comparable, expected_outputs, journal, mixed_rows,  # noqa: E402
                         output_files, record_file, record_ids, wait_until, write_inputs, write_manifest)
from nodsynth.batch import run_manifest  # noqa: E402
from nodsynth.batch.claims import read_claim  # noqa: E402
from test_nodmaisi_engine import tiny_weights_folder  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def is_ray_worker(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        command = handle.read()
    return b"ray::" in command or b"default_worker" in command


def test_a_killed_ray_worker_still_gives_every_job_once_and_the_serial_runs_bytes(tmp_path, ray_cluster):
    write_inputs(tmp_path / "in")
    (tmp_path / "weights").mkdir()
    weights = str(tiny_weights_folder(tmp_path / "weights"))
    rows = {name: mixed_rows(name, augments=19, inpaints=19, twins=2) for name in ("serial", "ray")}
    assert len(rows["ray"]) == 40
    manifests = {name: write_manifest(tmp_path / f"{name}.jsonl", r) for name, r in rows.items()}
    options = dict(weights_dir=weights, engine_options=ENGINE_OPTIONS, threads_per_job=1)

    serial = run_manifest(manifests["serial"], executor="inline", **options)
    assert serial.ok and len(serial.ran) == 40

    out = tmp_path / "ray"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=run_manifest(
        manifests["ray"], executor="ray", workers=2, max_retries=2, **options)))
    thread.start()
    claim = wait_until(lambda: next(iter(sorted((out / ".claims").glob("*/twin-*.claim"))), None), 300,
                       "a twin job to start on a Ray worker")
    info = wait_until(lambda: read_claim(claim), 10, "the claim's content")
    victim = info["pid"]
    assert victim != os.getpid() and is_ray_worker(victim)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=600)
    summary = result["summary"]

    assert summary.ok, summary.failed_rows()
    assert sorted(summary.ran) == sorted(r["id"] for r in rows["ray"])
    assert record_ids(out) == {r["id"] for r in rows["ray"]}
    commits = [e["id"] for e in journal(out)]
    assert sorted(commits) == sorted(r["id"] for r in rows["ray"]), "a job was committed twice or not at all"
    killed = json.loads(record_file(out, info["job"]).read_text())
    assert killed["attempt"] == 2 and killed["environment"]["pid"] != victim and killed["executor"] == "ray"
    assert output_files(out) == expected_outputs(rows["ray"], "ray")  # no partial or temporary file
    assert not [p for p in (out / ".staging").rglob("*") if p.is_file()]
    assert not [p for p in (out / ".claims").rglob("*") if p.is_file()]
    for name in sorted(output_files(out)):
        assert comparable(out / name) == comparable(tmp_path / "serial" / name), f"{name} differs from the serial run"
    print(f"\nray: {len(summary.ran)} jobs in {summary.seconds:.1f} s on {summary.workers} actors (serial inline "
          f"{serial.seconds:.1f} s); killed Ray worker {victim} running {info['job']}, redone as attempt "
          f"{killed['attempt']} by process {killed['environment']['pid']}; {len(commits)} commits, "
          f"{len(record_ids(out))} records")
    volumes = [n for n in output_files(out) if n.endswith(".nii.gz")]
    assert len(volumes) == 19 + 2 * 19 + 2 and all(
        (out / n).read_bytes() == (tmp_path / "serial" / n).read_bytes() for n in volumes)
