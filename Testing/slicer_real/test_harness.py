"""The harness itself: Slicer's real files are the ones loaded, the real wrapper refuses what it
refuses in Slicer, and the stand-ins for Slicer's compiled parts are strict."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import pytest

import slicer
import slicer_harness
import vtk
from conftest import VERSION


def test_slicers_own_files_are_the_ones_imported():
    import slicer.parameterNodeWrapper as wrapper
    import slicer.ScriptedLoadableModule as scripted

    folder = slicer_harness.REFERENCE / VERSION / "slicer"
    for module in (slicer.util, wrapper, scripted):
        assert Path(module.__file__).resolve().is_relative_to(folder.resolve()), module.__file__
    assert vtk.vtkVersion.GetVTKVersion().startswith("9."), "the real VTK, not a stand-in"


def test_the_real_wrapper_refuses_a_node_union_without_none():
    """Issue 11 (1): the wrapper writes each field's default when it builds the node; ``None`` is the
    default of a node Union and a Union without None cannot hold it."""
    from slicer.parameterNodeWrapper import parameterNodeWrapper
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

    @parameterNodeWrapper
    class WithoutNone:
        lung: Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode]

    @parameterNodeWrapper
    class WithNone:
        lung: Optional[Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode]]

    class HarnessProbeLogic(ScriptedLoadableModuleLogic):
        pass

    with pytest.raises(TypeError, match="Unable to write value 'None'"):
        WithoutNone(HarnessProbeLogic().getParameterNode())
    node = WithNone(HarnessProbeLogic().getParameterNode())
    labelmap = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "lungs")
    node.lung = labelmap
    assert node.lung is labelmap
    slicer.mrmlScene.RemoveNode(labelmap)
    assert node.lung is None, "a reference to a removed node is dropped, as MRML does"


def test_update_volume_from_array_refuses_int64():
    """Issue 11 (9): Slicer's own updateVolumeFromArray on real VTK refuses 'long long'."""
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "v")
    with pytest.raises(RuntimeError, match="long long"):
        slicer.util.updateVolumeFromArray(node, np.zeros((2, 3, 4), dtype=np.int64))
    slicer.util.updateVolumeFromArray(node, np.arange(24, dtype=np.int32).reshape(2, 3, 4))
    assert slicer.util.arrayFromVolume(node).dtype == np.int32 and slicer.util.arrayFromVolume(node)[1, 2, 3] == 23


def test_stand_ins_are_strict():
    import ctk
    import qt

    button = qt.QPushButton("Run")
    with pytest.raises(AttributeError):
        button.enable = False  # a typo of 'enabled' would do nothing in Slicer
    with pytest.raises(AttributeError):
        button.noSuchMethod()
    with pytest.raises(ValueError, match="no signal"):
        button.connect("clickedd(bool)", lambda: None)
    with pytest.raises(AttributeError):
        ctk.ctkPathLineEdit().currentDirectory  # noqa: B018
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "s")
    with pytest.raises(AttributeError):
        node.GetSegmentById("x")
    segment_id = node.GetSegmentation().AddEmptySegment("", "Nodule", [1.0, 0.0, 0.0])
    segment = node.GetSegmentation().GetSegment(segment_id)
    with pytest.raises(TypeError):
        segment.GetTag("TerminologyEntry")  # bool GetTag(std::string, std::string&): two arguments
    assert slicer.mrmlScene.AddNewNodeByClass("vtkMRMLNoSuchNode") is None


def test_a_dialog_nobody_answers_is_an_error():
    """A confirmation the test did not expect would block Slicer: the stand-in fails instead."""
    with pytest.raises(AssertionError, match="unexpected message box"):
        slicer.util.confirmYesNoDisplay("Send the data?")
