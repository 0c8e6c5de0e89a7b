"""Engines by name, created lazily so that torch is imported only by the engines that need it."""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import NodsynthError
from .base import Engine

ENGINE_CLASSES: dict[str, str] = {
    "classic": "nodsynth.engines.classic:ClassicEngine",
    "nodmaisi": "nodsynth.engines.nodmaisi:NodMAISIEngine",
    "hrldm": "nodsynth.engines.hrldm:HRLDMEngine",
    "remote": "nodsynth.engines.remote:RemoteEngine",
}
"""name -> ``module:Class``; a module may not exist yet in a given install."""

ENGINE_OPERATIONS: dict[str, tuple[str, ...]] = {
    "classic": ("edit", "inpaint"),
    "nodmaisi": ("twin", "edit"),
    "hrldm": ("inpaint",),
    "remote": ("twin", "edit", "inpaint"),
}
"""name -> the :class:`~nodsynth.engines.base.Engine` operations it implements (known without importing torch)."""


def engine_names(operations: tuple[str, ...] = ()) -> list[str]:
    """The engines' names; with ``operations``, only those implementing at least one of them."""
    return sorted(n for n in ENGINE_CLASSES if not operations or set(operations) & set(ENGINE_OPERATIONS[n]))


def get_engine(name: str, **config: Any) -> Engine:
    """Create the engine called ``name`` with keyword configuration (weights folder, device, ...)."""
    key = name.strip().lower()
    if key not in ENGINE_CLASSES:
        raise NodsynthError(f"unknown engine {name!r}; available: {', '.join(engine_names())}")
    module_name, class_name = ENGINE_CLASSES[key].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NodsynthError(f"engine {name!r} needs a package that is not installed ({exc.name}); "
                            "install nodsynth with the matching extra, e.g. pip install 'nodsynth[engines]'") from exc
    return getattr(module, class_name)(**config)
