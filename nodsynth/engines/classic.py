"""``ClassicEngine``: model-free lesion edits, instant on CPU; the default without weights, and a baseline.

* ``edit``    re-renders a CT after its label map was edited (nodule shrunk/grown):
  :func:`nodsynth.render.edit.render_edit`.
* ``inpaint`` inserts a nodule with a given mask, subtype and HU histogram:
  :func:`nodsynth.render.insert.insert_nodule`.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from ..progress import CancelToken, ProgressFn
from .base import EditRequest, Engine, InpaintRequest, SynthesisResult


class ClassicEngine(Engine):
    name = "classic"

    def __init__(self, **_ignored_model_config) -> None:
        """Takes no configuration; model options (weights folder, device) are accepted and ignored."""

    def edit(self, request: EditRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        from ..render.edit import render_edit

        return _timed(render_edit, request, progress, cancel)

    def inpaint(self, request: InpaintRequest, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
        from ..render.insert import insert_nodule

        return _timed(insert_nodule, request, progress, cancel)

    def describe(self) -> dict:
        return {"name": self.name, "weights_required": False, "weights_found": True, "operations": ["edit", "inpaint"]}


def _timed(render: Callable[..., SynthesisResult], request, progress: Optional[ProgressFn],
           cancel: Optional[CancelToken]) -> SynthesisResult:
    """Run one model-free renderer and record its wall time (s) in the result."""
    start = time.perf_counter()
    result = render(request, progress=progress, cancel=cancel)
    result.seconds = time.perf_counter() - start
    return result
