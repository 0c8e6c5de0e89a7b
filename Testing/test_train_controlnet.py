"""ControlNet training smoke test on the demo patient with the tiny configuration: the loss falls on a
fixed batch, checkpoints load into the engine, and a resumed run continues exactly from the saved step."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.engines import get_engine  # noqa: E402
from nodsynth.phantom import make_demo_patient  # noqa: E402
from nodsynth.train.controlnet import train_controlnet  # noqa: E402
from test_nodmaisi_engine import tiny_weights_folder  # noqa: E402


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    return tiny_weights_folder(tmp_path_factory.mktemp("frozen"), with_controlnet=False)


@pytest.fixture(scope="module")
def pair():
    patient = make_demo_patient()
    return patient.ct, patient.labelmap


def test_loss_falls_by_30_percent_in_20_steps_on_a_fixed_batch(frozen, pair, tmp_path):
    outcome = train_controlnet([pair], tmp_path, steps=20, config="maisi_tiny", weights_dir=str(frozen),
                               device="cpu", lr=1e-2, fixed_batch=True, patch_voxels=32, save_every=10)
    assert len(outcome.losses) == 20
    assert outcome.losses[-1] <= 0.7 * outcome.losses[0], outcome.losses
    saved = torch.load(outcome.checkpoint, weights_only=True)
    assert saved["step"] == 20 and "controlnet_state_dict" in saved
    (frozen / "controlnet_trained.pt").symlink_to(outcome.checkpoint)
    try:
        engine = get_engine("nodmaisi", weights_dir=str(frozen), device="cpu", config="maisi_tiny")
        trained = engine.networks.controlnet.state_dict()
        assert all(torch.equal(trained[k], v) for k, v in saved["controlnet_state_dict"].items())
    finally:
        (frozen / "controlnet_trained.pt").unlink()


def test_resumed_run_continues_from_the_saved_step(frozen, pair, tmp_path):
    options = dict(config="maisi_tiny", weights_dir=str(frozen), device="cpu", lr=1e-3, patch_voxels=32)
    straight = train_controlnet([pair], tmp_path / "straight", steps=4, **options)
    first = train_controlnet([pair], tmp_path / "resumed", steps=2, **options)
    resumed = train_controlnet([pair], tmp_path / "resumed", steps=4, resume=True, **options)
    assert first.step == 2 and resumed.start_step == 2 and resumed.step == 4
    # CPU convolution backward is not bit-deterministic (two straight runs differ by ~1e-5 relative);
    # a restart from scratch would give the first steps' losses instead (about 20 % off here).
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=2e-3)
    assert resumed.losses[0] != pytest.approx(straight.losses[0], rel=2e-2)
    saved = torch.load(resumed.checkpoint, weights_only=True)
    assert saved["step"] == 4 and saved["optimizer_state_dict"]["state"]


def test_train_verb_errors_are_clear(tmp_path, capsys):
    assert main(["train", "controlnet", "--out", str(tmp_path), "--resume", "--demo", "--weights", str(tmp_path)]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["train", "controlnet", "--out", str(tmp_path)]) == 2
    assert "--pair CT LABELMAP, --manifest FILE or --demo" in capsys.readouterr().err
