"""HR-LDM network configurations: ``Resources/configs/hrldm*.json``.

Sections: ``autoencoder_config`` (name of the MAISI configuration whose autoencoder is used,
frozen), ``latent_channels``, ``mask_channels`` (C: channel 0 = whole nodule, channel 1 = solid
core), ``unet`` (keyword arguments of MONAI's ``DiffusionModelUNet``: ``in_channels`` = latent +
mask channels, ``num_class_embeds`` = 3 subtypes, ``with_conditioning`` with
``cross_attention_dim`` = the histogram MLP's output), ``histogram_mlp`` (``hidden`` width of
Linear-SiLU-Linear, 40 -> hidden -> context), ``scheduler`` (``DDPMScheduler`` / ``DDIMScheduler``
arguments), ``feature_histogram`` (bins and squashing scale of the truncated-decoder feature
histograms; ``squash_scale`` in units of the real features' standard deviation), ``roi`` (``margin_latent``: latent voxels around the nodule), ``blend``
(``feather_mm``) and ``training`` (``lambda_hist``, ``learning_rate``, ``poly_power``, optional
``decoder_checkpointing``: recompute the truncated decoder's activations in the backward pass of the
histogram loss, true in paper mode whose decoder sees the whole CT).

``mode`` (absent = ``roi``) says how the network is trained and run: ``roi`` (the fast default: 64^3
patches, latent ROI, the sections above) or ``paper`` (HR-LDM as published, ``hrldm_paper*.json``:
whole-CT latents, C = 3 mask channels: solid core, ground-glass region, spiculation; histogram bins
over the observed feature range; no ``roi``/``blend`` sections; see :mod:`.paper_inference`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

from ...io.tables import read_json
from ...errors import InputError
from ...histogram import HIST_BINS
from ...resources import resources_dir

MODES = ("roi", "paper")
REQUIRED = ("autoencoder_config", "latent_channels", "mask_channels", "unet", "histogram_mlp", "scheduler",
            "feature_histogram", "training")
MODE_REQUIRED = {"roi": ("roi", "blend"), "paper": ()}
MODE_MASK_CHANNELS = {"roi": (1, 2), "paper": (3,)}
"""The mask channels each mode builds: roi nodule (, solid core); paper solid core, ground-glass, spiculation."""
NUM_SUBTYPES = 3


def config_mode(config: Mapping[str, Any]) -> str:
    """The configuration's (or checkpoint's) mode: ``roi`` unless it says ``paper`` (files older than modes are roi)."""
    return str(config.get("mode", "roi"))


def hrldm_config_names() -> list[str]:
    """Configurations shipped in ``Resources/configs`` (``hrldm``, ``hrldm_tiny``)."""
    return sorted(p.stem for p in (resources_dir() / "configs").glob("hrldm*.json"))


def load_hrldm_config(config: str | Path | Mapping[str, Any] = "hrldm") -> dict[str, Any]:
    """A validated deep copy of an HR-LDM configuration given by name, JSON path or dict."""
    if isinstance(config, Mapping):
        data = copy.deepcopy(dict(config))
    else:
        named = resources_dir() / "configs" / f"{config}.json"
        path = named if named.is_file() else Path(config)
        if not path.is_file():
            raise InputError(f"unknown HR-LDM configuration {str(config)!r}: neither a file nor one of "
                             f"{', '.join(hrldm_config_names())}")
        data = read_json(path, "HR-LDM configuration")
    mode = config_mode(data)
    if mode not in MODES:
        raise InputError(f"HR-LDM configuration {data.get('name', config)!r}: mode must be one of "
                         f"{', '.join(MODES)}, found {mode!r}")
    missing = [key for key in REQUIRED + MODE_REQUIRED[mode] if key not in data]
    if missing:
        raise InputError(f"HR-LDM configuration {data.get('name', config)!r} lacks {', '.join(missing)}")
    unet = data["unet"]
    expected = {"in_channels": data["latent_channels"] + data["mask_channels"],
                "out_channels": data["latent_channels"], "num_class_embeds": NUM_SUBTYPES,
                "with_conditioning": True}
    wrong = [f"unet.{k} must be {v} (found {unet.get(k)!r})" for k, v in expected.items() if unet.get(k) != v]
    if not unet.get("cross_attention_dim"):
        wrong.append("unet.cross_attention_dim (the histogram context size) is missing")
    if data["mask_channels"] not in MODE_MASK_CHANNELS[mode]:
        wrong.append(f"mask_channels must be {' or '.join(map(str, MODE_MASK_CHANNELS[mode]))} in {mode} mode, "
                     f"found {data['mask_channels']!r}")
    if wrong:
        raise InputError(f"HR-LDM configuration {data.get('name', config)!r}: " + "; ".join(wrong))
    data.setdefault("name", "custom")
    data["mode"] = mode
    data["histogram_bins"] = HIST_BINS
    return data
