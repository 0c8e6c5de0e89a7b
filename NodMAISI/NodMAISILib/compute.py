"""What the NodMAISI module computes, without Slicer: a whole-CT "digital twin" of a label map, or a
ROI-only re-synthesis of an edited label map into its original CT, through one engine interface."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nodsynth.cli.common import parse_triple
from nodsynth.engines import EditRequest, Engine, TwinRequest
from nodsynth.errors import InputError
from nodsynth.progress import CancelToken, ProgressFn
from nodsynth.volume import Volume


@dataclass(frozen=True)
class SynthesisOptions:
    """The module's synthesis parameters."""

    steps: int = 30
    seed: int = 0
    output_size_ijk: Optional[tuple[int, int, int]] = None  # None: the label map's grid
    output_spacing_mm: Optional[tuple[float, float, float]] = None
    resample_to_valid: bool = False  # resample an invalid grid to one MAISI accepts, and back
    roi_only: bool = False  # re-synthesise only the changed region of the original CT


def parse_size(text: str) -> Optional[tuple[int, int, int]]:
    """``""`` -> ``None`` (the input's size); ``"512,512,256"`` -> voxels along i, j, k."""
    if not (text or "").strip():
        return None
    values = parse_triple(text, "output size (voxels i,j,k)")
    if any(v != int(v) or v < 1 for v in values):
        raise InputError(f"output size must be three positive whole numbers of voxels, got {text!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def parse_spacing(text: str) -> Optional[tuple[float, float, float]]:
    """``""`` -> ``None`` (the input's spacing); ``"0.7,0.7,1.25"`` -> millimetres along i, j, k."""
    if not (text or "").strip():
        return None
    values = parse_triple(text, "output spacing (mm i,j,k)")
    if any(v <= 0 for v in values):
        raise InputError(f"output spacing must be positive millimetres, got {text!r}")
    return values


def synthesize(engine: Engine, labelmap: Volume, options: SynthesisOptions = SynthesisOptions(),
               original_ct: Optional[Volume] = None, original_labelmap: Optional[Volume] = None,
               progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Volume:
    """The synthesised CT: ``engine.edit`` of the original CT when ``roi_only``, else ``engine.twin``."""
    if options.roi_only:
        if original_ct is None or original_labelmap is None:
            raise InputError("'ROI only' needs the original CT and its original label map")
        request = EditRequest(ct=original_ct, labelmap=original_labelmap, edited_labelmap=labelmap,
                              steps=options.steps, seed=options.seed)
        return engine.edit(request, progress=progress, cancel=cancel).ct
    request = TwinRequest(labelmap=labelmap, output_size_ijk=options.output_size_ijk,
                          output_spacing_mm=options.output_spacing_mm, steps=options.steps, seed=options.seed,
                          resample_to_valid=options.resample_to_valid)
    return engine.twin(request, progress=progress, cancel=cancel).ct
