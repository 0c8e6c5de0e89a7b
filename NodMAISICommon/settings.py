"""Engine settings of the NodMAISI modules: which engine, where it runs, weights folder, server.

Kept in the application settings (``qt.QSettings``), never in the MRML scene, so a saved scene
never carries a server token. The functions here are pure: ``store`` is anything with the
``QSettings`` methods ``value(key, default)`` and ``setValue(key, value)``.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Optional
from urllib.parse import urlsplit

from nodsynth.errors import InputError

SETTINGS_GROUP = "NodMAISI"
LOCATIONS = ("local", "remote")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EngineSettings:
    """Where and with what a module runs its engine."""

    location: str = "local"  # "local" or "remote"
    weights_dir: str = ""  # empty: nodsynth's own search (NODSYNTH_WEIGHTS, config file)
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    server_url: str = ""
    token: str = field(default="", repr=False, metadata={"secret": True})  # job processes get it on stdin
    network_config: str = ""  # empty: the engine's published configuration (MAISI-v2); else a name or JSON file
    allow_baseline_controlnet: bool = False  # NodMAISI may fall back to MAISI-v2's baseline ControlNet

    @property
    def remote(self) -> bool:
        return self.location == "remote"


def normalize_server_url(text: str) -> tuple[str, Optional[str]]:
    """``"gpu-box:8000"`` -> ``("http://gpu-box:8000", note)``.

    :func:`nodsynth.engines.remote.normalize_server_url` adds ``http://`` when the scheme is
    missing (its warning becomes ``note``, shown beside the field) and drops a trailing ``/`` or
    ``/v1``; on top of that a host is required and the port must be valid, so a typo is caught
    when the user types it rather than at the first run.
    """
    from nodsynth.engines.remote import normalize_server_url as normalize

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        url = normalize(text)
    parts = urlsplit(url)
    if not parts.hostname:
        raise InputError(f"the server URL {text!r} names no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"the server URL {text!r} has an invalid port: {exc}") from exc
    if parts.query or parts.fragment:
        raise InputError(f"the server URL {text!r} must not carry a query or fragment")
    return url, (str(caught[-1].message) if caught else None)


def validate_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (lower-cased); raises otherwise."""
    value = (device or "auto").strip().lower()
    if value in DEVICES:
        return value
    if value.startswith("cuda:") and value[5:].isdigit():
        return value
    raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def validated(settings: EngineSettings) -> EngineSettings:
    """Check ``settings`` and return a normalised copy (server URL with its scheme, device)."""
    if settings.location not in LOCATIONS:
        raise InputError(f"engine location must be one of {', '.join(LOCATIONS)}, got {settings.location!r}")
    out = replace(settings, device=validate_device(settings.device), weights_dir=settings.weights_dir.strip(),
                  network_config=settings.network_config.strip())
    if out.weights_dir and not os.path.isdir(out.weights_dir):
        raise InputError(f"the weights folder {out.weights_dir} does not exist")
    if out.remote:
        url, _ = normalize_server_url(settings.server_url)
        if not settings.token.strip():
            raise InputError("a remote server needs its access token (ask the server's administrator)")
        out = replace(out, server_url=url, token=settings.token.strip())
    return out


_KEYS = {"location": "Location", "weights_dir": "WeightsFolder", "device": "Device",
         "server_url": "ServerURL", "token": "ServerToken", "network_config": "NetworkConfig",
         "allow_baseline_controlnet": "AllowBaselineControlNet"}


def load_engine_settings(store) -> EngineSettings:
    """Read the settings from a ``QSettings``-like store (missing keys take the defaults)."""
    defaults = EngineSettings()
    values = {}
    for field_name, key in _KEYS.items():
        default = getattr(defaults, field_name)
        value = store.value(f"{SETTINGS_GROUP}/{key}", default)
        if isinstance(default, bool):  # QSettings keeps an INI file's booleans as text
            values[field_name] = str(value).strip().lower() in ("true", "1", "yes")
        else:
            values[field_name] = "" if value is None else str(value)
    return EngineSettings(**values)


def save_engine_settings(store, settings: EngineSettings) -> None:
    """Write the settings to a ``QSettings``-like store."""
    for field_name, key in _KEYS.items():
        store.setValue(f"{SETTINGS_GROUP}/{key}", getattr(settings, field_name))
