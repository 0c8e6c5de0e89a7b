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

A role may name extra patterns in the config file (``WeightFile.config_key``, e.g.
``{"controlnet_names": ["my_finetune_*.pt"]}``), searched before its own names, and *fallback* files
(``WeightFile.fallback_names``) that are never taken silently: NodMAISI's ControlNet role falls back
to MAISI-v2's baseline ``controlnet_3d_rflow-ct.pt`` only when the caller allows it
(``find_weights(..., allow_fallback=True)``, CLI ``--allow-baseline-controlnet``); otherwise the
error says why. Patterns never match a fallback file.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from .io.tables import read_json
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
    config_key: str = ""  # the config file may list name patterns for this role under this key
    fallback_names: tuple[str, ...] = ()  # taken only with the caller's permission (allow_fallback)
    fallback_reason: str = ""  # why a fallback file is refused and how to allow it


NODMAISI_CONTROLNET_RELEASE_NAMES = ("Experiments_NoMAISI_512xy_256z_771p25m_finetune_500epoch_best.pt",)
"""The NodMAISI (NoMAISI) ControlNet's released file name (NoMAISI ``configs/infr_env_NoMAISI_DLCSD24_demo.json``)."""
BASELINE_CONTROLNET_NAME = "controlnet_3d_rflow-ct.pt"
"""MAISI-v2's baseline ControlNet, trained without NodMAISI's nodule weighting."""
ALLOW_BASELINE_CONTROLNET_FLAG = "--allow-baseline-controlnet"
CONTROLNET_NAMES_KEY = "controlnet_names"
"""Config-file key listing extra ControlNet file-name patterns (searched first)."""


ENGINE_WEIGHTS: dict[str, tuple[WeightFile, ...]] = {
    "nodmaisi": (
        WeightFile("autoencoder", ("autoencoder.pt", "autoencoder_v1.pt"),
                   "MAISI VAE, plain state dict (NoMAISI autoencoder.pt / MAISI-v2 autoencoder_v1.pt)"),
        WeightFile("diffusion_unet", ("diffusion_unet.pt", "diff_unet_3d_rflow-ct.pt"),
                   "rectified-flow U-Net, {unet_state_dict, scale_factor}"),
        WeightFile("controlnet", NODMAISI_CONTROLNET_RELEASE_NAMES + ("*NoMAISI*.pt", "*NodMAISI*.pt",
                                                                     "controlnet*.pt", "*controlnet*.pt"),
                   "NodMAISI ControlNet, {controlnet_state_dict}", config_key=CONTROLNET_NAMES_KEY,
                   fallback_names=(BASELINE_CONTROLNET_NAME,),
                   fallback_reason="is MAISI-v2's baseline ControlNet, not NodMAISI's: NodMAISI reports that it "
                                   "misses sub-centimetre nodules (2/43 detected vs 30/43 with the NodMAISI "
                                   "ControlNet). Put the NodMAISI ControlNet in the weights folder (released as "
                                   f"{NODMAISI_CONTROLNET_RELEASE_NAMES[0]}, or a name listed under "
                                   f"\"{CONTROLNET_NAMES_KEY}\" in the config file), or pass "
                                   f"{ALLOW_BASELINE_CONTROLNET_FLAG} to use the baseline anyway"),
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


def _config_entries(path: Path, key: str) -> list[str]:
    """The string or list of strings under ``key`` in the config file; [] when the file or key is absent."""
    if not path.is_file():
        return []
    data = read_json(path, "nodsynth config file")
    value = data.get(key) if isinstance(data, dict) else None
    return [value] if isinstance(value, str) else [str(v) for v in (value or [])]


def _config_folders(path: Path) -> list[Path]:
    """``weights_dir`` of the config file (relative paths are relative to the file); [] when absent."""
    return [(path.parent / Path(f).expanduser()) for f in _config_entries(path, "weights_dir")]


def names_of(spec: WeightFile) -> tuple[str, ...]:
    """The names ``spec`` looks for: the config file's patterns for its role first, then its own."""
    extra = tuple(_config_entries(user_config_path(), spec.config_key)) if spec.config_key else ()
    return extra + tuple(n for n in spec.names if n not in extra)


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


def _search(names: Sequence[str], places: list[SearchPlace], excluded: Sequence[str] = ()) -> list[Path]:
    found: list[Path] = []
    for place in places:
        for name in names:
            found += [p for p in _matches(place.folder, name) if p not in found and p.name not in excluded]
    return found


def candidates(spec: WeightFile, places: list[SearchPlace]) -> list[Path]:
    """Every file that could serve ``spec`` without permission, best first (place order, then name order)."""
    return _search(names_of(spec), places, excluded=spec.fallback_names)


def fallback_candidates(spec: WeightFile, places: list[SearchPlace]) -> list[Path]:
    """The fallback files of ``spec`` found (used only with permission)."""
    return _search(spec.fallback_names, places)


def is_fallback(engine: str, role: str, path: Path) -> bool:
    """True when ``path`` is a fallback file of ``engine``'s ``role``."""
    return any(spec.role == role and Path(path).name in spec.fallback_names for spec in _engine_files(engine))


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
                 required_roles: Optional[Sequence[str]] = None, allow_fallback: bool = False) -> dict[str, Path]:
    """role -> checkpoint path for the files ``engine`` declares; :class:`WeightsError` names what is missing and where.

    ``required_roles`` narrows which roles must be found (default: every file declared required).
    A role's fallback file is taken only with ``allow_fallback`` (else, when it is all there is for a
    needed role, the error names it and says why it is refused).
    """
    places = search_places(engine, weights_dir)
    found, missing, refused = {}, [], []
    for spec in _engine_files(engine):
        paths = candidates(spec, places)
        fallbacks = fallback_candidates(spec, places) if not paths else []
        needed = spec.required if required_roles is None else spec.role in required_roles
        if paths or (fallbacks and allow_fallback):
            found[spec.role] = (paths or fallbacks)[0]
        elif fallbacks and needed:
            refused.append(f"{spec.role}: the only file found, {fallbacks[0]}, {spec.fallback_reason}")
        elif needed:
            missing.append(f"{spec.role} ({' or '.join(names_of(spec))})")
    if refused:
        raise WeightsError(f"engine {engine!r}: " + "; ".join(refused) + ".")
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
        fallbacks = fallback_candidates(spec, places)
        entry: dict[str, Any] = {"role": spec.role, "looks_for": list(names_of(spec)), "description": spec.description,
                                 "required": spec.required, "found": str(paths[0]) if paths else None,
                                 "alternatives": [str(p) for p in paths[1:]],
                                 "fallback": str(fallbacks[0]) if fallbacks else None,
                                 "fallback_reason": spec.fallback_reason if fallbacks and not paths else None}
        if paths:
            entry["size_bytes"] = paths[0].stat().st_size
            entry["sha256"] = sha256_of(paths[0]) if with_hash else None
        files.append(entry)
    complete = all(f["found"] for f in files if f["required"])
    return {"engine": engine, "complete": complete, "files": files,
            "searched": [{"folder": str(p.folder), "source": p.source} for p in places],
            "where": describe_places(engine, places, weights_dir)}


def checkpoint_records(engine: str, files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """role -> ``{"file", "sha256", "size_bytes", "fallback"}`` of the checkpoints an engine loaded."""
    return {role: {"file": str(path), "sha256": sha256_of(Path(path)), "size_bytes": Path(path).stat().st_size,
                   "fallback": is_fallback(engine, role, Path(path))} for role, path in files.items()}


NIFTI_NOTES_KEY = "ITK_FileNotes"
"""SimpleITK's name for the NIfTI header's 80-character ``descrip`` field (NRRD and MHA keep any key)."""


def checkpoint_metadata(engine: str, records: dict[str, dict[str, Any]]) -> dict[str, str]:
    """File-header entries recording the checkpoints of a result (``records`` from :func:`checkpoint_records`).

    One ``nodsynth_<role>_sha256`` entry per checkpoint (kept by NRRD and MHA), and the NIfTI
    ``descrip`` field ``<role>:<sha256>`` of the engine's distinguishing checkpoint, which engines
    declare last (NodMAISI's ControlNet, HR-LDM's ``hrldm.pt``): the field holds 80 characters.
    """
    if not records:
        return {}
    metadata = {"nodsynth_engine": engine}
    metadata.update({f"nodsynth_{role}_sha256": record["sha256"] for role, record in records.items()})
    roles = [spec.role for spec in ENGINE_WEIGHTS.get(engine, ()) if spec.role in records] or list(records)
    metadata[NIFTI_NOTES_KEY] = f"{roles[-1]}:{records[roles[-1]]['sha256']}"
    return metadata


def engines_with_weights() -> list[str]:
    """Engines that declare weights, sorted."""
    return sorted(ENGINE_WEIGHTS)
