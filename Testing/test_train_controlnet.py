"""ControlNet training smoke test on the demo patient with the tiny configuration: the loss falls on a
fixed batch, checkpoints load into the engine, and a resumed run continues exactly from the saved step."""
from __future__ import annotations

import numpy as np

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.engines import get_engine  # noqa: E402
from nodsynth.errors import InputError  # noqa: E402
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
                               device="cpu", lr=1e-2, fixed_batch=True, patch_voxels=32, save_every=10, batch_size=1)
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
    # one planned 4-step run (the learning rate decays to 0 at step 4), interrupted after 2 steps
    options = dict(config="maisi_tiny", weights_dir=str(frozen), device="cpu", lr=1e-3, patch_voxels=32,
                   batch_size=1, schedule_steps=4)
    straight = train_controlnet([pair], tmp_path / "straight", steps=4, **options)
    first = train_controlnet([pair], tmp_path / "resumed", steps=2, **options)
    resumed = train_controlnet([pair], tmp_path / "resumed", steps=4, resume=True, **options)
    assert first.step == 2 and resumed.start_step == 2 and resumed.step == 4
    # runs are reproducible (seeded ControlNet initialisation, keyed draws): the resumed steps repeat the
    # straight run's exactly; a restart from scratch would give the first steps' losses instead (about 20 % off here).
    assert resumed.losses == straight.losses[2:]
    assert resumed.losses[0] != pytest.approx(straight.losses[0], rel=2e-2)
    saved = torch.load(resumed.checkpoint, weights_only=True)
    assert saved["step"] == 4 and saved["optimizer_state_dict"]["state"]


def test_train_verb_errors_are_clear(tmp_path, capsys):
    assert main(["train", "controlnet", "--out", str(tmp_path), "--resume", "--demo", "--weights", str(tmp_path)]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["train", "controlnet", "--out", str(tmp_path)]) == 2
    assert "--pair CT LABELMAP, --manifest FILE, --embeddings FILE... or --demo" in capsys.readouterr().err


# ---------------------------------------------------------------- issue 15: the published training recipe
def test_a_one_voxel_nodule_still_gets_the_nodule_weight():
    import numpy as np

    from nodsynth.train.controlnet import latent_loss_weights

    labels = np.full((32, 32, 32), 30, np.uint8)  # lung lobe, network axes
    labels[1, 1, 1] = 23  # one nodule voxel, off the voxels a nearest-neighbour downsampling keeps
    weights = latent_loss_weights(labels, (1, 4, 8, 8, 8), 100.0)
    assert float(weights.max()) == 100.0
    assert torch.nonzero(weights == 100.0).tolist() == [[0, c, 0, 0, 0] for c in range(4)]
    assert int((weights == 1.0).sum()) == 4 * 8 * 8 * 8 - 4


def test_accumulating_8_single_examples_equals_one_batch_of_8(frozen, pair):
    from nodsynth.engines.maisi import randomize_zero_parameters
    from nodsynth.engines.nodmaisi.sampling import make_scheduler
    from nodsynth.train.controlnet import accumulate_gradients, draw_noise, frozen_networks, training_examples

    nets, _ = frozen_networks("maisi_tiny", str(frozen), "cpu")
    randomize_zero_parameters(nets.controlnet, 5)  # a ControlNet that is not all-zero at the output
    ct, labels = pair
    starts = [(32 * (a % 2), 64 + 32 * (a // 2 % 2), 64 + 32 * (a // 4)) for a in range(8)]
    crops = [(ct.crop(s, [v + 32 for v in s]), labels.crop(s, [v + 32 for v in s])) for s in starts]
    examples = training_examples(nets, crops, tumor_weight=100.0)
    scheduler = make_scheduler(nets.config)
    draws = [draw_noise(scheduler, e.latent, seed, schedule_numel=64 * 64 * 32) for seed, e in enumerate(examples)]
    params = [p for p in nets.controlnet.parameters() if p.requires_grad]
    grads, losses = {}, {}
    for micro in (1, 8):
        nets.controlnet.zero_grad(set_to_none=True)
        losses[micro] = accumulate_gradients(nets, nets.controlnet, examples, draws, micro_batch=micro)
        grads[micro] = [p.grad.detach().clone() for p in params]
    worst = max(float((a - b).abs().max()) for a, b in zip(grads[1], grads[8]))
    scale = max(float(g.abs().max()) for g in grads[8])
    print(f"gradient accumulation 8 x 1 vs batch 8: max |grad diff| {worst:.2e} (max |grad| {scale:.2e}), "
          f"loss {losses[1]:.6f} vs {losses[8]:.6f}")
    assert scale > 1e-3 and worst <= 1e-6
    assert losses[1] == pytest.approx(losses[8], abs=1e-6)


def test_recipe_adamw_polynomial_power_2_and_whole_ct_timesteps(frozen, pair, tmp_path):
    lr, steps = 1e-3, 4
    outcome = train_controlnet([pair], tmp_path, steps=steps, config="maisi_tiny", weights_dir=str(frozen),
                               device="cpu", lr=lr, patch_voxels=32, batch_size=2)
    assert outcome.info["optimizer"] == "AdamW" and outcome.info["batch_size"] == 2
    assert outcome.info["learning_rates"] == pytest.approx([lr * (1 - s / steps) ** 2 for s in range(steps)])
    # a 32^3 patch of the 256 x 256 x 128 demo CT is noised on the schedule of the whole CT's latent
    assert outcome.info["schedule_latent_voxels"] == 64 * 64 * 32
    saved = torch.load(outcome.checkpoint, weights_only=True)
    group = saved["optimizer_state_dict"]["param_groups"][0]
    assert group["weight_decay"] == 0.01 and "lr_scheduler_state_dict" in saved


def test_whole_volumes_must_be_multiples_of_128_voxels(tmp_path):
    from nodsynth.errors import InputError
    from nodsynth.volume import Volume

    ct = Volume(np.full((96, 256, 256), -800, np.int16), spacing=(1.0, 1.0, 2.0))
    labels = ct.with_array(np.full(ct.shape_kji, 30, np.uint8))
    with pytest.raises(InputError, match="multiples of 128 voxels"):
        train_controlnet([(ct, labels)], tmp_path, steps=1, config="maisi_v2", weights_dir=str(tmp_path), device="cpu")


def test_patches_need_only_sizes_the_networks_accept_and_whole_cts_the_published_multiple(frozen, pair, tmp_path):
    ct, labels = pair
    start, stop = (0, 3, 3), (120, 253, 253)  # 120 x 250 x 250: not multiples of the tiny config's 32
    cropped = (ct.crop(start, stop), labels.crop(start, stop))
    options = dict(steps=1, config="maisi_tiny", weights_dir=str(frozen), device="cpu", batch_size=1)
    with pytest.raises(InputError, match="multiples of 32 voxels"):
        train_controlnet([cropped], tmp_path / "whole", **options)
    assert train_controlnet([cropped], tmp_path / "patch", patch_voxels=32, **options).step == 1
    with pytest.raises(InputError, match="smaller than the 128-voxel cube"):
        train_controlnet([cropped], tmp_path / "big", patch_voxels=128, **options)
