"""The one interface every CT generator implements, local or remote.

Three operations, each a small request dataclass in and a :class:`SynthesisResult` out:

* ``twin(TwinRequest)``      label map (+ output grid) -> whole CT          (NodMAISI)
* ``inpaint(InpaintRequest)`` CT + nodule mask + subtype + histogram -> CT  (HR-LDM, model-free)
* ``edit(EditRequest)``      CT + label map + edited label map -> CT        (model-free, NodMAISI ROI)

Every call takes ``progress(fraction, message)`` and a :class:`~nodsynth.progress.CancelToken`.
An engine that cannot do an operation raises :class:`UnsupportedOperation`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import NodsynthError
from ..progress import CancelToken, ProgressFn
from ..volume import Volume

MAX_VOLUME_VOXELS = 512 * 512 * 1024
"""The largest volume the engines accept, in voxels (a 512 x 512 CT of 1024 slices). The server refuses
larger ones before decompressing anything (:mod:`nodsynth.io.wire`), so a small upload cannot make it
allocate more memory than the largest real request needs."""
MAX_BYTES_PER_VOXEL = 8
"""Bytes per voxel of one request's volumes together (int16 CT + two uint8 label maps: 4; a float64 CT: 8)."""

SUBTYPES = ("solid", "part-solid", "ground-glass")
"""Nodule subtypes; the index is HR-LDM's class label (0 solid, 1 part-solid, 2 ground-glass)."""

INPAINT_SAMPLERS = ("ddpm", "ddim")
DEFAULT_INPAINT_SAMPLER = "ddpm"
"""HR-LDM samples as the paper: DDPM, 1000 steps. DDIM is the fast option (deterministic, e.g. 50 steps)."""
DEFAULT_INPAINT_STEPS = {"ddpm": 1000, "ddim": 50}
"""Default steps per sampler."""


class UnsupportedOperation(NodsynthError):
    """The engine does not implement the requested operation."""


def subtype_index(subtype: str | int) -> int:
    """``'solid'|'part-solid'|'ground-glass'`` (or 0/1/2) -> 0/1/2; raises on anything else."""
    if isinstance(subtype, (int, np.integer)) and 0 <= int(subtype) < len(SUBTYPES):
        return int(subtype)
    key = str(subtype).strip().lower().replace("_", "-").replace(" ", "-")
    aliases = {"ggo": "ground-glass", "ggn": "ground-glass", "non-solid": "ground-glass",
               "partsolid": "part-solid", "part-solid": "part-solid", "mixed": "part-solid"}
    key = aliases.get(key, key)
    if key not in SUBTYPES:
        raise NodsynthError(f"unknown nodule subtype {subtype!r}; use one of {', '.join(SUBTYPES)}")
    return SUBTYPES.index(key)


@dataclass
class TwinRequest:
    """Generate a whole CT from an anatomy label map (MAISI ids, nodule = 23)."""

    labelmap: Volume
    output_size_ijk: Optional[tuple[int, int, int]] = None  # default: the label map's grid
    output_spacing_mm: Optional[tuple[float, float, float]] = None
    steps: int = 30
    seed: Optional[int] = 0
    initial_noise: Any = None  # optional torch/numpy latent noise, overrides the seed
    resample_to_valid: bool = False  # resample an invalid grid to one the model accepts, and back


@dataclass
class InpaintRequest:
    """Insert a nodule with the given mask, subtype and HU histogram into a CT."""

    ct: Volume
    nodule_mask: Volume  # 1 = nodule (optionally 2 = solid core), on the CT grid
    subtype: str | int = "solid"
    histogram: Optional[np.ndarray] = None  # 40 bins over -1000..400 HU; None: a real LIDC nodule's (library)
    lung_mask: Optional[Volume] = None
    steps: int = DEFAULT_INPAINT_STEPS[DEFAULT_INPAINT_SAMPLER]
    sampler: str = DEFAULT_INPAINT_SAMPLER  # "ddpm" or "ddim"
    seed: Optional[int] = 0


@dataclass
class EditRequest:
    """Re-render a CT after its label map was edited (e.g. a nodule shrunk or grown)."""

    ct: Volume
    labelmap: Volume
    edited_labelmap: Volume
    steps: int = 30
    seed: Optional[int] = 0
    margin_mm: float = 3.0  # voxels farther than this from the change stay bit-identical


@dataclass
class SynthesisResult:
    """Output of an engine call: named volumes (always ``"ct"``), timing and free-form info."""

    volumes: dict[str, Volume]
    engine: str
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ct(self) -> Volume:
        return self.volumes["ct"]

    def file_metadata(self) -> dict[str, str]:
        """Header entries for the written CT: the SHA-256 of every checkpoint used (``info["checkpoints"]``)."""
        from ..weights import checkpoint_metadata

        return checkpoint_metadata(self.engine, self.info.get("checkpoints") or {})


class Engine:
    """Base class: subclasses override the operations they support."""

    name = "engine"

    def twin(self, request: TwinRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        raise UnsupportedOperation(f"engine {self.name!r} cannot generate a whole CT (twin)")

    def inpaint(self, request: InpaintRequest, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
        raise UnsupportedOperation(f"engine {self.name!r} cannot inpaint nodules")

    def edit(self, request: EditRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        raise UnsupportedOperation(f"engine {self.name!r} cannot re-render edited label maps")

    def describe(self) -> dict[str, Any]:
        """What the engine is and whether it can run (weights found, device)."""
        return {"name": self.name}
