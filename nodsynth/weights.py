"""Where model weights are found: never downloaded, always looked up in folders the user chose.

Places, in order:

1. ``--weights DIR`` (the ``weights_dir`` argument of the engines) -- when given, the only place;
2. the ``NODSYNTH_WEIGHTS`` environment variable (one folder, or several joined by ``os.pathsep``);
3. ``"weights_dir"`` (a folder or a list of folders) in the user config file
   :func:`user_config_path` (``~/.config/nodsynth/config.json`` on Linux, ``~/Library/Application
   Support/nodsynth/config.json`` on macOS, ``%APPDATA%\\nodsynth\\config.json`` on Windows;
   ``NODSYNTH_CONFIG`` names another file).

In each folder the engine's own sub-folder (``DIR/nodmaisi``) is searched before the folder itself.

Which files an engine needs is declared in :data:`ENGINE_WEIGHTS`: per engine, a tuple of
:class:`WeightFile` (a role and the names it may have, exact names first, then glob patterns).
Engines add their entry there (or call :func:`register_weights`); ``nodsynth weights`` lists them.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import InputError, WeightsError

ENV_WEIGHTS = "NODSYNTH_WEIGHTS"
ENV_CONFIG = "NODSYNTH_CONFIG"
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint an engine needs: its ``role`` and the file names it may have (globs allowed)."""

    role: str
    names: tuple[str, ...]
    description: str = ""
    required: bool = True


ENGINE_WEIGHTS: dict[str, tuple[WeightFile, ...]] = {
    "nodmaisi": (
        WeightFile("autoencoder", ("autoencoder.pt", "autoencoder_v1.pt"),
                   "MAISI VAE, plain state dict (NoMAISI autoencoder.pt / MAISI-v2 autoencoder_v1.pt)"),
        WeightFile("diffusion_unet", ("diffusion_unet.pt", "diff_unet_3d_rflow-ct.pt"),
                   "rectified-flow U-Net, {unet_state_dict, scale_factor}"),
        WeightFile("controlnet", ("controlnet_3d_rflow-ct.pt", "controlnet*.pt", "*controlnet*.pt"),
                   "ControlNet, {controlnet_state_dict} (NodMAISI/NoMAISI or MAISI-v2 release)"),
    ),
}
"""engine name -> the files it looks for."""


@dataclass(frozen=True)
class SearchPlace:
    """A folder searched for weights and why (``--weights``, ``NODSYNTH_WEIGHTS``, the config file)."""

    folder: Path
    source: str


def register_weights(engine: str, *files: WeightFile) -> None:
    """Declare (or replace) the files ``engine`` looks for."""
    ENGINE_WEIGHTS[engine] = tuple(files)


def user_config_path() -> Path:
    """The user config file (it need not exist): ``NODSYNTH_CONFIG`` or the platform's config folder."""
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG]).expanduser()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "nodsynth" / "config.json"


def _config_folders(path: Path) -> list[Path]:
    """``weights_dir`` of the config file (relative paths are relative to the file); [] when absent."""
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the nodsynth config file {path}: {exc}") from exc
    value = data.get("weights_dir") if isinstance(data, dict) else None
    folders = [value] if isinstance(value, str) else list(value or [])
    return [(path.parent / Path(str(f)).expanduser()) for f in folders]


def search_places(engine: str, weights_dir: Optional[str | os.PathLike] = None) -> list[SearchPlace]:
    """The folders searched for ``engine``'s weights, in order (see the module docstring)."""
    if weights_dir:
        roots = [(Path(weights_dir).expanduser(), "--weights")]
    else:
        env = [Path(p).expanduser() for p in os.environ.get(ENV_WEIGHTS, "").split(os.pathsep) if p.strip()]
        config = user_config_path()
        roots = [(p, ENV_WEIGHTS) for p in env] + [(p, f"config file {config}") for p in _config_folders(config)]
    places = []
    for root, source in roots:
        places += [SearchPlace(root / engine, source), SearchPlace(root, source)]
    return places


def _matches(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        return []
    if any(ch in name for ch in "*?["):
        return sorted(p for p in folder.glob(name) if p.is_file())
    path = folder / name
    return [path] if path.is_file() else []


def candidates(spec: WeightFile, places: list[SearchPlace]) -> list[Path]:
    """Every file that could serve ``spec``, best first (place order, then name order)."""
    found: list[Path] = []
    for place in places:
        for name in spec.names:
            found += [p for p in _matches(place.folder, name) if p not in found]
    return found


def _engine_files(engine: str) -> tuple[WeightFile, ...]:
    if engine not in ENGINE_WEIGHTS:
        raise InputError(f"no weights are declared for engine {engine!r}; known: {', '.join(sorted(ENGINE_WEIGHTS))}")
    return ENGINE_WEIGHTS[engine]


def describe_places(engine: str, places: list[SearchPlace], weights_dir: Optional[str | os.PathLike]) -> str:
    """One sentence listing the folders searched and the configuration places that gave none."""
    text = ", ".join(f"{p.folder} ({p.source})" for p in places) or "no folder"
    if not weights_dir:
        notes = []
        if not os.environ.get(ENV_WEIGHTS):
            notes.append(f"{ENV_WEIGHTS} is not set")
        config = user_config_path()
        if not _config_folders(config):
            notes.append(f"no weights_dir in config file {config}")
        text += "; " + "; ".join(notes) if notes else ""
    return text + f"; pass --weights DIR to choose a folder (engine {engine!r} looks in DIR/{engine} and DIR)"


def find_weights(engine: str, weights_dir: Optional[str | os.PathLike] = None,
                 required_roles: Optional[Sequence[str]] = None) -> dict[str, Path]:
    """role -> checkpoint path for the files ``engine`` declares; :class:`WeightsError` names what is missing and where.

    ``required_roles`` narrows which roles must be found (default: every file declared required).
    """
    places = search_places(engine, weights_dir)
    found, missing = {}, []
    for spec in _engine_files(engine):
        paths = candidates(spec, places)
        needed = spec.required if required_roles is None else spec.role in required_roles
        if paths:
            found[spec.role] = paths[0]
        elif needed:
            missing.append(f"{spec.role} ({' or '.join(spec.names)})")
    if missing:
        raise WeightsError(f"engine {engine!r} is missing weights: {'; '.join(missing)}. Searched: "
                           + describe_places(engine, places, weights_dir) + ". Weights are never downloaded.")
    return found


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_report(engine: str, weights_dir: Optional[str | os.PathLike] = None, with_hash: bool = True) -> dict[str, Any]:
    """What ``engine`` looks for, where, and what it found (path, size, SHA-256), for ``nodsynth weights``."""
    places = search_places(engine, weights_dir)
    files = []
    for spec in _engine_files(engine):
        paths = candidates(spec, places)
        entry: dict[str, Any] = {"role": spec.role, "looks_for": list(spec.names), "description": spec.description,
                                 "required": spec.required, "found": str(paths[0]) if paths else None,
                                 "alternatives": [str(p) for p in paths[1:]]}
        if paths:
            entry["size_bytes"] = paths[0].stat().st_size
            entry["sha256"] = sha256_of(paths[0]) if with_hash else None
        files.append(entry)
    complete = all(f["found"] for f in files if f["required"])
    return {"engine": engine, "complete": complete, "files": files,
            "searched": [{"folder": str(p.folder), "source": p.source} for p in places],
            "where": describe_places(engine, places, weights_dir)}


def engines_with_weights() -> list[str]:
    """Engines that declare weights, sorted."""
    return sorted(ENGINE_WEIGHTS)
