"""Issue 27 item 4: a validation split by patient, a validation loss every K steps, the best and the last
checkpoints, and a TensorBoard log, for ``train controlnet`` (tiny configuration, demo crop)."""
from __future__ import annotations

import csv
import io

import numpy as np

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.errors import InputError  # noqa: E402
from nodsynth.train import controlnet  # noqa: E402
from nodsynth.train.run_log import SAMPLE_SLICE_TAG  # noqa: E402
from nodsynth.train.validation import validation_patients  # noqa: E402
from test_hrldm import one_thread  # noqa: E402,F401
from test_hrldm_train import manifest  # noqa: E402,F401
from test_train_reproducible import _controlnet_options, _run, frozen  # noqa: E402,F401


def test_the_split_holds_out_whole_patients():
    ids = ["p1", "p1", "p2", "p3", "p3", "p4"]
    held = validation_patients(ids, fraction=0.5, seed=3)
    assert len(held) == 2 and held <= set(ids)
    assert validation_patients(list(reversed(ids)), fraction=0.5, seed=3) == held  # not the list's order
    assert validation_patients(ids, named=["p2"]) == {"p2"}
    assert validation_patients(ids) == set()
    with pytest.raises(InputError, match="not in the data: p9"):
        validation_patients(ids, named=["p9"])
    with pytest.raises(InputError, match="none would be left to train on"):
        validation_patients(["p1", "p1"], fraction=0.5)
    with pytest.raises(InputError, match="between 0 and 1"):
        validation_patients(ids, fraction=1.5)


def test_validation_loss_best_and_last_checkpoints_and_tensorboard(frozen, tmp_path):
    pytest.importorskip("tensorboard")
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ct", "labelmap", "patient_id"])
        for patient in ("a", "a", "b"):
            writer.writerow([frozen / "demo_ct.nii.gz", frozen / "demo_labels.nii.gz", patient])
    options = [a for a in _controlnet_options(frozen, tmp_path / "run", "--steps", "4", "--batch-size", "1")[3:]]
    _run(controlnet, ["--manifest", str(manifest), *options, "--val-patients", "b", "--val-every", "2", "--tensorboard"])
    last = torch.load(tmp_path / "run" / controlnet.CHECKPOINT_NAME, weights_only=True)
    best = torch.load(tmp_path / "run" / controlnet.BEST_CHECKPOINT_NAME, weights_only=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    val = [(e.step, e.value) for e in events.Scalars("val/loss")]
    print("validation losses:", val)
    assert [step for step, _ in val] == [2, 4]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("train/lr")] == [1, 2, 3, 4]
    # a sample slice per validation: clean | noised | denoised latent (--patch 32 -> an 8^3 latent), 8-bit grey
    images = events.Images(SAMPLE_SLICE_TAG)
    assert [(e.step, e.height, e.width) for e in images] == [(2, 8, 24), (4, 8, 24)]
    strip = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("L"))
    assert strip.shape == (8, 24) and strip.min() == 0 and strip.max() == 255
    clean, noised, denoised = np.split(strip.astype(int), 3, axis=1)
    assert np.abs(noised - denoised).mean() > 1 and np.abs(clean - noised).mean() > 1
    low = min(val, key=lambda sv: sv[1])
    assert best["step"] == low[0] and best["val_loss"] == pytest.approx(low[1], rel=1e-6)
    assert last["step"] == 4 and last["val_loss"] == pytest.approx(val[-1][1], rel=1e-6)

    # the held-out patient is not trained on, and validating changes nothing in the training
    _run(controlnet, ["--pair", str(frozen / "demo_ct.nii.gz"), str(frozen / "demo_labels.nii.gz"),
                      "--pair", str(frozen / "demo_ct.nii.gz"), str(frozen / "demo_labels.nii.gz"),
                      *[a for a in _controlnet_options(frozen, tmp_path / "plain", "--steps", "4", "--batch-size", "1")[3:]]])
    plain = torch.load(tmp_path / "plain" / controlnet.CHECKPOINT_NAME, weights_only=True)
    assert all(torch.equal(plain["controlnet_state_dict"][k], v) for k, v in last["controlnet_state_dict"].items())


@pytest.mark.parametrize("mode", [["--batch-size", "2"],
                                  ["--mode", "paper", "--config", "hrldm_paper_tiny", "--batch-size", "1"]], ids=["roi", "paper"])
def test_hrldm_validation_best_checkpoint_and_tensorboard(manifest, tmp_path, mode):
    pytest.importorskip("tensorboard")
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nodsynth.train import hrldm
    from nodsynth.io.volume_files import volume_stem
    from test_train_reproducible import _hrldm_options

    rows = list(csv.DictReader(open(manifest)))
    held = volume_stem(rows[2]["image"])  # no patient_id column: the image's stem is the patient
    _run(hrldm, _hrldm_options(manifest, tmp_path / "run", "--steps", "4", *mode, "--val-patients", held,
                               "--val-every", "2", "--tensorboard"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    val = [(e.step, e.value) for e in events.Scalars("val/loss")]
    print("HR-LDM validation losses:", val)
    assert [step for step, _ in val] == [2, 4] and [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    best = torch.load(tmp_path / "run" / hrldm.BEST_CHECKPOINT_NAME, weights_only=True)
    low = min(val, key=lambda sv: sv[1])
    assert best["step"] == low[0] and best["val_loss"] == pytest.approx(low[1], rel=1e-6)
    last = torch.load(tmp_path / "run" / hrldm.CHECKPOINT_NAME, weights_only=True)
    assert last["step"] == 4 and last["val_loss"] == pytest.approx(val[-1][1], rel=1e-6)
    # a sample slice per validation: clean | lesion-noised | denoised latent (8^3 latents: hrldm_tiny's 32^3 patch,
    # hrldm_paper_tiny's 32^3 whole crop)
    images = events.Images(SAMPLE_SLICE_TAG)
    assert [(e.step, e.height, e.width) for e in images] == [(2, 8, 24), (4, 8, 24)]
    strip = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("L"))
    assert strip.shape == (8, 24) and strip.min() == 0 and strip.max() == 255
    clean, noised, denoised = np.split(strip.astype(int), 3, axis=1)
    lesion = clean != noised  # only the nodule's region is noised (and denoised); the background is the clean latent
    print("HR-LDM sample slice, noised pixels:", int(lesion.sum()), "of", lesion.size)
    assert 0 < lesion.sum() < lesion.size and np.array_equal(denoised[~lesion], clean[~lesion])
    assert np.abs(noised - denoised)[lesion].mean() > 1

    # the image changes nothing in the training: the same run without the log writes the same checkpoint bytes
    _run(hrldm, _hrldm_options(manifest, tmp_path / "plain", "--steps", "4", *mode, "--val-patients", held,
                               "--val-every", "2"))
    plain, logged = ((tmp_path / name / hrldm.CHECKPOINT_NAME).read_bytes() for name in ("plain", "run"))
    assert plain == logged


def test_the_hrldm_sample_slice_denoises_with_the_ddpm_schedulers_epsilon_formula():
    """Given the true noise, Eq. 6 recovers the clean latent inside the region; given any noise estimate it is
    MONAI's ``DDPMScheduler.step`` estimate of the original sample there, and the clean latent outside."""
    from nodsynth.engines.hrldm import load_hrldm_config
    from nodsynth.engines.hrldm.network import build_scheduler
    from nodsynth.train import hrldm

    scheduler = build_scheduler(load_hrldm_config("hrldm_tiny"), "ddpm")
    generator = torch.Generator().manual_seed(1)
    z0, noise, guess = (torch.randn((1, 4, 8, 8, 8), generator=generator) for _ in range(3))
    region = torch.zeros((1, 1, 8, 8, 8))
    region[..., 2:6, 2:6, 3:7] = 1
    inside = region.expand_as(z0) > 0
    timestep = torch.tensor([700])
    noised = hrldm.lesion_noised(scheduler, z0, region, timestep, noise)
    assert (noised - z0)[inside].abs().min() > 0 and torch.equal(noised[~inside], z0[~inside])
    assert torch.allclose(hrldm.lesion_denoised(scheduler, z0, noised, noise, region, timestep), z0, atol=1e-5)
    denoised = hrldm.lesion_denoised(scheduler, z0, noised, guess, region, timestep)
    _, original = scheduler.step(guess, int(timestep), noised, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(denoised[inside], original[inside], atol=1e-5) and torch.equal(denoised[~inside], z0[~inside])


def test_the_sample_slice_denoises_with_x_t_plus_t_over_T_times_the_velocity(monkeypatch):
    """Given the true velocity ``x0 - eps``, the one-step estimate shown in the sample slice is the clean latent."""
    from types import SimpleNamespace

    from nodsynth.engines.maisi import load_config
    from nodsynth.engines.nodmaisi.sampling import make_scheduler

    scheduler = make_scheduler(load_config("maisi_tiny"))
    latent = torch.randn((1, 4, 8, 8, 8), generator=torch.Generator().manual_seed(1))
    draw = controlnet.draw_noise(scheduler, latent, 7)

    def true_velocity(nets, network, schedule, examples, draws):
        return latent - draws[0].noise, schedule.add_noise(latent, draws[0].noise, draws[0].timesteps)

    monkeypatch.setattr(controlnet, "predicted_velocity", true_velocity)
    denoised, noisy = controlnet.denoised_latent(None, None, scheduler, SimpleNamespace(latent=latent), draw)
    assert float(draw.timesteps) > 0 and (noisy - latent).abs().max() > 0.1
    assert torch.allclose(denoised, latent, atol=1e-5)
