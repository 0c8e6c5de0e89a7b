"""The module widgets' life in Slicer: a job still running when the user leaves the module finishes into
the module's parameter node; closing the scene ends a job (even one whose result is ready but not yet
shown) and nothing is written into the removed nodes; unloading stops the timer and the job process;
only the button that started a job cancels it."""
from __future__ import annotations

import time

import numpy as np
import pytest

import modules as harness_modules
import slicer
from standin_qt import EVENT_LOOP


def resize_widget(patient):
    from NodMAISICommon.volumes import node_from_volume

    widget = harness_modules.create_widget("LesionAugment")
    p = widget._parameterNode
    p.inputLabelmap = node_from_volume(patient.labelmap, "labels", label=True)
    p.noduleId, p.targetPercent = 1, 70.0
    return widget, p


def test_a_job_running_when_the_user_leaves_the_module_finishes_into_its_node(patient):
    widget, p = resize_widget(patient)
    try:
        widget.ui.applyButton.click()
        harness_modules.exit(widget)
        assert EVENT_LOOP.run_until(lambda: not widget.runner.running, 120.0)
        assert p.outputLabelmap is not None and p.statsTable.GetNumberOfRows() > 0
        harness_modules.enter(widget)
        assert widget._parameterNode.outputLabelmap is p.outputLabelmap
    finally:
        harness_modules.unload(widget)


def test_a_result_ready_when_the_scene_closes_is_never_written(patient):
    """Issue 11 (5): the job finished in its process but its result was not shown yet; the scene closes
    (the module stays open, so a new parameter node exists at once)."""
    widget, p = resize_widget(patient)
    try:
        widget.ui.applyButton.click()
        job = widget.runner.job
        start = time.monotonic()
        while job.poll().state != "done" and time.monotonic() - start < 120.0:
            time.sleep(0.05)  # the job ends in its process; the GUI timer does not run meanwhile
        assert job.poll().state == "done"
        slicer.mrmlScene.Clear(0)
        EVENT_LOOP.run_for(0.5)
        assert not widget.runner.running
        assert slicer.util.getNodesByClass("vtkMRMLLabelMapVolumeNode") == []
        assert slicer.util.getNodesByClass("vtkMRMLTableNode") == []
        assert widget._parameterNode is not None and widget._parameterNode.outputLabelmap is None
    finally:
        harness_modules.unload(widget)


def test_unloading_the_module_stops_its_timer_and_its_job_process(patient):
    widget, _ = resize_widget(patient)
    widget.runner.start(widget.ui.applyButton, "job_targets:stubborn", (30.0,), lambda result: None)
    host = widget.runner.host
    assert host.alive
    harness_modules.unload(widget)
    assert not widget.runner._timer.isActive() and not host.alive
    assert widget.runner._timer not in EVENT_LOOP.timers


def test_only_the_button_that_started_a_job_cancels_it(patient):
    widget = harness_modules.create_widget("LesionAugment")
    try:
        resize, render = widget.ui.applyButton, widget.ui.renderButton
        assert not widget.toggleCancel(render), "nothing running: the click may start a job"
        widget.runner.start(resize, "job_targets:stubborn", (30.0,), lambda result: None)
        assert widget.toggleCancel(render) and widget.runner.job.cancel_requested_s is None
        main_window = slicer.util.mainWindow()
        assert main_window.statusBar().currentMessage() == "Another job is running; wait for it or cancel it first."
        assert widget.toggleCancel(resize) and widget.runner.job.cancel_requested_s is not None
    finally:
        harness_modules.unload(widget)


def test_volume_nodes_round_trip_an_oblique_geometry(patient):
    from NodMAISICommon.volumes import node_from_volume, volume_from_node

    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    oblique = patient.ct.crop((0, 0, 0), (8, 16, 16))
    oblique = oblique.__class__(oblique.array, oblique.spacing, oblique.origin, rotation)
    back = volume_from_node(node_from_volume(oblique, "oblique"))
    assert np.array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.direction, rotation, atol=1e-12)
    np.testing.assert_allclose(back.origin, oblique.origin)
    np.testing.assert_allclose(back.spacing, oblique.spacing)


def test_a_lung_input_from_a_segmentation_is_the_union_of_its_segments(patient):
    from NodMAISICommon.segments import region_from_node, write_segment
    from NodMAISICommon.volumes import node_from_volume

    ct = node_from_volume(patient.ct, "CT")
    lungs = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Lungs")
    for name, ids in (("left lung", (28, 29)), ("right lung", (30, 31, 32))):
        write_segment(lungs, ct, patient.labelmap.with_array(np.isin(patient.labelmap.array, ids).astype(np.uint8)), name)
    region = region_from_node(lungs, ct)
    assert np.array_equal(region.array > 0, np.isin(patient.labelmap.array, (28, 29, 30, 31, 32)))
    empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Empty")
    with pytest.raises(Exception, match="has no segments"):
        region_from_node(empty, ct)
