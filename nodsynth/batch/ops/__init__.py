"""Batch operations, one adapter module each (see :mod:`nodsynth.batch.opspec` for what a module defines).

Modules are found automatically: adding an op (e.g. ``review`` once :mod:`nodsynth.review` exists)
is adding one file here. An op module that cannot be imported in this install is not available.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ...errors import InputError

_loaded: dict[str, ModuleType] = {}
_unavailable: dict[str, str] = {}


def available_ops() -> dict[str, ModuleType]:
    """op name -> adapter module, for every adapter that imports here."""
    if not _loaded:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{__name__}.{info.name}")
            except ImportError as exc:  # e.g. the op's package is not installed
                _unavailable[info.name] = str(exc)
                continue
            _loaded[module.OP] = module
    return _loaded


def get_op(name: str) -> ModuleType:
    """The adapter of op ``name``; :class:`InputError` naming the available ops otherwise."""
    ops = available_ops()
    if name in _unavailable:
        raise InputError(f"op {name!r} is not available in this install ({_unavailable[name]}); "
                         f"available here: {', '.join(sorted(ops))}")
    if name not in ops:
        raise InputError(f"unknown op {name!r}; available here: {', '.join(sorted(ops))}")
    return ops[name]
