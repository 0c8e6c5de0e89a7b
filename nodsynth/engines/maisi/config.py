"""MAISI network configurations: JSON files in ``Resources/configs/maisi*.json``.

A configuration is a dict with the keyword arguments of MONAI's MAISI networks under
``"autoencoder"`` (``AutoencoderKlMaisi``), ``"diffusion_unet"`` (``DiffusionModelUNetMaisi``) and
``"controlnet"`` (``ControlNetMaisi``), the ``RFlowScheduler`` arguments under ``"noise_scheduler"``
and the VAE tiling under ``"decode"`` (``window_latent``: latent voxels per tile as published, ``overlap``: 0..1,
optional ``cpu_window_latent`` / ``cpu_bytes_per_latent_voxel``: the smaller CPU tile and when it is
needed, see :func:`nodsynth.engines.maisi.codec.decode_window`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

from ...io.tables import read_json
from ...errors import InputError
from ...resources import resources_dir

REQUIRED_SECTIONS = ("autoencoder", "diffusion_unet", "controlnet", "noise_scheduler")
DEFAULT_DECODE = {"window_latent": [80, 80, 64], "overlap": 0.25, "cpu_window_latent": [32, 32, 32],
                  "cpu_bytes_per_latent_voxel": 131072}
"""MAISI-v2's published tiling (NoMAISI's inference configuration), for configurations without a ``decode`` section."""


def config_names() -> list[str]:
    """Names of the configurations shipped in ``Resources/configs`` (``maisi_v2``, ``maisi_tiny``, ...)."""
    return sorted(p.stem for p in (resources_dir() / "configs").glob("maisi*.json"))


def _read_config_file(path: Path) -> dict[str, Any]:
    return read_json(path, "MAISI network configuration")


def load_config(config: str | Path | Mapping[str, Any] = "maisi_v2") -> dict[str, Any]:
    """A validated deep copy of a configuration given by name, JSON path or dict."""
    if isinstance(config, Mapping):
        data = copy.deepcopy(dict(config))
    else:
        path = Path(config)
        named = resources_dir() / "configs" / f"{config}.json"
        if named.is_file():
            path = named
        elif not path.is_file():
            raise InputError(f"unknown MAISI configuration {str(config)!r}: neither a file nor one of "
                             f"{', '.join(config_names())}")
        data = _read_config_file(path)
    missing = [key for key in REQUIRED_SECTIONS if not isinstance(data.get(key), Mapping)]
    if missing:
        raise InputError(f"MAISI configuration {data.get('name', config)!r} lacks section(s) {', '.join(missing)}")
    data.setdefault("name", "custom")
    decode = dict(data.get("decode") or DEFAULT_DECODE)
    if "window_latent" not in decode:
        raise InputError(f"MAISI configuration {data['name']!r}: the decode section needs window_latent")
    decode.setdefault("overlap", DEFAULT_DECODE["overlap"])
    data["decode"] = decode
    return data
