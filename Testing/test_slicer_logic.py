"""The Slicer-side glue and the PseudoNoduleSeg Logic, run against a small test double of the Slicer
Python API (no Slicer here).

The double implements only the calls our code makes, with the semantics documented by Slicer
(``slicer.util`` array helpers, ``vtkMRMLTransformNode.GetMatrixTransformBetweenNodes``, markups
control points stored in the node's local frame, segment binary label maps in a reference volume's
geometry, table columns with unit labels). It lives in this file only and is removed after each test.
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_DICE_REQUIRED
from nodsynth.labels import LOBES

from slicer_fixtures import demo_patient

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------- the test double
class Matrix4x4:
    """vtk.vtkMatrix4x4: GetElement / SetElement over a 4x4 identity."""

    def __init__(self):
        self.m = np.eye(4)

    def GetElement(self, r, c):
        return float(self.m[r, c])

    def SetElement(self, r, c, v):
        self.m[r, c] = v


class DataArray:
    """vtkDoubleArray / vtkStringArray: a named column of values."""

    def __init__(self):
        self.name, self.values = "", []

    def SetName(self, name):
        self.name = name

    def GetName(self):
        return self.name

    def InsertNextValue(self, value):
        self.values.append(value)


class Node:
    _count = 0

    def __init__(self, class_name, name=""):
        Node._count += 1
        self.class_name, self.name, self.id = class_name, name, f"{class_name}{Node._count}"
        self.parent_transform, self.attributes = None, {}

    def GetID(self):
        return self.id

    def GetName(self):
        return self.name

    def IsA(self, class_name):
        return class_name == self.class_name or (class_name == "vtkMRMLScalarVolumeNode"
                                                 and self.class_name == "vtkMRMLLabelMapVolumeNode")

    def GetParentTransformNode(self):
        return self.parent_transform

    def GetTransformNodeID(self):
        return self.parent_transform.GetID() if self.parent_transform else None

    def SetAndObserveTransformNodeID(self, node_id):
        self.parent_transform = SCENE.nodes.get(node_id) if node_id else None

    def GetAttribute(self, key):
        return self.attributes.get(key)

    def SetAttribute(self, key, value):
        self.attributes[key] = value

    def Modified(self):
        pass


class TransformNode(Node):
    def __init__(self, name="", to_parent=np.eye(4)):
        super().__init__("vtkMRMLLinearTransformNode", name)
        self.to_parent = np.asarray(to_parent, float)

    def to_world(self):
        parent = self.parent_transform.to_world() if self.parent_transform else np.eye(4)
        return parent @ self.to_parent

    @staticmethod
    def GetMatrixTransformBetweenNodes(source, target, matrix):
        """source frame -> target frame (None = world), linear transforms only."""
        src = source.to_world() if source else np.eye(4)
        dst = target.to_world() if target else np.eye(4)
        matrix.m = np.linalg.inv(dst) @ src
        return True


class VolumeNode(Node):
    def __init__(self, class_name, name, array, ijk_to_ras):
        super().__init__(class_name, name)
        self.array, self.ijk_to_ras = array, np.asarray(ijk_to_ras, float)

    def GetImageData(self):
        return self.array

    def GetIJKToRASMatrix(self, matrix):
        matrix.m = self.ijk_to_ras.copy()

    def SetIJKToRASMatrix(self, matrix):
        self.ijk_to_ras = matrix.m.copy()


class MarkupsNode(Node):
    PositionDefined, PointPositionDefinedEvent = 2, 1001

    def __init__(self, name=""):
        super().__init__("vtkMRMLMarkupsFiducialNode", name)
        self.points = []  # (id, label, local RAS)

    def AddControlPoint(self, vector, label=""):
        self.points.append((str(len(self.points) + 100), label, np.array(vector.values, float)))
        return len(self.points) - 1

    def GetNumberOfControlPoints(self):
        return len(self.points)

    def GetNthControlPointPositionStatus(self, i):
        return self.PositionDefined

    def GetNthControlPointPosition(self, i, out):
        out[:] = self.points[i][2].tolist()

    def GetNthControlPointID(self, i):
        return self.points[i][0]

    def GetNthControlPointLabel(self, i):
        return self.points[i][1]


class Segment:
    def __init__(self, name, color):
        self.name, self.color, self.tags, self.mask = name, color, {}, None

    def SetName(self, name):
        self.name = name

    def GetName(self):
        return self.name

    def SetTag(self, key, value):
        self.tags[key] = value

    def GetTag(self, key):
        return self.tags.get(key, "")


class Segmentation:
    def __init__(self):
        self.segments = {}

    def AddEmptySegment(self, segment_id, name, color):
        segment_id = segment_id or f"Segment_{len(self.segments) + 1}"
        self.segments[segment_id] = Segment(name, color)
        return segment_id

    def GetSegment(self, segment_id):
        return self.segments.get(segment_id)

    def GetNumberOfSegments(self):
        return len(self.segments)

    def GetNthSegmentID(self, i):
        return list(self.segments)[i]


class SegmentationNode(Node):
    def __init__(self, name=""):
        super().__init__("vtkMRMLSegmentationNode", name)
        self.segmentation, self.reference, self.display = Segmentation(), None, None

    def GetSegmentation(self):
        return self.segmentation

    def SetReferenceImageGeometryParameterFromVolumeNode(self, node):
        self.reference = node

    def GetDisplayNode(self):
        return self.display

    def CreateDefaultDisplayNodes(self):
        self.display = object()


class TableNode(Node):
    def __init__(self, name=""):
        super().__init__("vtkMRMLTableNode", name)
        self.columns, self.units, self.descriptions = [], {}, {}

    def RemoveAllColumns(self):
        self.columns = []

    def AddColumn(self, array):
        self.columns.append(array)

    def SetColumnUnitLabel(self, name, unit):
        self.units[name] = unit

    def SetColumnDescription(self, name, text):
        self.descriptions[name] = text

    def GetNumberOfRows(self):
        return len(self.columns[0].values) if self.columns else 0


class Scene:
    def __init__(self):
        self.nodes = {}

    def add(self, node):
        self.nodes[node.GetID()] = node
        return node

    def AddNewNodeByClass(self, class_name, name=""):
        kinds = {"vtkMRMLMarkupsFiducialNode": MarkupsNode, "vtkMRMLSegmentationNode": SegmentationNode,
                 "vtkMRMLTableNode": TableNode, "vtkMRMLLinearTransformNode": TransformNode}
        return self.add(kinds[class_name](name))


SCENE = Scene()


def _matrix_from_array(array):
    matrix = Matrix4x4()
    matrix.m = np.array(array, float)
    return matrix


def _add_volume(array, ijkToRAS=None, name=None, nodeClassName=None):
    return SCENE.add(VolumeNode(nodeClassName or "vtkMRMLScalarVolumeNode", name or "Volume", np.array(array),
                                np.eye(4) if ijkToRAS is None else ijkToRAS))


def _update_volume(node, array):
    node.array = np.array(array)


def _write_segment_array(narray, segmentation_node, segment_id, reference):
    assert narray.shape == reference.array.shape, "the array must have the reference volume's shape"
    segmentation_node.segmentation.segments[segment_id].mask = (np.asarray(narray) > 0).astype(np.uint8)


def _read_segment_array(segmentation_node, segment_id, reference):
    return segmentation_node.segmentation.segments[segment_id].mask.copy()


def build_double() -> dict[str, types.ModuleType]:
    slicer = types.ModuleType("slicer")
    util = types.ModuleType("slicer.util")
    util.arrayFromVolume = lambda node: node.array
    util.arrayFromVTKMatrix = lambda matrix: matrix.m.copy()
    util.vtkMatrixFromArray = _matrix_from_array
    util.addVolumeFromArray = _add_volume
    util.updateVolumeFromArray = _update_volume
    util.updateSegmentBinaryLabelmapFromArray = _write_segment_array
    util.arrayFromSegmentBinaryLabelmap = _read_segment_array
    util.VTKObservationMixin = type("VTKObservationMixin", (), {})
    slicer.util = util
    slicer.mrmlScene = SCENE
    slicer.vtkMRMLTransformNode = TransformNode
    slicer.vtkMRMLMarkupsNode = MarkupsNode
    slicer.vtkSegment = type("vtkSegment", (), {"GetTerminologyEntryTagName": staticmethod(lambda: "TerminologyEntry")})
    for name in ("vtkMRMLLabelMapVolumeNode", "vtkMRMLMarkupsFiducialNode", "vtkMRMLScalarVolumeNode",
                 "vtkMRMLSegmentationNode", "vtkMRMLTableNode"):
        setattr(slicer, name, type(name, (), {}))
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    wrapper.Choice = wrapper.WithinRange = lambda *args: args
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (), {"__init__": lambda self, *a: None}))
    slicer.parameterNodeWrapper, slicer.ScriptedLoadableModule = wrapper, scripted
    vtk = types.ModuleType("vtk")
    vtk.vtkMatrix4x4 = Matrix4x4
    vtk.vtkDoubleArray = vtk.vtkStringArray = DataArray
    vtk.vtkVector3d = lambda *v: types.SimpleNamespace(values=v)
    vtk.vtkCommand = types.SimpleNamespace(ModifiedEvent=33)
    return {"slicer": slicer, "slicer.util": util, "slicer.parameterNodeWrapper": wrapper,
            "slicer.ScriptedLoadableModule": scripted, "vtk": vtk, "qt": types.ModuleType("qt"),
            "ctk": types.ModuleType("ctk")}


@pytest.fixture
def glue(monkeypatch):
    """NodMAISICommon's Slicer-side modules imported against the double (and forgotten afterwards)."""
    for name, module in build_double().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(REPO / "PseudoNoduleSeg"))
    names = ("volumes", "segments", "markups", "tablenodes")
    for name in names + ("qtjob", "enginepanel", "widgetbase", "dependencies"):
        monkeypatch.delitem(sys.modules, f"NodMAISICommon.{name}", raising=False)
    monkeypatch.delitem(sys.modules, "PseudoNoduleSeg", raising=False)
    SCENE.nodes.clear()
    yield types.SimpleNamespace(**{n: importlib.import_module(f"NodMAISICommon.{n}") for n in names})
    for name in names + ("qtjob", "enginepanel", "widgetbase", "dependencies"):
        sys.modules.pop(f"NodMAISICommon.{name}", None)
    sys.modules.pop("PseudoNoduleSeg", None)


def rigid(angle_deg, axis, shift):
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    m[:3, 3] = shift
    return m


@pytest.fixture(scope="module")
def patient():
    return demo_patient()


# ------------------------------------------------------------------------------------------------ tests
def test_volume_node_round_trip_keeps_voxels_and_lps_geometry(glue, patient):
    node = glue.volumes.node_from_volume(patient.ct, "CT")
    back = glue.volumes.volume_from_node(node)
    assert np.array_equal(back.array, patient.ct.array) and back.array is not node.array
    np.testing.assert_allclose(back.origin, patient.ct.origin)
    np.testing.assert_allclose(back.spacing, patient.ct.spacing)
    np.testing.assert_allclose(back.direction, patient.ct.direction, atol=1e-12)
    with pytest.raises(Exception, match="no CT selected"):
        glue.volumes.volume_from_node(None, "CT")


def test_points_under_different_parent_transforms_reach_the_nodule(glue, patient):
    """Volume and markups under different transforms: the world click on a nodule is that nodule."""
    volume_node = glue.volumes.node_from_volume(patient.ct, "CT")
    volume_node.parent_transform = SCENE.add(TransformNode("volume move", rigid(20, 2, (10.0, -5.0, 30.0))))
    markups = SCENE.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    markups.parent_transform = SCENE.add(TransformNode("points move", rigid(-35, 0, (-7.0, 12.0, 0.0))))
    centre = patient.nodules[0].center_lps
    glue.markups.add_control_point_lps(markups, volume_node, centre, "Nodule 1")
    # where the point is in the world vs where the nodule centre is in the world
    local = markups.points[0][2]
    world_click = markups.parent_transform.to_world() @ np.append(local, 1.0)
    world_centre = volume_node.parent_transform.to_world() @ np.append(centre * [-1, -1, 1], 1.0)
    np.testing.assert_allclose(world_click, world_centre, atol=1e-9)
    np.testing.assert_allclose(glue.markups.control_points_lps(markups, volume_node), [centre], atol=1e-9)


def test_segment_and_table_nodes(glue, patient):
    volume_node = glue.volumes.node_from_volume(patient.ct, "CT")
    segmentation = SCENE.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
    glue.segments.prepare_segmentation(segmentation, volume_node)
    mask = patient.nodules[1].mask
    segment_id = glue.segments.write_segment(segmentation, volume_node, mask, "Nodule 2", segmentId="N2")
    assert glue.segments.is_nodule_segment(segmentation.GetSegmentation().GetSegment(segment_id))
    assert np.array_equal(glue.segments.read_segment(segmentation, "N2", volume_node).array, mask.array)
    with pytest.raises(Exception, match="not on the same voxel grid"):
        glue.segments.write_segment(segmentation, volume_node, mask.crop((0, 0, 0), (10, 10, 10)), "bad")
    table = SCENE.AddNewNodeByClass("vtkMRMLTableNode", "t")
    glue.tablenodes.fill_table(table, [{"nodule": "Nodule 2", "volume_mm3": 12.5}, {"nodule": "Nodule 3"}])
    assert table.GetNumberOfRows() == 2 and table.units == {"volume_mm3": "mm3"}
    assert np.isnan(table.columns[1].values[1])


def test_lung_input_from_a_segmentation_is_the_union_of_its_segments(glue, patient):
    volume_node = glue.volumes.node_from_volume(patient.ct, "CT")
    lungs = SCENE.AddNewNodeByClass("vtkMRMLSegmentationNode", "Lungs")
    left = patient.labelmap.with_array(np.isin(patient.labelmap.array, (28, 29)).astype(np.uint8))
    right = patient.labelmap.with_array(np.isin(patient.labelmap.array, (30, 31, 32)).astype(np.uint8))
    glue.segments.write_segment(lungs, volume_node, left, "left lung")
    glue.segments.write_segment(lungs, volume_node, right, "right lung")
    region = glue.segments.region_from_node(lungs, volume_node)
    assert np.array_equal(region.array > 0, np.isin(patient.labelmap.array, (28, 29, 30, 31, 32)))
    label_node = glue.volumes.node_from_volume(patient.labelmap, "labels", label=True)
    assert np.array_equal(glue.segments.region_from_node(label_node, volume_node).array, patient.labelmap.array)
    empty = SCENE.AddNewNodeByClass("vtkMRMLSegmentationNode", "Empty")
    with pytest.raises(Exception, match="has no segments"):
        glue.segments.region_from_node(empty, volume_node)


def test_pseudonoduleseg_logic_headless_on_the_demo_patient(glue, patient):
    pytest.importorskip("nodsynth.measure", reason="nodsynth.measure (Seg engineer) has not landed yet")
    module = importlib.import_module("PseudoNoduleSeg")
    volume_node = glue.volumes.node_from_volume(patient.ct, "CT")
    volume_node.parent_transform = SCENE.add(TransformNode("move", rigid(10, 1, (3.0, 4.0, -5.0))))
    points = SCENE.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    for n, nodule in enumerate(patient.nodules):
        glue.markups.add_control_point_lps(points, volume_node, nodule.center_lps, f"Nodule {n + 1}")
    segmentation = SCENE.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
    table = SCENE.AddNewNodeByClass("vtkMRMLTableNode", "Measurements")
    labels = glue.volumes.node_from_volume(patient.labelmap, "labels", label=True)
    labels.parent_transform = volume_node.parent_transform
    parameters = types.SimpleNamespace(method="kmeans", boxSizeMm=0.0, expandMm=0.0, fillHoles=True,
                                       restrictToLung=True, lungVolume=labels)  # the wrapper's fields
    logic = module.PseudoNoduleSegLogic()
    rows = logic.segmentPoints(volume_node, points, segmentation, parameters, tableNode=table)
    assert [r["nodule"] for r in rows] == [f"Nodule {n + 1}" for n in range(len(patient.nodules))]
    assert table.GetNumberOfRows() == len(patient.nodules)
    assert table.units["volume_mm3"] == "mm3" and table.units["centroid_lps_L"] == "mm"
    assert [r["lobe_name"] for r in rows] == [LOBES[n.lobe] for n in patient.nodules]
    for n, nodule in enumerate(patient.nodules):
        mask = segmentation.GetSegmentation().GetSegment(logic.segmentId(points, n)).mask
        truth = nodule.mask.array > 0
        dice = 2 * np.logical_and(mask > 0, truth).sum() / ((mask > 0).sum() + truth.sum())
        assert dice >= DEMO_DICE_REQUIRED, f"{nodule.kind} nodule: Dice {dice:.3f}"
    assert segmentation.parent_transform is volume_node.parent_transform
