"""Running a manifest: records (what, on what, by which code), resume, failures listed in failed.jsonl,
two runners on one manifest never both writing a job, stale claims, shards and the SLURM script."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from batch_cases import (REPO_ROOT, expected_outputs, journal, mixed_rows, output_files, record_file, record_ids,
                         run_cli, start_cli, write_inputs, write_manifest)
from nodsynth import __version__
from nodsynth.batch import check_manifest, run_manifest
from nodsynth.batch.claims import HOST, Claim
from nodsynth.batch.run import share_of


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    return write_inputs(tmp_path_factory.mktemp("batch_inputs"))


def manifest_in(folder: Path, inputs: dict, rows: list) -> Path:
    for row in rows:
        row["inputs"] = {k: str(inputs[v]) if v in inputs else v for k, v in row["inputs"].items()}
    return write_manifest(folder / "manifest.jsonl", rows)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_records_name_inputs_params_code_and_timings_and_a_rerun_skips(tmp_path, inputs):
    rows = mixed_rows("out", 2, 1, 0, ct="ct", labelmap="labelmap")
    path = manifest_in(tmp_path, inputs, rows)
    summary = run_manifest(path, executor="inline")
    assert summary.ok and sorted(summary.ran) == ["aug-00", "aug-01", "ins-00"]
    record = json.loads(record_file(tmp_path / "out", "ins-00").read_text())
    assert record["inputs"]["ct"]["sha256"] == sha256(inputs["ct"])
    assert record["inputs"]["labelmap"]["sha256"] == sha256(inputs["labelmap"])
    assert record["outputs"]["ct"]["sha256"] == sha256(tmp_path / "out" / "inpaint" / "ins-00.nii.gz")
    assert record["params"] == rows[2]["params"] and record["seed"] == 0 and record["row"] == 3
    assert record["engine"]["name"] == "classic" and record["engine"]["weights"] == {}
    assert record["environment"]["versions"]["nodsynth"] == __version__
    assert record["environment"]["device"] == "cpu" and record["environment"]["pid"] == os.getpid()
    assert record["timings"]["run_s"] > 0 and record["timings"]["finished"] >= record["timings"]["started"]
    again = run_manifest(path, executor="inline")
    assert again.ran == [] and sorted(again.ids("skipped")) == ["aug-00", "aug-01", "ins-00"]
    rows[1]["params"]["percent"] = 55  # another definition under the same id is not done
    summary = run_manifest(manifest_in(tmp_path, inputs, rows), executor="inline")
    assert summary.ran == ["aug-01"] and len(journal(tmp_path / "out")) == 4


def test_a_failed_job_is_listed_its_dependants_do_not_run_and_the_exit_status_says_so(tmp_path, inputs):
    rows = mixed_rows("out", 1, 1, 0, ct="ct", labelmap="labelmap")
    rows.append({"id": "seg-air", "op": "segment", "inputs": {"ct": "ct"}, "params": {"point": [0, 0, 0]},
                 "outputs": {"mask": "out/seg/air.nii.gz"}})
    rows.append({"id": "seg-solid", "op": "segment", "inputs": {"ct": "ct"}, "params": {"point": inputs["solid_lps"]},
                 "outputs": {"mask": "out/seg/solid.nii.gz", "json": "out/seg/solid.json"}})
    rows.append({"id": "ins-on-air", "op": "inpaint", "inputs": {"ct": "ct", "mask": "out/seg/air.nii.gz"},
                 "outputs": {"ct": "out/seg/air_inpainted.nii.gz"}})
    path = manifest_in(tmp_path, inputs, rows)
    result = run_cli("batch", "run", str(path), "--executor", "inline")
    assert result.returncode == 1, result.stderr
    failed = [json.loads(line) for line in (tmp_path / "out" / "failed.jsonl").read_text().splitlines()]
    assert [f["id"] for f in failed] == ["seg-air", "ins-on-air"]
    assert "lies outside the volume" in failed[0]["error"] and failed[0]["row"] == 3
    assert "its input comes from job 'seg-air' (row 3), which failed" in failed[1]["error"]
    assert record_ids(tmp_path / "out") == {"aug-00", "ins-00", "seg-solid"}
    info = json.loads((tmp_path / "out" / "seg" / "solid.json").read_text())
    assert info["mask"] == str(tmp_path / "out" / "seg" / "solid.nii.gz")  # the final path, not the staging file
    assert "seg-air" in result.stderr and "failed" in result.stdout


def test_two_runners_on_one_manifest_never_both_run_a_job(tmp_path, inputs):
    rows = mixed_rows("out", 6, 10, 0, ct="ct", labelmap="labelmap")
    path = manifest_in(tmp_path, inputs, rows)
    runners = [start_cli("batch", "run", str(path), "--executor", "local", "--workers", "1", "--json",
                         str(tmp_path / f"summary{i}.json")) for i in range(2)]
    for runner in runners:
        _, err = runner.communicate(timeout=300)
        assert runner.returncode == 0, err
    summaries = [json.loads((tmp_path / f"summary{i}.json").read_text()) for i in range(2)]
    ran = [set(s["done"]) for s in summaries]
    assert not ran[0] & ran[1], f"both runners ran {sorted(ran[0] & ran[1])}"
    assert ran[0] | ran[1] == {r["id"] for r in rows}
    assert sorted(e["id"] for e in journal(tmp_path / "out")) == sorted(r["id"] for r in rows)  # one commit each
    assert output_files(tmp_path / "out") == expected_outputs(rows, "out")


def test_claims_are_exclusive_and_only_a_dead_or_silent_claim_is_taken_over(tmp_path):
    path = tmp_path / "job.claim"
    first, second = Claim(path, "token-1", "job"), Claim(path, "token-2", "job")
    assert first.acquire(stale_after_s=60) is None
    holder = second.acquire(stale_after_s=60)
    assert holder["token"] == "token-1" and holder["pid"] == os.getpid()  # live and fresh: not taken
    assert second.acquire(stale_after_s=60, dead_token="token-1") is None and second.owned() and not first.owned()
    first.release()  # not its claim any more: left alone
    assert path.exists() and second.owned()
    old = time.time() - 120
    os.utime(path, (old, old))
    third = Claim(path, "token-3", "job")
    assert third.acquire(stale_after_s=60) is None and third.owned()  # no heartbeat for 120 s
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.write_text(json.dumps({"token": "token-4", "host": HOST, "pid": dead.pid, "job": "job"}))
    assert Claim(path, "token-5", "job").acquire(stale_after_s=60) is None  # its process is gone


def test_four_shards_cover_every_job_once_and_the_slurm_script_runs_them(tmp_path, inputs):
    rows = mixed_rows("out", 5, 4, 0, ct="ct", labelmap="labelmap")
    rows += [{"id": f"edit-{i}", "op": "edit", "inputs": {"ct": "ct", "labelmap": "labelmap",
                                                          "edited_labelmap": rows[i]["outputs"]["labelmap"]},
              "outputs": {"ct": f"out/edit/edit-{i}.nii.gz"}} for i in range(3)]
    path = manifest_in(tmp_path, inputs, rows)
    checked = check_manifest(path)
    shares = [share_of(checked, (i, 4)) for i in range(4)]
    assert sorted(i for share in shares for i in share) == list(range(len(rows)))
    assert max(map(len, shares)) - min(map(len, shares)) <= 2 and all(shares)
    for i in range(3):  # an edit is in the shard of the augment it reads
        assert next(s for s in shares if 9 + i in s) == next(s for s in shares if i in s)
    assert shares == [share_of(check_manifest(path), (i, 4)) for i in range(4)]  # deterministic

    script = tmp_path / "array.sbatch"
    result = run_cli("batch", "slurm-script", str(path), "--shards", "4", "--gpus-per-task", "0", "--time", "01:00:00",
                     "--setup", "export NODSYNTH_TEST_SETUP=1", "--out", str(script))
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text and "#SBATCH --time=01:00:00" in text and "--gpus-per-task" not in text
    assert "export NODSYNTH_TEST_SETUP=1" in text and '--shard "${SLURM_ARRAY_TASK_ID}/4"' in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    for task in range(4):  # what SLURM would run: each array task with its SLURM_ARRAY_TASK_ID
        done = subprocess.run(["bash", str(script)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task)})
        assert done.returncode == 0, done.stderr
        assert f"shard {task}/4" in done.stdout
        ids = {rows[i]["id"] for i in shares[task]}
        assert {e["id"] for e in journal(tmp_path / "out")} >= ids
    assert sorted(e["id"] for e in journal(tmp_path / "out")) == sorted(r["id"] for r in rows)
    assert output_files(tmp_path / "out") == expected_outputs(rows, "out")


def test_a_review_job_compares_another_jobs_output_with_its_real_ct(tmp_path, inputs):
    """The ``review`` op (issue 12's per-case numbers) reads an inpaint job's CT and mask: it runs after
    it, and its record and JSON say the inserted nodule was found where it was put."""
    from batch_cases import inpaint_row

    insert = inpaint_row("ins-00", "ct", "labelmap", 0, "out", "solid")
    review = {"id": "review-00", "op": "review", "seed": 0,
              "inputs": {"real": "ct", "synthetic": insert["outputs"]["ct"], "labelmap": "labelmap",
                         "mask": insert["outputs"]["mask"], "changed": insert["outputs"]["mask"]},
              "params": {"margin_mm": 3}, "outputs": {"json": "out/review/review-00.json", "csv": "out/review/review-00.csv"}}
    manifest = manifest_in(tmp_path, inputs, [review, insert])
    summary = run_manifest(manifest, executor="inline")
    assert summary.ok
    case = json.loads((tmp_path / "out" / "review" / "review-00.json").read_text())
    [nodule] = case["nodules"]
    assert case["case_id"] == "review-00" and nodule["reproduced"] and nodule["dice"] >= 0.5
    assert case["edit"]["bit_identical_fraction_outside"] > 0.99
    record = json.loads(record_file(tmp_path / "out", "review-00").read_text())
    assert record["facts"] == {"nodules": 1, "reproduced": 1}
    assert record["inputs"]["synthetic"]["sha256"] == sha256(tmp_path / "out" / "inpaint" / "ins-00.nii.gz")
