"""Install what the modules need, only after the user agrees (Slicer side).

torch through the PyTorch extension (``PyTorchUtils``, build matched to the GPU driver);
other packages through ``slicer.packaging.pip_ensure`` (Slicer >= 5.12: asks, shows progress,
offers a restart) or, on older Slicer, ``slicer.util.pip_install`` after a confirmation.
Slicer's own numpy, SimpleITK and requests are never replaced. Headless callers
(``interactive=False``) get an error naming what to install instead of a silent install.
"""
from __future__ import annotations

import importlib
from typing import Sequence

import slicer

from nodsynth.errors import Cancelled, NodsynthError

from .requirements import (CORE_REQUIREMENTS, ENGINE_REQUIREMENTS, PROTECTED_PACKAGES, REMOTE_REQUIREMENTS,
                           TORCH_REQUIREMENT, unmet_requirements)
from .settings import EngineSettings

REQUESTER = "NodMAISI"


def slicer_pip_ensure():
    """``slicer.packaging.pip_ensure`` (Slicer >= 5.12), or None on a Slicer without it."""
    try:
        packaging = importlib.import_module("slicer.packaging")
    except ImportError:
        return None
    return getattr(packaging, "pip_ensure", None)


def ensure_packages(requirements: Sequence[str], interactive: bool = True) -> None:
    """Make sure ``requirements`` are met; asks before installing anything."""
    missing = unmet_requirements(requirements)
    if not missing:
        return
    if not interactive:
        raise NodsynthError("missing Python packages: " + ", ".join(missing)
                            + f"; install them in Slicer's Python console: slicer.util.pip_install({' '.join(missing)!r})")
    pip_ensure = slicer_pip_ensure()
    if pip_ensure is not None:
        from packaging.requirements import Requirement

        try:
            pip_ensure([Requirement(r) for r in missing], skip_packages=list(PROTECTED_PACKAGES),
                       requester=REQUESTER)
        except RuntimeError as exc:  # the user declined
            raise Cancelled(f"installation declined: {exc}") from exc
        return
    if not slicer.util.confirmOkCancelDisplay(
            "NodMAISI needs these Python packages, which will be downloaded and installed now:\n\n"
            + "\n".join(missing), windowTitle="Install Python packages"):
        raise Cancelled("installation of " + ", ".join(missing) + " declined")
    with slicer.util.WaitCursor():
        slicer.util.pip_install(list(missing))


def ensure_torch(interactive: bool = True):
    """Import torch, installing it through the PyTorch extension after the user agrees; returns the module."""
    if not unmet_requirements([f"torch{TORCH_REQUIREMENT}"]):
        import torch

        return torch
    try:
        import PyTorchUtils
    except ImportError as exc:
        raise NodsynthError("the PyTorch extension is missing: install 'PyTorch' from the Extensions Manager "
                            "and restart Slicer") from exc
    if not interactive:
        raise NodsynthError(f"torch{TORCH_REQUIREMENT} is not installed; install it from the PyTorch Utils module")
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True,
                                                          torchVersionRequirement=TORCH_REQUIREMENT)
    if torch is None:
        raise Cancelled("installation of PyTorch declined")
    return torch


def ensure_engine_dependencies(engine_name: str, settings: EngineSettings, interactive: bool = True) -> None:
    """What running ``engine_name`` where ``settings`` say needs: nodsynth's core packages always; httpx for
    a remote server; torch and MONAI for a local diffusion engine (the model-free one needs neither)."""
    ensure_packages(CORE_REQUIREMENTS, interactive)
    if settings.remote:
        ensure_packages(REMOTE_REQUIREMENTS, interactive)
    elif engine_name != "classic":
        ensure_torch(interactive)
        ensure_packages(ENGINE_REQUIREMENTS, interactive)
