"""The real MAISI-v2 / NodMAISI checkpoint formats, loaded strictly and saved atomically.

* autoencoder: a plain ``state_dict`` (``autoencoder_v1.pt``, NoMAISI ``autoencoder.pt``);
* diffusion U-Net: ``{"unet_state_dict": ..., "scale_factor": ...}`` (``diff_unet_3d_rflow-ct.pt``,
  NoMAISI ``diffusion_unet.pt``);
* ControlNet: ``{"controlnet_state_dict": ...}`` (``controlnet_3d_rflow-ct.pt``), loaded over a copy
  of the U-Net weights as MAISI's trainer initialises it. Extra keys (``step``, optimizer state) are
  allowed and ignored by the loaders.

"Strictly" means every parameter of the network is in the file with the right shape and the file
holds no parameter the network lacks; otherwise :class:`~nodsynth.errors.WeightsError` lists them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from ...io.atomic import atomic_path
from ...errors import WeightsError
from .networks import build_autoencoder, build_controlnet, build_diffusion_unet

MAX_LISTED_KEYS = 5


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> Any:
    """``torch.load`` of tensors and plain containers only (no code execution); clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise WeightsError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else ""
    return ", ".join(keys[:MAX_LISTED_KEYS]) + more


def load_state_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``; raise :class:`WeightsError` naming missing/unexpected/misshaped keys."""
    if not isinstance(state, Mapping):
        raise WeightsError(f"{source}: expected a state dict, found {type(state).__name__}")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(k for k in set(own) & set(state)
                       if tuple(own[k].shape) != tuple(getattr(state[k], "shape", ())))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} key(s) with another shape: {_listed(misshaped)}")
    if problems:
        raise WeightsError(f"{source} does not match the {type(module).__name__} of this configuration: "
                           + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _section(checkpoint: Any, key: str, path: Path) -> Any:
    if not isinstance(checkpoint, Mapping) or key not in checkpoint:
        found = sorted(checkpoint)[:MAX_LISTED_KEYS] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise WeightsError(f"{path} is not a {key!r} checkpoint (found {found})")
    return checkpoint[key]


def load_autoencoder(path: str | os.PathLike, config: Mapping[str, Any] | str = "maisi_v2",
                     device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """``AutoencoderKlMaisi`` with the plain state dict in ``path``."""
    autoencoder = build_autoencoder(config, device)
    state = read_checkpoint(path, next(autoencoder.parameters()).device)
    load_state_strict(autoencoder, state, f"autoencoder checkpoint {path}")
    return autoencoder


def load_diffusion_unet(path: str | os.PathLike, config: Mapping[str, Any] | str = "maisi_v2",
                        device: Optional[str | torch.device] = None) -> tuple[torch.nn.Module, float]:
    """``(DiffusionModelUNetMaisi, scale_factor)`` from ``{"unet_state_dict", "scale_factor"}``."""
    unet = build_diffusion_unet(config, device)
    checkpoint = read_checkpoint(path, next(unet.parameters()).device)
    load_state_strict(unet, _section(checkpoint, "unet_state_dict", Path(path)), f"diffusion U-Net checkpoint {path}")
    scale_factor = float(_section(checkpoint, "scale_factor", Path(path)))
    if not scale_factor > 0:
        raise WeightsError(f"{path}: scale_factor must be positive, found {scale_factor}")
    return unet, scale_factor


def controlnet_from_unet(unet: torch.nn.Module, config: Mapping[str, Any] | str = "maisi_v2",
                         device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """A ``ControlNetMaisi`` initialised with the U-Net's weights where names and shapes agree."""
    from monai.networks.utils import copy_model_state

    controlnet = build_controlnet(config, device)
    copy_model_state(controlnet, unet.state_dict())
    return controlnet


def load_controlnet(path: str | os.PathLike, unet: torch.nn.Module,
                    config: Mapping[str, Any] | str = "maisi_v2",
                    device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """``ControlNetMaisi`` from ``{"controlnet_state_dict"}``, loaded over a copy of ``unet``'s weights."""
    controlnet = controlnet_from_unet(unet, config, device)
    checkpoint = read_checkpoint(path, next(controlnet.parameters()).device)
    load_state_strict(controlnet, _section(checkpoint, "controlnet_state_dict", Path(path)),
                      f"ControlNet checkpoint {path}")
    return controlnet


def _interned(obj: Any) -> Any:
    """``obj`` with every string in its dicts, lists and tuples interned (one object per distinct text)."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):  # state dicts are OrderedDicts with a _metadata attribute: both kept
        out = type(obj)((_interned(k), _interned(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = _interned(obj._metadata)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_interned(v) for v in obj)
    return obj


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically; equal contents give equal bytes.

    The bytes depend neither on the temporary file's name (a named file would name the archive
    inside) nor on which equal strings are the same object (pickle refers back to an object it
    has written: a state loaded from a checkpoint and a fresh one would differ).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(_interned(obj), handle)
    return Path(path)


def save_autoencoder(autoencoder: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write the autoencoder as a plain state dict (atomically)."""
    return save_checkpoint(autoencoder.state_dict(), path)


def save_diffusion_unet(unet: torch.nn.Module, scale_factor: float, path: str | os.PathLike) -> Path:
    """Write ``{"unet_state_dict", "scale_factor"}`` (atomically)."""
    return save_checkpoint({"unet_state_dict": unet.state_dict(), "scale_factor": torch.tensor(float(scale_factor))}, path)


def save_controlnet(controlnet: torch.nn.Module, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``{"controlnet_state_dict", **extra}`` (atomically); ``extra`` e.g. the training step."""
    return save_checkpoint({"controlnet_state_dict": controlnet.state_dict(), **extra}, path)
