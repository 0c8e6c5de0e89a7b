"""The longest GUI-thread stall of handing a job to the job process, for every module, with a
512 x 512 x 256 CT (the demo patient padded with air) and its label maps: from the click until the
job is submitted (inputs handed over). Shared by ``test_jobs.py`` and
``Testing/benchmarks/bench_gui_stall.py``; runs under the Slicer harness."""
from __future__ import annotations

import contextlib
import gc
from typing import Callable

import numpy as np

import modules as harness_modules
from standin_qt import EVENT_LOOP

BIG_SHAPE_KJI = (256, 512, 512)


@contextlib.contextmanager
def without_gc_pauses():
    """Measure our code, not the interpreter's cyclic garbage collector: its pauses scale with everything
    else the process holds (here the torch networks earlier tests built), whatever runs when they hit."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def padded(volume, fill: int):
    """``volume`` in the corner of a 512 x 512 x 256 grid filled with ``fill`` (same spacing and origin)."""
    from nodsynth.volume import Volume

    k, j, i = volume.shape_kji
    big = np.full(BIG_SHAPE_KJI, fill, dtype=volume.array.dtype)
    big[:k, :j, :i] = volume.array
    return Volume(big, volume.spacing, volume.origin, volume.direction)


def big_volumes(patient) -> dict:
    """The CT and its label map on the 512 x 512 x 256 grid."""
    return {"ct": padded(patient.ct, -1000), "labels": padded(patient.labelmap, 0)}


def big_nodes(volumes: dict) -> dict:
    """CT, label map and a second label map (the 'resized' one) as nodes of the scene."""
    from NodMAISICommon.volumes import node_from_volume

    return {"ct": node_from_volume(volumes["ct"], "CT 512"),
            "labels": node_from_volume(volumes["labels"], "labels 512", label=True),
            "edited": node_from_volume(volumes["labels"], "edited labels 512", label=True)}


def local_cpu_engine() -> None:
    import qt

    for key, value in (("Location", "local"), ("Device", "cpu")):
        qt.QSettings().setValue(f"NodMAISI/{key}", value)


def _pseudonoduleseg(widget, nodes, patient) -> Callable[[], None]:
    from NodMAISICommon.markups import add_control_point_lps

    widget._parameterNode.inputVolume = nodes["ct"]
    return lambda: add_control_point_lps(widget._parameterNode.pointList, nodes["ct"], patient.nodules[0].center_lps)


def _lesionaugment_resize(widget, nodes, patient) -> Callable[[], None]:
    p = widget._parameterNode
    p.inputLabelmap, p.noduleId, p.targetPercent = nodes["labels"], 1, 60.0
    return widget.ui.applyButton.click


def _lesionaugment_render(widget, nodes, patient) -> Callable[[], None]:
    p = widget._parameterNode
    p.inputVolume, p.inputLabelmap, p.outputLabelmap, p.engine = nodes["ct"], nodes["labels"], nodes["edited"], "classic"
    return widget.ui.renderButton.click


def _nodmaisi_roi(widget, nodes, patient) -> Callable[[], None]:
    p = widget._parameterNode
    p.inputLabelmap, p.originalVolume, p.originalLabelmap = nodes["edited"], nodes["ct"], nodes["labels"]
    p.roiOnly, p.engine, p.steps = True, "classic", 2
    return widget.ui.applyButton.click


def _hrldminpaint(widget, nodes, patient) -> Callable[[], None]:
    from NodMAISICommon.markups import add_control_point_lps

    p = widget._parameterNode
    p.inputVolume, p.lungVolume, p.engine, p.diameterMm = nodes["ct"], nodes["labels"], "classic", 8.0
    p.targetPoints.RemoveAllControlPoints()
    add_control_point_lps(p.targetPoints, nodes["ct"], patient.nodules[0].center_lps, "Nodule centre")
    return widget.ui.applyButton.click


CASES = {"PseudoNoduleSeg (click a nodule)": ("PseudoNoduleSeg", _pseudonoduleseg),
         "LesionAugment (resize)": ("LesionAugment", _lesionaugment_resize),
         "LesionAugment (render)": ("LesionAugment", _lesionaugment_render),
         "NodMAISI (ROI edit: CT + 2 label maps)": ("NodMAISI", _nodmaisi_roi),
         "HRLDMInpaint (inpaint)": ("HRLDMInpaint", _hrldminpaint)}


def handover_stall(case: str, patient, volumes: dict) -> tuple:
    """``(CPU s, wall s)``: the longest GUI-thread stall from the action of ``case`` until its job is
    submitted to the job process; the job is then discarded."""
    import standin_ctk

    module, prepare = CASES[case]
    local_cpu_engine()
    nodes = big_nodes(volumes)
    widget = harness_modules.create_widget(module)
    try:
        start = prepare(widget, nodes, patient)
        EVENT_LOOP.callback_cpu_seconds.clear()
        EVENT_LOOP.callback_seconds.clear()
        with without_gc_pauses():
            EVENT_LOOP.timed(start)
            assert widget.runner.running, f"{case}: no job started {standin_ctk.ctkMessageBox.SHOWN}"
            assert EVENT_LOOP.run_until(lambda: widget.runner.job is not None, 120.0), f"{case}: never submitted"
        return max(EVENT_LOOP.callback_cpu_seconds), max(EVENT_LOOP.callback_seconds)
    finally:
        widget.runner.discard()
        harness_modules.unload(widget)
