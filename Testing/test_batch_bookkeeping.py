"""Batch bookkeeping (issue 22): outputs outside the manifest's folder are refused unless allowed, each
manifest keeps its own records (two manifests in one folder may reuse an id), a batch begun with the
old shared records still resumes, and a runner that loses a stale claim does not list a done job as failed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batch_cases import augment_row, record_file, record_ids, run_cli, write_inputs, write_manifest
from nodsynth.batch import check_manifest, run_manifest
from nodsynth.batch.ops import get_op
from nodsynth.batch.worker import Task, WorkerSettings, WorkerState
from nodsynth.errors import InputError


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("bookkeeping_inputs"))["labelmap"]


def test_outputs_outside_the_manifest_folder_are_refused_unless_allowed(tmp_path, labels):
    manifest = write_manifest(tmp_path / "a" / "b" / "m.jsonl", [augment_row("up", str(labels), 60, "../../x")])
    with pytest.raises(InputError, match=r"row 1: output 'labelmap' \(.*\) lies outside the manifest's folder"):
        check_manifest(manifest)
    result = run_cli("batch", "run", str(manifest), "--executor", "inline")
    assert result.returncode == 2 and "--allow-outside" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing written, no .records two levels up
    result = run_cli("batch", "run", str(manifest), "--executor", "inline", "--allow-outside")
    assert result.returncode == 0, result.stderr
    assert record_ids(tmp_path / "x" / "augment") == {"up"}  # the records follow the outputs, as allowed
    inside = write_manifest(tmp_path / "in" / "m.jsonl", [augment_row("in", str(labels), 60, "out")])
    assert check_manifest(inside).layout.root == (tmp_path / "in" / "out" / "augment").resolve()


def test_two_manifests_in_one_folder_reusing_an_id_keep_their_own_records(tmp_path, labels):
    first = write_manifest(tmp_path / "first.jsonl", [augment_row("a", str(labels), 60, "out")])
    row = augment_row("a", str(labels), 80, "out")
    row["outputs"] = {"labelmap": "out/augment/a80.nii.gz"}
    second = write_manifest(tmp_path / "second.jsonl", [row])
    assert run_manifest(first, executor="inline").ran == ["a"]
    assert run_manifest(second, executor="inline").ran == ["a"]
    for manifest in (first, second):
        again = run_manifest(manifest, executor="inline")
        assert again.ran == [] and again.ids("skipped") == ["a"], manifest.name
    records = sorted((tmp_path / "out" / "augment" / ".records").glob("*/a.json"))
    assert len(records) == 2 and {json.loads(p.read_text())["params"]["percent"] for p in records} == {60, 80}


def test_a_batch_begun_with_shared_records_still_resumes(tmp_path, labels):
    manifest = write_manifest(tmp_path / "m.jsonl", [augment_row("a", str(labels), 60, "out")])
    assert run_manifest(manifest, executor="inline").ran == ["a"]
    record = record_file(tmp_path / "out" / "augment", "a")
    shutil.move(record, record.parent.parent / "a.json")  # where records were kept before (no manifest subfolder)
    shutil.rmtree(record.parent)
    again = run_manifest(manifest, executor="inline")
    assert again.ran == [] and again.ids("skipped") == ["a"]


def test_a_runner_that_loses_a_stale_claim_does_not_list_the_done_job_as_failed(tmp_path, labels, monkeypatch):
    """While this runner computes, its claim goes stale and another runner takes the job over and commits it:
    this runner discards its outputs and counts the job as done elsewhere, not as failed."""
    manifest = write_manifest(tmp_path / "m.jsonl", [augment_row("a", str(labels), 60, "out")])
    op = get_op("augment")
    compute = op.run
    layout = check_manifest(manifest).layout
    taken = []

    def run_and_lose_the_claim(ctx):
        if not taken:  # the first (this runner's) attempt: the claim is broken and the job done by another runner
            taken.append(True)
            layout.claim_path(ctx.job.id).unlink()
            other = WorkerState(WorkerSettings()).run(Task(ctx.job, layout, "the-other-runner"))
            assert other.status == "done", other.error
        return compute(ctx)

    monkeypatch.setattr(op, "run", run_and_lose_the_claim)
    summary = run_manifest(manifest, executor="inline")
    assert taken and summary.ok and summary.failed_rows() == []
    assert summary.ids("elsewhere") == ["a"]
    assert (tmp_path / "out" / "augment" / "failed.jsonl").read_text() == ""
    assert json.loads(record_file(tmp_path / "out" / "augment", "a").read_text())["token"] == "the-other-runner"


def test_plan_refuses_a_manifest_whose_outputs_would_lie_outside_its_folder(tmp_path, labels, capsys):
    from nodsynth.cli.main import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"inputs": {"labelmap": [str(labels)]}, "out": "out",
                                "steps": [{"op": "augment", "percents": [60]}]}))
    assert main(["batch", "plan", str(spec), "--out", str(tmp_path / "m" / "manifest.jsonl")]) == 2
    assert "outside its folder" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main(["batch", "plan", str(spec), "--out", str(tmp_path / "manifest.jsonl")]) == 0
    check_manifest(tmp_path / "manifest.jsonl")
