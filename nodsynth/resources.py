"""Locate the extension's shared assets (label dictionary, network configs, presets).

They live in the repository's top-level ``Resources/`` folder, which the Slicer extension
ships beside its modules and which ``pip install`` maps into the package as
``nodsynth/Resources``. ``NODSYNTH_RESOURCES`` overrides both.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import NodsynthError


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    """The folder holding ``maisi_label_dict.json`` and the other assets."""
    here = Path(__file__).resolve().parent
    candidates = [Path(os.environ["NODSYNTH_RESOURCES"])] if os.environ.get("NODSYNTH_RESOURCES") else []
    candidates += [here / "Resources", here.parent / "Resources"]
    for folder in candidates:
        if (folder / "maisi_label_dict.json").is_file():
            return folder
    raise NodsynthError("cannot find the NodMAISI Resources folder; looked in "
                        + ", ".join(str(c) for c in candidates) + " (set NODSYNTH_RESOURCES)")


def resource_path(name: str) -> Path:
    """Path of one asset in :func:`resources_dir`; raises naming the file when it is missing."""
    path = resources_dir() / name
    if not path.exists():
        raise NodsynthError(f"resource {name!r} is missing from {resources_dir()}")
    return path


def load_json_resource(name: str):
    """Parse a JSON asset from :func:`resources_dir`."""
    with open(resource_path(name), encoding="utf-8") as handle:
        return json.load(handle)
