"""Install what the modules need, only after the user agrees (Slicer side).

torch through the PyTorch extension (``PyTorchUtils``, build matched to the GPU driver);
other packages through ``slicer.packaging.pip_ensure`` (Slicer >= 5.12: asks, shows progress,
offers a restart) or, on Slicer 5.8 / 5.10, ``slicer.util.pip_install`` after a confirmation.
Slicer's own numpy, SimpleITK and requests (and an installed torch) are never replaced: every
install runs with a pip constraints file pinning their installed versions, so pip either keeps
them or fails (``skip_packages``, the alternative, is a "discouraged workaround" in Slicer's own
docs). Under ``Slicer --testing`` (``slicer.app.testingEnabled()``) a module's self-test installs
without asking: there nobody answers a dialog, Slicer 5.8-5.12's ``confirmOkCancelDisplay`` returns
False (its testing value True compared with ``qt.QMessageBox.Ok``) and ``pip_ensure`` skips the install
unless told not to. Headless callers (``interactive=False``) get an error naming what to install instead.
"""
from __future__ import annotations

import importlib
import platform
import tempfile
from pathlib import Path
from typing import Sequence

import slicer

from nodsynth.errors import Cancelled, NodsynthError

from .requirements import (CORE_REQUIREMENTS, ENGINE_REQUIREMENTS, REMOTE_REQUIREMENTS, TORCH_REQUIREMENT,
                           protected_pins, torch_platform_problem, unmet_requirements)
from .settings import EngineSettings

REQUESTER = "NodMAISI"
_MET: set = set()
"""Requirements found met in this session (installed packages do not go away while Slicer runs;
looking them up costs tens of milliseconds a click)."""


def slicer_pip_ensure():
    """``slicer.packaging.pip_ensure`` (Slicer >= 5.12), or None on a Slicer without it."""
    try:
        packaging = importlib.import_module("slicer.packaging")
    except ImportError:
        return None
    return getattr(packaging, "pip_ensure", None)


def constraints_file() -> Path:
    """A pip constraints file pinning the installed versions of the packages Slicer owns."""
    handle = tempfile.NamedTemporaryFile("w", prefix="nodmaisi-constraints-", suffix=".txt", delete=False,
                                         encoding="utf-8")
    with handle:
        handle.write("\n".join(protected_pins()) + "\n")
    return Path(handle.name)


def ensure_packages(requirements: Sequence[str], interactive: bool = True, install: bool = True) -> None:
    """Make sure ``requirements`` are met; asks before installing anything. ``install=False`` only
    looks (a panel opening warms the lookup; the first run asks)."""
    missing = unmet_requirements([r for r in requirements if r not in _MET])
    _MET.update(r for r in requirements if r not in missing)
    if not missing or not install:
        return
    if not interactive:
        raise NodsynthError("missing Python packages: " + ", ".join(missing)
                            + f"; install them in Slicer's Python console: slicer.util.pip_install({' '.join(missing)!r})")
    ask = not slicer.app.testingEnabled()
    constraints = constraints_file()
    try:
        pip_ensure = slicer_pip_ensure()
        if pip_ensure is not None:
            from packaging.requirements import Requirement

            try:
                pip_ensure([Requirement(r) for r in missing], constraints=str(constraints), requester=REQUESTER,
                           skip_in_testing=False, prompt_install=ask)
            except RuntimeError as exc:  # the user declined
                raise Cancelled(f"installation declined: {exc}") from exc
            return
        if ask and not slicer.util.confirmOkCancelDisplay(
                "NodMAISI needs these Python packages, which will be downloaded and installed now:\n\n"
                + "\n".join(missing), windowTitle="Install Python packages"):
            raise Cancelled("installation of " + ", ".join(missing) + " declined")
        with slicer.util.WaitCursor():
            slicer.util.pip_install(["-c", str(constraints), *missing])
    finally:
        constraints.unlink()


def ensure_torch(interactive: bool = True):
    """Import torch, installing it through the PyTorch extension after the user agrees; returns the module.
    Where no PyTorch build can meet the requirement (Intel macOS) the error says so, and what still works."""
    if not unmet_requirements([f"torch{TORCH_REQUIREMENT}"]):
        import torch

        return torch
    problem = torch_platform_problem(platform.system(), platform.machine())
    if problem:
        raise NodsynthError(problem)
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
