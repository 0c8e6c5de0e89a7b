"""A runner SIGKILLed mid-run (local worker processes, NodMAISI twins in flight) leaves no partial
output and no orphan worker; running the manifest again runs only the jobs that had not finished."""
from __future__ import annotations

import json
import os
import signal

import pytest

pytest.importorskip("monai", reason="the twin jobs need torch and MONAI (pip install 'nodsynth[engines]')")

from batch_cases import (expected_outputs, journal, mixed_rows, output_files, record_ids, run_cli,  # noqa: E402
                         start_cli, wait_until, write_engine_options, write_inputs, write_manifest)
from nodsynth.batch.claims import process_gone, read_claim  # noqa: E402
from nodsynth.io.volume_files import read_volume
from test_nodmaisi_engine import tiny_weights_folder  # noqa: E402


def test_sigkilled_runner_then_rerun_runs_only_the_unfinished_jobs(tmp_path):
    write_inputs(tmp_path / "in")
    (tmp_path / "weights").mkdir()
    weights = tiny_weights_folder(tmp_path / "weights")
    rows = mixed_rows("out", augments=6, inpaints=8, twins=1)
    rows = rows[-1:] + rows[:-1]  # the twin (seconds) first: one worker holds it while the other does the rest
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows)
    out = tmp_path / "out"
    run_args = ("batch", "run", str(manifest), "--executor", "local", "--workers", "2", "--weights", str(weights),
                "--engine-options", str(write_engine_options(tmp_path)))
    runner = start_cli(*run_args)
    wait_until(lambda: list((out / ".claims").glob("*/twin-*.claim")) and len(record_ids(out)) >= 3, 240,
               "the twin job to run and three other jobs to finish")
    workers = {info["pid"] for info in map(read_claim, (out / ".claims").glob("*/*.claim")) if info}
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    wait_until(lambda: all(process_gone(pid) for pid in workers), 10, "the runner's workers to exit")
    done_before = record_ids(out)

    twins = {r["id"] for r in rows if r["op"] == "twin"}
    assert not twins & done_before, "the twin was running when the runner was killed"
    assert 0 < len(done_before) < len(rows)
    files = output_files(out)
    assert files <= expected_outputs(rows, "out"), f"partial files: {sorted(files - expected_outputs(rows, 'out'))}"
    assert not any(f.startswith("twin/") for f in files)  # an interrupted job's outputs stay in staging
    for name in files:
        if name.endswith(".nii.gz"):
            read_volume(out / name)  # complete files only
    kept = {p: (os.stat(out / p).st_ino, os.stat(out / p).st_mtime_ns) for r in rows if r["id"] in done_before
            for p in (os.path.relpath(v, "out") for v in r["outputs"].values())}

    result = run_cli(*run_args, "--json", str(tmp_path / "rerun.json"))
    assert result.returncode == 0, result.stderr
    rerun = json.loads((tmp_path / "rerun.json").read_text())
    assert set(rerun["done"]) == {r["id"] for r in rows} - done_before
    assert set(rerun["skipped"]) == done_before
    assert kept == {p: (os.stat(out / p).st_ino, os.stat(out / p).st_mtime_ns) for p in kept}  # not rewritten
    assert sorted(e["id"] for e in journal(out)) == sorted(r["id"] for r in rows)  # one commit per job
    assert output_files(out) == expected_outputs(rows, "out")
    print(f"\nkilled runner: {len(done_before)} of {len(rows)} jobs recorded before the SIGKILL; the re-run ran "
          f"{len(rerun['done'])} ({', '.join(sorted(rerun['done']))}) and skipped {len(rerun['skipped'])}")
    assert not [p for p in (out / ".staging").rglob("*") if p.is_file()]
    assert not [p for p in (out / ".claims").rglob("*") if p.is_file()]
