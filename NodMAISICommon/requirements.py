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

PROTECTED_PACKAGES = ("numpy", "SimpleITK", "requests", "torch")
"""Never replaced by pip on our behalf (Slicer or the PyTorch extension owns them)."""


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
    from packaging.requirements import Requirement  # bundled with Slicer (slicer.pydeps uses it)

    unmet = []
    for text in requirements:
        req = Requirement(text)
        version = version_of(req.name)
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(text)
    return unmet
