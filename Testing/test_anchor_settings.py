"""What the code calls "published" is what the published NodMAISI code (../shared/anchors/NoMAISI) ships:
inference steps and VAE windows, the ControlNet's release name, the noise schedule, the training recipe."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT

ANCHOR = REPO_ROOT.parent / "shared" / "anchors" / "NoMAISI"


def anchor_file(*parts: str) -> Path:
    path = ANCHOR.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"the published NoMAISI code is not available: {path} is missing")
    return path


def test_inference_settings_are_the_published_ones():
    from nodsynth.engines.base import TwinRequest
    from nodsynth.engines.maisi.config import load_config
    from nodsynth.render.modes import DEFAULT_RENDER_STEPS

    infer = json.loads(anchor_file("configs", "infr_config_NoMAISI_controlnet.json").read_text())["controlnet_infer"]
    decode = load_config("maisi_v2")["decode"]
    assert decode["window_latent"] == infer["autoencoder_sliding_window_infer_size"]
    assert decode["overlap"] == infer["autoencoder_sliding_window_infer_overlap"]
    assert TwinRequest(labelmap=None).steps == DEFAULT_RENDER_STEPS == infer["num_inference_steps"]


def test_the_release_controlnet_name_and_noise_schedule():
    from nodsynth.engines.maisi.config import load_config
    from nodsynth.weights import NODMAISI_CONTROLNET_RELEASE_NAMES

    env = json.loads(anchor_file("configs", "infr_env_NoMAISI_DLCSD24_demo.json").read_text())
    assert Path(env["trained_controlnet_path"]).name in NODMAISI_CONTROLNET_RELEASE_NAMES
    published = json.loads(anchor_file("configs", "config_maisi3d-rflow.json").read_text())["noise_scheduler"]
    ours = load_config("maisi_v2")["noise_scheduler"]
    assert published["sample_method"] == ours["sample_method"] == "uniform"  # ("scale" only shapes logit-normal draws)
    assert all(ours[k] == published[k] for k in ("num_train_timesteps", "use_discrete_timesteps", "use_timestep_transform"))


def test_controlnet_training_recipe_is_the_published_one():
    from nodsynth.labels import NODULE
    from nodsynth.train import controlnet

    train = json.loads(anchor_file("configs", "infr_config_NoMAISI_controlnet.json").read_text())["controlnet_train"]
    assert controlnet.DEFAULT_LR == train["lr"] and controlnet.DEFAULT_TUMOR_WEIGHT == train["weighted_loss"]
    assert train["weighted_loss_label"] == [NODULE]
    script = anchor_file("scripts", "train_controlnet.py").read_text()
    assert "torch.optim.AdamW(" in script and "AdamW" in (controlnet.__doc__ or "")
    power = float(re.search(r"PolynomialLR\([^)]*power=([0-9.]+)", script).group(1))
    assert controlnet.LR_POLY_POWER == power == 2.0
