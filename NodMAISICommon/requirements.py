"""Python packages the modules need in Slicer's Python, with lower AND upper bounds (pure).

Slicer ships numpy, SimpleITK and requests itself; they are never installed or replaced
(an upgraded numpy or SimpleITK breaks Slicer). torch comes through the PyTorch extension
(``PyTorchUtils``), which picks the build matching the GPU driver.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable, Optional, Sequence

CORE_REQUIREMENTS = (
    "scipy>=1.10,<2",
    "scikit-learn>=1.2,<2",
    "scikit-image>=0.21,<1",
    "tqdm>=4.60,<5",
    "pillow>=9,<14",
)
"""What ``nodsynth`` itself needs (segmentation, measurements, label maps, model-free engine)."""

ENGINE_REQUIREMENTS = ("monai>=1.5,<1.7", "einops>=0.7,<1")
"""What the diffusion engines need besides torch."""

REMOTE_REQUIREMENTS = ("httpx>=0.27,<1",)
"""What the remote-server client needs."""

TORCH_REQUIREMENT = ">=2.4"
"""Passed to ``PyTorchUtilsLogic.installTorch(torchVersionRequirement=...)``."""

LAST_TORCH_FOR_INTEL_MAC = "2.2"
"""PyTorch publishes no macOS x86_64 wheels after 2.2.x, so ``TORCH_REQUIREMENT`` cannot be met there."""

PROTECTED_PACKAGES = ("numpy", "SimpleITK", "requests", "torch")
"""Never replaced by pip on our behalf (Slicer or the PyTorch extension owns them)."""


def torch_platform_problem(system: str, machine: str) -> Optional[str]:
    """Why torch``TORCH_REQUIREMENT`` cannot be installed on a platform (``platform.system()``,
    ``platform.machine()``), or None when it can: an x86_64 Python on macOS (an Intel Mac, or an Intel
    build of Slicer under Rosetta) gets no PyTorch after 2.2."""
    if system == "Darwin" and machine.lower() in ("x86_64", "amd64", "i386"):
        return (f"PyTorch publishes no builds for Intel macOS (x86_64) after {LAST_TORCH_FOR_INTEL_MAC}, and the "
                f"diffusion engines need torch{TORCH_REQUIREMENT}, so they cannot run on this computer. The "
                "model-free engine works here, and the diffusion engines work on a server: Engine location, "
                "Run on: Remote server")
    return None


def installed_version(distribution: str) -> Optional[str]:
    """Installed version of a distribution, or ``None`` when it is absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def protected_pins(version_of: Callable[[str], Optional[str]] = installed_version) -> list[str]:
    """pip constraints ``name==version`` for the installed protected packages (absent ones are not pinned)."""
    return [f"{name}=={version}" for name in PROTECTED_PACKAGES if (version := version_of(name)) is not None]


def unmet_requirements(requirements: Sequence[str],
                       version_of: Callable[[str], Optional[str]] = installed_version) -> list[str]:
    """The requirements (strings) that are missing or installed at a version outside their bounds."""
    from packaging.requirements import Requirement  # bundled with Slicer 5.8-5.12 (pythonqt requirements)

    unmet = []
    for text in requirements:
        req = Requirement(text)
        version = version_of(req.name)
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(text)
    return unmet
