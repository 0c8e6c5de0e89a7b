"""The Logic methods used headless, each with a real parameter node, on the demo patient."""
from __future__ import annotations

import numpy as np
import pytest

import slicer
import vtk
from nodsynth.histogram import BIN_CENTERS_HU
from nodsynth.labels import LOBES, NODULE

DICE_REQUIRED = 0.9


def rigid(angle_deg: float, axis: int, shift) -> vtk.vtkMatrix4x4:
    a = np.deg2rad(angle_deg)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    m[:3, 3] = shift
    return slicer.util.vtkMatrixFromArray(m)


def transform(name: str, matrix: vtk.vtkMatrix4x4):
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformToParent(matrix)
    return node


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_pseudonoduleseg_segments_every_demo_nodule_headless_with_a_real_parameter_node(patient):
    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.volumes import node_from_volume
    from PseudoNoduleSeg import PseudoNoduleSegLogic

    ct = node_from_volume(patient.ct, "CT")
    ct.SetAndObserveTransformNodeID(transform("volume move", rigid(10, 1, (3.0, 4.0, -5.0))).GetID())
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    points.SetAndObserveTransformNodeID(transform("points move", rigid(-35, 0, (-7.0, 12.0, 0.0))).GetID())
    for n, nodule in enumerate(patient.nodules):
        add_control_point_lps(points, ct, nodule.center_lps, f"Nodule {n + 1}")
    labels = node_from_volume(patient.labelmap, "labels", label=True, like=ct)
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Measurements")
    logic = PseudoNoduleSegLogic()
    parameters = logic.getParameterNode()
    parameters.lungVolume, parameters.restrictToLung = labels, True
    rows = logic.segmentPoints(ct, points, segmentation, parameters, tableNode=table)

    assert [r["nodule"] for r in rows] == [f"Nodule {n + 1}" for n in range(len(patient.nodules))]
    assert [r["lobe_name"] for r in rows] == [LOBES[n.lobe] for n in patient.nodules]
    assert table.GetNumberOfRows() == len(patient.nodules)
    assert table.GetColumnUnitLabel("volume_mm3") == "mm3" and table.GetColumnUnitLabel("centroid_lps_L") == "mm"
    volumes = slicer.util.arrayFromTableColumn(table, "volume_mm3")
    assert np.allclose(volumes, [r["volume_mm3"] for r in rows])
    assert segmentation.GetTransformNodeID() == ct.GetTransformNodeID()
    for n, nodule in enumerate(patient.nodules):
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, logic.segmentId(points, n), ct) > 0
        assert dice(mask, nodule.mask.array > 0) >= DICE_REQUIRED, nodule.kind


def test_pseudonoduleseg_refuses_a_click_on_parenchyma_unless_the_parameter_keeps_it(patient):
    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.volumes import node_from_volume
    from PseudoNoduleSeg import PseudoNoduleSegLogic
    from slicer_fixtures import parenchyma_point
    from nodsynth.errors import InputError

    ct = node_from_volume(patient.ct, "CT")
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    add_control_point_lps(points, ct, parenchyma_point(patient.ct), "Nodule 1")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
    logic = PseudoNoduleSegLogic()
    parameters = logic.getParameterNode()
    with pytest.raises(InputError, match="no nodule at this point"):
        logic.segmentPoints(ct, points, segmentation, parameters)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0
    parameters.keepLowContrast = True
    (row,) = logic.segmentPoints(ct, points, segmentation, parameters)
    assert row["nodule"] == "Nodule 1" and segmentation.GetSegmentation().GetNumberOfSegments() == 1


def test_lesionaugment_lists_resizes_and_renders_headless(patient):
    from LesionAugment import LesionAugmentLogic
    from NodMAISICommon.volumes import node_from_volume

    ct = node_from_volume(patient.ct, "CT")
    labels = node_from_volume(patient.labelmap, "labels", label=True)
    logic = LesionAugmentLogic()
    assert type(logic.getParameterNode()).__name__ == "LesionAugmentParameterNode"
    listed = logic.listNodules(labels)
    assert listed.GetNumberOfRows() == len(patient.nodules)
    output, contours, stats = logic.resizeNodule(labels, 1, [75.0, 50.0])
    achieved = slicer.util.arrayFromTableColumn(stats, "achieved_percent")
    assert np.all(np.abs(achieved - slicer.util.arrayFromTableColumn(stats, "step_percent")) <= 1.0)
    assert contours.GetSegmentation().GetNumberOfSegments() == 2
    rendered = logic.renderNode(ct, labels, output, "classic")
    after = slicer.util.arrayFromVolume(rendered)
    assert after.shape == patient.ct.array.shape and np.any(after != patient.ct.array)


def test_a_label_map_is_built_from_segments_whose_terminology_says_nodule(patient):
    """``vtkSegment::GetTag`` gives the terminology through a ``std::string&`` (a vtk.reference)."""
    from LesionAugment import LesionAugmentLogic
    from NodMAISICommon.segments import write_segment
    from NodMAISICommon.terminology import terminology_entry, ANATOMICAL_STRUCTURE, LUNG
    from NodMAISICommon.volumes import node_from_volume

    ct = node_from_volume(patient.ct, "CT")
    organs = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    lobe = patient.labelmap.with_array((patient.labelmap.array == 30).astype(np.uint8))
    write_segment(organs, ct, lobe, "right lung upper lobe", terminology=terminology_entry(ANATOMICAL_STRUCTURE, LUNG))
    nodule = patient.nodules[0].mask
    write_segment(organs, ct, nodule, "Nodule 1")
    labelmap = slicer.util.arrayFromVolume(LesionAugmentLogic().buildLabelmap(ct, organs))
    painted, drawn = labelmap == NODULE, nodule.array > 0
    assert painted[drawn].all(), "every voxel of the 'Nodule' segment is label 23"
    # expanded by 2 mm into labelled voxels, as the label maps NodMAISI's ControlNet was trained on
    from scipy import ndimage

    spacing_kji = patient.ct.spacing[::-1]
    within_2mm = ndimage.distance_transform_edt(~drawn, sampling=spacing_kji) <= 2.0
    assert painted.sum() > drawn.sum() and not (painted & ~within_2mm).any()
    assert (labelmap == 30).sum() == int(((lobe.array > 0) & ~painted).sum())


def test_nodmaisi_roi_edit_headless_and_the_contour_node_is_found_by_class(patient):
    """Issue 11 (11): a table called 'Nodule contour' must not be taken for the contour segmentation."""
    from nodsynth.augment import resize_nodule
    from NodMAISI import NodMAISILogic
    from NodMAISICommon.volumes import node_from_volume
    from NodMAISILib.compute import SynthesisOptions

    ct = node_from_volume(patient.ct, "CT")
    labels = node_from_volume(patient.labelmap, "labels", label=True)
    edited = node_from_volume(resize_nodule(patient.labelmap, "all", 50.0).labelmap, "edited", label=True)
    impostor = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Nodule contour")
    output = NodMAISILogic().synthesizeNode(edited, "classic", options=SynthesisOptions(roi_only=True),
                                            originalNode=ct, originalLabelmapNode=labels)
    assert slicer.util.arrayFromVolume(output).shape == patient.ct.array.shape
    contours = [n for n in slicer.util.getNodesByClass("vtkMRMLSegmentationNode") if n.GetName() == "Nodule contour"]
    assert len(contours) == 1 and impostor.GetNumberOfColumns() == 0


def test_hrldminpaint_inserts_a_nodule_headless_and_plots_its_histogram_over_hu(patient):
    """Issue 11 (4): the histogram's bars stand at their HU bin centres (PlotTypeBar would put them at 0..39)."""
    from HRLDMInpaint import HRLDMInpaintLogic
    from NodMAISICommon.volumes import node_from_volume

    logic = HRLDMInpaintLogic()
    p = logic.getParameterNode()
    p.inputVolume = node_from_volume(patient.ct, "CT")
    p.lungVolume = node_from_volume(patient.labelmap, "labels", label=True)
    p.targetPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "centre")
    p.engine = "classic"
    logic.sampleLocation(p)
    output, segmentation = logic.inpaintNode(p)
    inside = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "InsertedNodule", p.inputVolume) > 0
    assert inside.any()
    assert slicer.util.arrayFromVolume(output)[inside].mean() > patient.ct.array[inside].mean() + 200.0

    logic.showHistogram(logic.histogram(p))
    [chart] = slicer.modules.plots.logic().shown_charts
    series = chart.GetPlotSeriesNode()
    assert np.allclose(series.plotted_x(), BIN_CENTERS_HU)
    assert chart.GetXAxisTitle() == "HU"


def test_64_bit_label_maps_become_nodes_without_losing_values(patient):
    """Issue 11 (9): int64 arrays are cast at the boundary (Slicer refuses 'long long')."""
    from NodMAISICommon.volumes import node_from_volume, volume_from_node

    wide = patient.labelmap.with_array(patient.labelmap.array.astype(np.int64))
    node = node_from_volume(wide, "wide labels", label=True)
    back = volume_from_node(node)
    assert back.array.dtype == np.int32 and np.array_equal(back.array, patient.labelmap.array)
    too_wide = patient.labelmap.with_array(np.full(patient.labelmap.shape_kji, 2 ** 40, dtype=np.int64))
    with pytest.raises(Exception, match="do not fit"):
        node_from_volume(too_wide, "overflow", label=True)


def test_lesionaugment_renders_a_roi_edit_or_refuses_a_twin_the_model_free_engine_cannot_make(patient):
    """Issue 15 (2): the Render choice; a whole-CT twin needs NodMAISI, said before anything runs."""
    from LesionAugment import LesionAugmentLogic
    from NodMAISICommon.volumes import node_from_volume

    logic = LesionAugmentLogic()
    p = logic.getParameterNode()
    assert p.renderMode == "roi" and p.method == "distance"
    p.method = "paper"  # the NodMAISI paper's closest-mask rule is offered
    ct = node_from_volume(patient.ct, "CT")
    labels = node_from_volume(patient.labelmap, "labels", label=True)
    edited, _, _ = logic.resizeNodule(labels, 1, [60.0], method=p.method)
    roi = slicer.util.arrayFromVolume(logic.renderNode(ct, labels, edited, "classic", mode="roi"))
    assert roi.shape == patient.ct.array.shape and np.any(roi != patient.ct.array)
    with pytest.raises(Exception, match="cannot generate a whole CT"):
        logic.renderNode(ct, labels, edited, "classic", mode="twin")


def test_hrldminpaint_defaults_are_the_published_sampler_and_a_real_nodules_histogram(patient):
    """Issue 15 (5): DDPM-1000 and a library histogram by default; picking DDIM gives its 50 steps."""
    from HRLDMInpaint import HRLDMInpaintLogic
    from nodsynth.histogram_library import library_histogram
    from NodMAISICommon.volumes import node_from_volume

    import modules as harness_modules

    widget = harness_modules.create_widget("HRLDMInpaint")
    try:
        p = widget._parameterNode
        assert (p.sampler, p.steps, p.histogramSource) == ("ddpm", 1000, "library")
        widget.ui.samplerComboBox.currentText = "ddim"
        assert p.sampler == "ddim" and p.steps == 50 and widget.ui.stepsSpinBox.value == 50
        widget.ui.samplerComboBox.currentText = "ddpm"
        assert p.steps == 1000
        p.inputVolume = node_from_volume(patient.ct, "CT")
        p.subtype, p.diameterMm, p.seed = "ground-glass", 12.0, 4
        expected = library_histogram("ground-glass", 12.0, 4)[0]
        assert np.allclose(HRLDMInpaintLogic().histogram(p), expected)
    finally:
        harness_modules.unload(widget)
