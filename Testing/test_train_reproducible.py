"""Issue 27 item 1: training is reproducible on CPU. Two identical runs (same seed, data and thread
count) write byte-identical checkpoints, and a run SIGKILLed at step 10 of 20 and resumed ends with the
checkpoint of an uninterrupted run, for ``train controlnet`` (tiny configuration, demo patient) and
``train hrldm`` (tiny configuration, real LIDC nodules)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.train import controlnet, hrldm  # noqa: E402
from test_hrldm import one_thread  # noqa: E402,F401  (autouse: one torch thread, as the killed run uses)
from test_hrldm_train import manifest  # noqa: E402,F401  (fixture: three LIDC nodules, one per subtype)
from test_nodmaisi_engine import tiny_weights_folder  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """The tiny frozen networks, and a 64-voxel crop of the demo patient around its nodule (CT, label map)."""
    from nodsynth.phantom import make_demo_patient
    from nodsynth.io.volume_files import write_volume

    folder = tiny_weights_folder(tmp_path_factory.mktemp("frozen"), with_controlnet=False)
    patient = make_demo_patient()
    ct, labels = controlnet.nodule_patch(patient.ct, patient.labelmap, 64, 32)
    write_volume(ct, folder / "demo_ct.nii.gz")
    write_volume(labels, folder / "demo_labels.nii.gz")
    return folder


def _controlnet_options(frozen: Path, out: Path, *more: str) -> list[str]:
    return ["--pair", str(frozen / "demo_ct.nii.gz"), str(frozen / "demo_labels.nii.gz"), "--patch", "32",
            "--config", "maisi_tiny", "--weights", str(frozen), "--device", "cpu", "--lr", "1e-3", "--out", str(out), *more]


def _hrldm_options(manifest: Path, out: Path, *more: str) -> list[str]:
    return ["--manifest", str(manifest), "--config", "hrldm_tiny", "--random-autoencoder", "--device", "cpu",
            "--lr", "1e-3", "--lambda-hist", "1", "--out", str(out), *more]


def _run(module, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module.run(parser.parse_args(argv), lambda *a: None) == 0


def test_two_identical_controlnet_runs_write_identical_bytes(frozen, tmp_path):
    for name in ("a", "b"):
        _run(controlnet, _controlnet_options(frozen, tmp_path / name, "--steps", "3", "--batch-size", "2"))
    first, second = ((tmp_path / name / controlnet.CHECKPOINT_NAME).read_bytes() for name in ("a", "b"))
    assert first == second


def test_two_identical_hrldm_runs_write_identical_bytes(manifest, tmp_path):
    for name in ("a", "b"):
        _run(hrldm, _hrldm_options(manifest, tmp_path / name, "--steps", "3", "--batch-size", "2"))
    first, second = ((tmp_path / name / hrldm.CHECKPOINT_NAME).read_bytes() for name in ("a", "b"))
    assert first == second


def _killed_at_10(trainer: str, options: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(HERE / "killer_train.py"), "10", trainer, *options],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]


def test_controlnet_killed_at_step_10_of_20_and_resumed_ends_as_an_uninterrupted_run(frozen, tmp_path):
    common = ["--steps", "20", "--batch-size", "1", "--save-every", "10"]
    _run(controlnet, _controlnet_options(frozen, tmp_path / "straight", *common))
    _killed_at_10("controlnet", _controlnet_options(frozen, tmp_path / "killed", *common))
    assert torch.load(tmp_path / "killed" / controlnet.CHECKPOINT_NAME, weights_only=True)["step"] == 10
    _run(controlnet, _controlnet_options(frozen, tmp_path / "killed", *common, "--resume"))
    straight = (tmp_path / "straight" / controlnet.CHECKPOINT_NAME).read_bytes()
    assert (tmp_path / "killed" / controlnet.CHECKPOINT_NAME).read_bytes() == straight


def test_hrldm_killed_at_step_10_of_20_and_resumed_ends_as_an_uninterrupted_run(manifest, tmp_path):
    common = ["--steps", "20", "--batch-size", "2", "--save-every", "10"]
    _run(hrldm, _hrldm_options(manifest, tmp_path / "straight", *common))
    killed = tmp_path / "killed" / hrldm.CHECKPOINT_NAME
    _killed_at_10("hrldm", _hrldm_options(manifest, tmp_path / "killed", *common))
    assert torch.load(killed, weights_only=True)["step"] == 10
    _run(hrldm, _hrldm_options(manifest, tmp_path / "killed", *common, "--resume", str(killed)))
    assert killed.read_bytes() == (tmp_path / "straight" / hrldm.CHECKPOINT_NAME).read_bytes()
    straight_log = (tmp_path / "straight" / hrldm.LOG_NAME).read_text()
    assert (tmp_path / "killed" / hrldm.LOG_NAME).read_text() == straight_log
