"""Which weights folder a batch row's engine uses: the row's ``weights``, else ``--weights``, else
``weights_dir`` in the engine options; ``batch check`` looks where the run then loads from, and the record
names that folder and its files. Spec paths (``~``) resolve the same in ``batch plan`` and in manifests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("monai", reason="the twin jobs need torch and MONAI (pip install 'nodsynth[engines]')")

from batch_cases import ENGINE_OPTIONS, record_file, twin_row, write_inputs, write_manifest  # noqa: E402
from nodsynth.batch import check_manifest, run_manifest  # noqa: E402
from nodsynth.batch.plan import plan_jobs  # noqa: E402
from nodsynth.errors import InputError  # noqa: E402
from test_nodmaisi_engine import tiny_weights_folder  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tiny_weights_folder(tmp_path_factory.mktemp("tiny_weights"))


def test_weights_named_only_in_the_engine_options_are_checked_loaded_and_recorded(tmp_path, weights):
    write_inputs(tmp_path / "in")
    manifest = write_manifest(tmp_path / "manifest.jsonl", [twin_row("twin-00", "in/labels.nii.gz", 0, "out")])
    options = {"nodmaisi": {**ENGINE_OPTIONS["nodmaisi"], "weights_dir": str(weights)}}
    check_manifest(manifest, None, options)
    assert run_manifest(manifest, executor="inline", engine_options=options).ok
    record = record_file(tmp_path / "out" / "twin", "twin-00")  # the batch folder: the outputs' deepest
    engine = json.loads(record.read_text())["engine"]
    assert engine["weights_dir"] == str(weights)
    assert engine["weights"] and all(Path(f["path"]).parent == weights for f in engine["weights"].values())


def test_a_rows_own_weights_come_before_the_engine_options_folder(tmp_path, weights):
    write_inputs(tmp_path / "in")
    row = twin_row("twin-00", "in/labels.nii.gz", 0, "out")
    row["params"]["weights"] = "no_such_weights"
    manifest = write_manifest(tmp_path / "manifest.jsonl", [row])
    options = {"nodmaisi": {**ENGINE_OPTIONS["nodmaisi"], "weights_dir": str(weights)}}
    with pytest.raises(InputError, match="no_such_weights"):
        check_manifest(manifest, str(weights), options)


def test_plan_expands_the_home_folder_in_path_params_and_refuses_params_that_are_not_an_object(tmp_path):
    write_inputs(tmp_path / "in")
    spec = {"inputs": {"labelmap": "in/labels.nii.gz"},
            "steps": [{"op": "twin", "params": {"weights": "~/nodmaisi-weights", "steps": 1}}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (job,) = plan_jobs(tmp_path / "spec.json")
    assert job.params["weights"] == str(Path.home() / "nodmaisi-weights")
    for key in ("params", "inputs"):
        spec["steps"][0][key] = ["steps", 1]
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        with pytest.raises(InputError, match=f'step 1 \\(twin\\): "{key}" must be an object'):
            plan_jobs(tmp_path / "spec.json")
        spec["steps"][0][key] = {}
