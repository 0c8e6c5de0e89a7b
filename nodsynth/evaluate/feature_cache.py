"""Per-input feature cache, so that re-running an evaluation only computes what is new.

An entry is one ``.npz`` file (one array per plane) named by the SHA-256 of a key: the input
file's content hash, the settings that change the features and the network's fingerprint.
Entries are written atomically; a damaged entry is recomputed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..io.atomic import write_bytes_atomic

CACHE_FORMAT = 1
"""Bumped whenever the feature pipeline changes what it computes."""


def cache_key(content_sha256: str, settings: Mapping[str, Any], network_fingerprint: str) -> str:
    """Hex key of one input file under ``settings`` (JSON-serialisable) and a network."""
    text = json.dumps({"format": CACHE_FORMAT, "content": content_sha256, "settings": settings,
                       "network": network_fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FeatureCache:
    """A folder of cached features; ``folder=None`` caches nothing."""

    def __init__(self, folder: Optional[str | os.PathLike]) -> None:
        self.folder = Path(folder).expanduser() if folder else None

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Optional[dict[str, np.ndarray]]:
        if self.folder is None or not self._path(key).is_file():
            return None
        try:
            with np.load(self._path(key)) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            return None

    def put(self, key: str, features: Mapping[str, np.ndarray]) -> None:
        if self.folder is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, **{name: np.asarray(value) for name, value in features.items()})
        write_bytes_atomic(self._path(key), buffer.getvalue())
