"""How a CT is rendered for an augmented (edited) label map: a ROI edit of the original CT or a whole new twin.

* ``roi`` (default): :meth:`Engine.edit` regenerates only a box around the changed labels and keeps
  every voxel farther than the margin from the change bit-identical. The result is the *real* patient
  with one nodule resized: texture, noise, reconstruction kernel and anatomy stay those of the scan.
  It needs the original CT; seams are feathered over the margin. NodMAISI samples the box on the whole
  CT's timestep schedule, so the network sees the noise levels it was trained with.
* ``twin``: :meth:`Engine.twin` synthesises a whole new CT from the augmented label map, as the NodMAISI
  paper renders its augmented cases. Every voxel is synthetic (a new "patient" with this anatomy), the
  nodule and its surroundings come from one consistent sample with no seam, and no CT is needed; but
  nothing of the original scan survives, the grid must lie within MAISI's limits (or be resampled)
  and it costs a whole-volume sampling and decode. The model-free engine cannot do it.
"""
from __future__ import annotations

from typing import Optional

from ..engines.base import EditRequest, Engine, SynthesisResult, TwinRequest
from ..errors import InputError
from ..progress import CancelToken, ProgressFn
from ..volume import Volume, require_same_grid

RENDER_MODES = ("roi", "twin")
DEFAULT_RENDER_MODE = "roi"
DEFAULT_RENDER_STEPS = 30
"""Rectified-flow steps of a NodMAISI render (the published inference setting)."""


def check_render_mode(mode: str) -> str:
    """``mode`` lower-cased; :class:`InputError` unless it is one of :data:`RENDER_MODES`."""
    key = str(mode).strip().lower()
    if key not in RENDER_MODES:
        raise InputError(f"unknown render mode {mode!r}; use one of {', '.join(RENDER_MODES)}")
    return key


def render_edited(engine: Engine, edited: Volume, mode: str = DEFAULT_RENDER_MODE, ct: Optional[Volume] = None,
                  labelmap: Optional[Volume] = None, steps: int = DEFAULT_RENDER_STEPS, seed: Optional[int] = 0,
                  resample_to_valid: bool = False, progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """The CT for the ``edited`` label map (see the module docstring for the two modes).

    ``roi`` needs the original ``ct`` and its ``labelmap``; ``twin`` uses only ``edited``
    (``resample_to_valid`` as :class:`TwinRequest`).
    """
    key = check_render_mode(mode)
    if key == "twin":
        if ct is not None:
            require_same_grid(ct, edited, "CT", "edited label map")
        request = TwinRequest(edited, steps=int(steps), seed=seed, resample_to_valid=resample_to_valid)
        return engine.twin(request, progress=progress, cancel=cancel)
    if ct is None or labelmap is None:
        raise InputError("a ROI render edits the original CT: give the CT and its original label map "
                         "(CLI --ct), or render a whole new twin (--render twin)")
    request = EditRequest(ct=ct, labelmap=labelmap, edited_labelmap=edited, steps=int(steps), seed=seed)
    return engine.edit(request, progress=progress, cancel=cancel)
