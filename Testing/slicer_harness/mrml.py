"""Stand-ins for the MRML classes Slicer builds from C++ (vtkMRML*, vtkSegment/vtkSegmentation and
the scene), written against the Slicer 5.8-5.12 headers.

They are Python subclasses of the REAL ``vtk.vtkObject`` (PyPI VTK 9.4, the release Slicer 5.8-5.12
build on): observers, ``Modified``/``InvokeEvent``, ``Register``/``UnRegister`` and every vtk
data object (vtkImageData, vtkMatrix4x4, vtkTable, vtkStringArray, vtkCollection) are VTK's own,
so Slicer's real ``util.py`` runs on them unchanged (``arrayFromVolume`` through
``vtk.util.numpy_support``, int64 refused by ``updateVolumeFromArray``).

Semantics kept from the C++ sources: a node reference to a removed node is dropped (and the
referring node is Modified); ``Clear()`` removes non-singleton nodes and resets singletons
(parameters, attributes and references cleared) between StartCloseEvent and EndCloseEvent;
``CreateNodeByClass`` and ``GetNodesByClass`` return objects the caller owns (one extra
reference, which the real callers release with ``UnRegister``); ``StartModify``/``EndModify``
compress Modified events; ``vtkSegment.GetTag`` takes an output ``vtk.reference``; the subject
hierarchy (``scene.GetSubjectHierarchyNode()``) gives every data node a plugin owns an item under the
scene item when it is added and drops it when the node is removed (qSlicerSubjectHierarchyPluginLogic),
with item ids, parents, levels (Patient, Study, Folder) and item attributes as vtkMRMLSubjectHierarchyNode.h.
"""
from __future__ import annotations

import itertools
from typing import Any, Optional

import numpy as np
import vtk
import vtk.util.numpy_support as numpy_support

_EVENT = itertools.count(vtk.vtkCommand.UserEvent + 1000)


def _event_id() -> int:
    return next(_EVENT)


def _matrix_array(matrix: "vtk.vtkMatrix4x4") -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _set_matrix(matrix: "vtk.vtkMatrix4x4", array: np.ndarray) -> None:
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))


# ===================================================================================== nodes
class vtkMRMLNode(vtk.vtkObject):
    """Base MRML node: id, name, attributes, node references, modify compression."""

    _CLASS = "vtkMRMLNode"
    _TAG = "Node"
    _IN_SUBJECT_HIERARCHY = False
    """Whether a subject hierarchy plugin owns nodes of this class (they get an item when added)."""
    ReferenceAddedEvent, ReferenceModifiedEvent, ReferenceRemovedEvent = _event_id(), _event_id(), _event_id()

    def __init__(self) -> None:
        super().__init__()
        self._id: Optional[str] = None
        self._scene: Optional["vtkMRMLScene"] = None
        self._name = ""
        self._attributes: dict = {}
        self._references: dict = {}  # role -> [node ids]
        self._singleton: Optional[str] = None
        self._modify_disabled = 0
        self._pending = 0
        self._hide = 0

    # identity -------------------------------------------------------------------------
    def GetClassName(self) -> str:
        return self._CLASS

    def IsA(self, class_name: str) -> bool:
        return any(getattr(k, "_CLASS", None) == class_name for k in type(self).__mro__) or \
            class_name in ("vtkObject", "vtkObjectBase")

    def GetNodeTagName(self) -> str:
        return self._TAG

    def GetID(self) -> Optional[str]:
        return self._id

    def GetScene(self) -> Optional["vtkMRMLScene"]:
        return self._scene

    def SetName(self, name: Optional[str]) -> None:
        if (name or "") != self._name:
            self._name = name or ""
            self.Modified()

    def GetName(self) -> str:
        return self._name

    def SetSingletonTag(self, tag: Optional[str]) -> None:
        self._singleton = tag

    def GetSingletonTag(self) -> Optional[str]:
        return self._singleton

    def SetHideFromEditors(self, value: int) -> None:
        self._hide = int(value)

    def GetHideFromEditors(self) -> int:
        return self._hide

    # attributes -----------------------------------------------------------------------
    def SetAttribute(self, name: str, value: Optional[str]) -> None:
        if value is None:
            self.RemoveAttribute(name)
            return
        if self._attributes.get(name) != str(value):
            self._attributes[name] = str(value)
            self.Modified()

    def GetAttribute(self, name: str) -> Optional[str]:
        return self._attributes.get(name)

    def RemoveAttribute(self, name: str) -> None:
        if self._attributes.pop(name, None) is not None:
            self.Modified()

    def GetAttributeNames(self) -> tuple:
        return tuple(self._attributes)

    # modified events ------------------------------------------------------------------
    def StartModify(self) -> int:
        previous = self._modify_disabled
        self._modify_disabled = 1
        return previous

    def EndModify(self, previous: int) -> int:
        self._modify_disabled = int(previous)
        if not previous and self._pending:
            self._pending = 0
            super().Modified()
        return self._pending

    def Modified(self) -> None:
        if self._modify_disabled:
            self._pending += 1
        else:
            super().Modified()

    def GetDisableModifiedEvent(self) -> int:
        return self._modify_disabled

    # node references ------------------------------------------------------------------
    def SetNodeReferenceID(self, role: str, node_id: Optional[str]) -> Optional["vtkMRMLNode"]:
        old = list(self._references.get(role, []))
        if node_id:
            self._references[role] = [node_id]
        else:
            self._references.pop(role, None)
        if old != self._references.get(role, []):
            self.Modified()
        return self.GetNodeReference(role)

    def SetAndObserveNodeReferenceID(self, role: str, node_id: Optional[str], events: Any = None) -> Optional["vtkMRMLNode"]:
        return self.SetNodeReferenceID(role, node_id)

    def AddNodeReferenceID(self, role: str, node_id: str) -> Optional["vtkMRMLNode"]:
        self._references.setdefault(role, []).append(node_id)
        self.Modified()
        return self._scene.GetNodeByID(node_id) if self._scene else None

    def GetNodeReferenceID(self, role: str) -> Optional[str]:
        ids = self._references.get(role)
        return ids[0] if ids else None

    def GetNthNodeReferenceID(self, role: str, n: int) -> Optional[str]:
        ids = self._references.get(role, [])
        return ids[n] if 0 <= n < len(ids) else None

    def GetNodeReference(self, role: str) -> Optional["vtkMRMLNode"]:
        return self.GetNthNodeReference(role, 0)

    def GetNthNodeReference(self, role: str, n: int) -> Optional["vtkMRMLNode"]:
        node_id = self.GetNthNodeReferenceID(role, n)
        return self._scene.GetNodeByID(node_id) if node_id and self._scene is not None else None

    def GetNumberOfNodeReferences(self, role: str) -> int:
        return len(self._references.get(role, []))

    def RemoveNodeReferenceIDs(self, role: Optional[str]) -> None:
        if role is None:
            changed = bool(self._references)
            self._references.clear()
        else:
            changed = self._references.pop(role, None) is not None
        if changed:
            self.Modified()

    def _drop_references_to(self, node_id: str) -> None:
        changed = False
        for role in list(self._references):
            kept = [i for i in self._references[role] if i != node_id]
            if kept != self._references[role]:
                changed = True
                if kept:
                    self._references[role] = kept
                else:
                    del self._references[role]
        if changed:
            self.Modified()

    def _reset(self) -> None:
        """vtkMRMLNode::Reset: content from a new instance; ID, name, singleton tag kept."""
        was = self.StartModify()
        fresh = type(self)()
        for key, value in fresh.__dict__.items():
            if key not in ("_id", "_scene", "_name", "_singleton", "_hide", "_modify_disabled", "_pending"):
                self.__dict__[key] = value
        self.Modified()
        self.EndModify(was)

    # transforms and display -----------------------------------------------------------
    def GetParentTransformNode(self) -> Optional["vtkMRMLTransformNode"]:
        return self.GetNodeReference("transform")

    def SetAndObserveTransformNodeID(self, node_id: Optional[str]) -> None:
        self.SetNodeReferenceID("transform", node_id)

    def GetTransformNodeID(self) -> Optional[str]:
        return self.GetNodeReferenceID("transform")


class vtkMRMLStorableNode(vtkMRMLNode):
    _CLASS = "vtkMRMLStorableNode"
    _IN_SUBJECT_HIERARCHY = True

    def GetStorageNode(self) -> Optional["vtkMRMLNode"]:
        return self.GetNodeReference("storage")

    def StorableModified(self) -> None:
        pass


class vtkMRMLDisplayNode(vtkMRMLNode):
    _CLASS = "vtkMRMLDisplayNode"

    def __init__(self) -> None:
        super().__init__()
        self._visibility = 1
        self._visibility2d_fill = 1

    def SetVisibility(self, visible: int) -> None:
        self._visibility = int(visible)

    def GetVisibility(self) -> int:
        return self._visibility

    def GetColorNode(self) -> Optional["vtkMRMLNode"]:
        return self.GetNodeReference("colorNodeID")


class vtkMRMLColorTableNode(vtkMRMLNode):
    _CLASS = "vtkMRMLColorTableNode"


class vtkMRMLScalarVolumeDisplayNode(vtkMRMLDisplayNode):
    """Window/level as vtkMRMLScalarVolumeDisplayNode.h: automatic by default; the manual window and
    level start at vtkImageMapToWindowLevelColors' defaults (255, 127.5)."""

    _CLASS = "vtkMRMLScalarVolumeDisplayNode"

    def __init__(self) -> None:
        super().__init__()
        self._auto_window_level = 1
        self._window, self._level = 255.0, 127.5

    def SetAutoWindowLevel(self, value: int) -> None:
        if int(value) != self._auto_window_level:
            self._auto_window_level = int(value)
            self.Modified()

    def GetAutoWindowLevel(self) -> int:
        return self._auto_window_level

    def AutoWindowLevelOn(self) -> None:
        self.SetAutoWindowLevel(1)

    def AutoWindowLevelOff(self) -> None:
        self.SetAutoWindowLevel(0)

    def SetWindowLevel(self, window: float, level: float) -> None:
        if (float(window), float(level)) != (self._window, self._level):
            self._window, self._level = float(window), float(level)
            self.Modified()

    def SetWindowLevelMinMax(self, minimum: float, maximum: float) -> None:
        self.SetWindowLevel(float(maximum) - float(minimum), 0.5 * (float(minimum) + float(maximum)))

    def GetWindow(self) -> float:
        return self._window

    def GetLevel(self) -> float:
        return self._level

    def GetWindowLevelMin(self) -> float:
        return self._level - 0.5 * self._window

    def GetWindowLevelMax(self) -> float:
        return self._level + 0.5 * self._window


class vtkMRMLLabelMapVolumeDisplayNode(vtkMRMLDisplayNode):
    _CLASS = "vtkMRMLLabelMapVolumeDisplayNode"


class vtkMRMLSegmentationDisplayNode(vtkMRMLDisplayNode):
    _CLASS = "vtkMRMLSegmentationDisplayNode"

    def SetVisibility2DFill(self, visible: bool) -> None:
        self._visibility2d_fill = int(bool(visible))

    def GetVisibility2DFill(self) -> int:
        return self._visibility2d_fill

    def SetSegmentVisibility(self, segment_id: str, visible: bool) -> None:
        pass


class vtkMRMLMarkupsDisplayNode(vtkMRMLDisplayNode):
    _CLASS = "vtkMRMLMarkupsDisplayNode"


class vtkMRMLDisplayableNode(vtkMRMLStorableNode):
    _CLASS = "vtkMRMLDisplayableNode"
    _DISPLAY: Optional[type] = None

    def GetDisplayNode(self) -> Optional[vtkMRMLDisplayNode]:
        return self.GetNodeReference("display")

    def CreateDefaultDisplayNodes(self) -> None:
        if self.GetDisplayNode() is not None or self._scene is None or self._DISPLAY is None:
            return
        display = self._scene.AddNewNodeByClass(self._DISPLAY._CLASS)
        self.SetNodeReferenceID("display", display.GetID())


# ------------------------------------------------------------------------------------- volumes
class vtkMRMLVolumeNode(vtkMRMLDisplayableNode):
    _CLASS = "vtkMRMLVolumeNode"
    _TAG = "Volume"
    ImageDataModifiedEvent = 18001

    def __init__(self) -> None:
        super().__init__()
        self._image: Optional[vtk.vtkImageData] = None
        self._ijk_to_ras = np.eye(4)

    def SetAndObserveImageData(self, image: Optional[vtk.vtkImageData]) -> None:
        self._image = image
        self.Modified()

    def GetImageData(self) -> Optional[vtk.vtkImageData]:
        return self._image

    def GetIJKToRASMatrix(self, matrix: vtk.vtkMatrix4x4) -> None:
        if not isinstance(matrix, vtk.vtkMatrix4x4):
            raise TypeError("GetIJKToRASMatrix argument 1: expected vtkMatrix4x4")
        _set_matrix(matrix, self._ijk_to_ras)

    def GetRASToIJKMatrix(self, matrix: vtk.vtkMatrix4x4) -> None:
        _set_matrix(matrix, np.linalg.inv(self._ijk_to_ras))

    def SetIJKToRASMatrix(self, matrix: vtk.vtkMatrix4x4) -> None:
        if not isinstance(matrix, vtk.vtkMatrix4x4):
            raise TypeError("SetIJKToRASMatrix argument 1: expected vtkMatrix4x4")
        self._ijk_to_ras = _matrix_array(matrix)
        self.Modified()

    def GetSpacing(self) -> tuple:
        return tuple(float(v) for v in np.linalg.norm(self._ijk_to_ras[:3, :3], axis=0))

    def GetOrigin(self) -> tuple:
        return tuple(float(v) for v in self._ijk_to_ras[:3, 3])

    def SetSpacing(self, *spacing: Any) -> None:
        spacing = np.asarray(spacing[0] if len(spacing) == 1 else spacing, dtype=float)
        directions = self._ijk_to_ras[:3, :3] / np.linalg.norm(self._ijk_to_ras[:3, :3], axis=0)
        self._ijk_to_ras[:3, :3] = directions * spacing
        self.Modified()

    def SetOrigin(self, *origin: Any) -> None:
        self._ijk_to_ras[:3, 3] = np.asarray(origin[0] if len(origin) == 1 else origin, dtype=float)
        self.Modified()


class vtkMRMLScalarVolumeNode(vtkMRMLVolumeNode):
    _CLASS = "vtkMRMLScalarVolumeNode"
    _DISPLAY = vtkMRMLScalarVolumeDisplayNode


class vtkMRMLLabelMapVolumeNode(vtkMRMLScalarVolumeNode):
    _CLASS = "vtkMRMLLabelMapVolumeNode"
    _DISPLAY = vtkMRMLLabelMapVolumeDisplayNode


# ------------------------------------------------------------------------------------- transforms
class vtkMRMLTransformNode(vtkMRMLStorableNode):
    _CLASS = "vtkMRMLTransformNode"

    def __init__(self) -> None:
        super().__init__()
        self._to_parent = np.eye(4)

    def SetMatrixTransformToParent(self, matrix: vtk.vtkMatrix4x4) -> None:
        self._to_parent = _matrix_array(matrix)
        self.Modified()

    def GetMatrixTransformToParent(self, matrix: vtk.vtkMatrix4x4) -> None:
        _set_matrix(matrix, self._to_parent)

    def IsLinear(self) -> int:
        return 1

    def _to_world(self) -> np.ndarray:
        parent = self.GetParentTransformNode()
        return (parent._to_world() if parent is not None else np.eye(4)) @ self._to_parent

    @staticmethod
    def GetMatrixTransformBetweenNodes(source: Optional["vtkMRMLTransformNode"], target: Optional["vtkMRMLTransformNode"],
                                       matrix: vtk.vtkMatrix4x4) -> int:
        """source frame -> target frame (None = world); 0 when a transform is not linear."""
        for node in (source, target):
            if node is not None and not node.IsLinear():
                return 0
        src = source._to_world() if source is not None else np.eye(4)
        dst = target._to_world() if target is not None else np.eye(4)
        _set_matrix(matrix, np.linalg.inv(dst) @ src)
        return 1


class vtkMRMLLinearTransformNode(vtkMRMLTransformNode):
    _CLASS = "vtkMRMLLinearTransformNode"


# ------------------------------------------------------------------------------------- markups
class vtkMRMLMarkupsNode(vtkMRMLDisplayableNode):
    _CLASS = "vtkMRMLMarkupsNode"
    _DISPLAY = vtkMRMLMarkupsDisplayNode
    PositionUndefined, PositionPreview, PositionDefined, PositionMissing = 0, 1, 2, 3
    PointAddedEvent, PointRemovedEvent, PointModifiedEvent = _event_id(), _event_id(), _event_id()
    PointPositionDefinedEvent, PointPositionUndefinedEvent = _event_id(), _event_id()

    def __init__(self) -> None:
        super().__init__()
        self._points: list = []  # [id, label, local RAS (3,), status]
        self._label_format = "%N-%d"
        self._next_id = 1

    def SetControlPointLabelFormat(self, text: str) -> None:
        self._label_format = str(text)

    def GetControlPointLabelFormat(self) -> str:
        return self._label_format

    def AddControlPoint(self, *args: Any) -> int:
        """``(vtkVector3d, label="")``, ``(double[3], label="")`` or ``(x, y, z, label="")``."""
        if args and isinstance(args[0], vtk.vtkVector3d):
            position, rest = [args[0][i] for i in range(3)], args[1:]
        elif args and isinstance(args[0], (list, tuple, np.ndarray)):
            position, rest = list(args[0]), args[1:]
        elif len(args) >= 3:
            position, rest = list(args[:3]), args[3:]
        else:
            raise TypeError("AddControlPoint: expected (vtkVector3d|double[3]|x, y, z[, label])")
        if len(position) != 3 or len(rest) > 1:
            raise TypeError("AddControlPoint: expected a 3-D position and at most a label")
        label = str(rest[0]) if rest else ""
        if not label:
            label = self._label_format.replace("%N", self.GetName()).replace("%d", str(len(self._points) + 1))
        self._points.append([str(self._next_id), label, np.asarray(position, float), self.PositionDefined])
        self._next_id += 1
        index = len(self._points) - 1
        self.InvokeEvent(self.PointAddedEvent)
        self.InvokeEvent(self.PointPositionDefinedEvent)
        return index

    def _check(self, index: int) -> list:
        if not 0 <= int(index) < len(self._points):
            raise IndexError(f"control point index {index} out of range (0..{len(self._points) - 1})")
        return self._points[int(index)]

    def GetNumberOfControlPoints(self) -> int:
        return len(self._points)

    def GetNumberOfDefinedControlPoints(self, includePreview: bool = False) -> int:
        return sum(1 for p in self._points if p[3] == self.PositionDefined)

    def GetNthControlPointPosition(self, index: int, out: Any = None) -> Any:
        position = self._check(index)[2]
        if out is None:
            return tuple(position)
        if len(out) != 3:
            raise TypeError("GetNthControlPointPosition argument 2: expected a sequence of 3 values")
        out[0], out[1], out[2] = (float(v) for v in position)
        return None

    def GetNthControlPointPositionStatus(self, index: int) -> int:
        return self._check(index)[3]

    def GetNthControlPointID(self, index: int) -> str:
        return self._check(index)[0]

    def GetNthControlPointLabel(self, index: int = 0) -> str:
        return self._check(index)[1]

    def SetNthControlPointLabel(self, index: int, label: str) -> None:
        self._check(index)[1] = str(label)

    def RemoveAllControlPoints(self) -> None:
        self._points.clear()
        self.InvokeEvent(self.PointRemovedEvent)

    def RemoveNthControlPoint(self, index: int) -> None:
        self._check(index)
        del self._points[int(index)]
        self.InvokeEvent(self.PointRemovedEvent)


class vtkMRMLMarkupsFiducialNode(vtkMRMLMarkupsNode):
    _CLASS = "vtkMRMLMarkupsFiducialNode"


# ------------------------------------------------------------------------------------- segmentations
class vtkSegment(vtk.vtkObject):
    """A segment: name, colour, tags and its binary labelmap (array + IJK->RAS of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self._name, self._color, self._tags = "", (0.5, 0.5, 0.5), {}
        self._labelmap: Optional[tuple] = None  # (uint8 array [k, j, i], ijk_to_ras 4x4)

    @staticmethod
    def GetTerminologyEntryTagName() -> str:
        return "TerminologyEntry"

    def SetName(self, name: str) -> None:
        self._name = str(name)

    def GetName(self) -> str:
        return self._name

    def SetColor(self, *color: Any) -> None:
        self._color = tuple(float(c) for c in (color[0] if len(color) == 1 else color))

    def GetColor(self) -> tuple:
        return self._color

    def SetTag(self, tag: str, value: Any) -> None:
        self._tags[str(tag)] = str(value)

    def GetTag(self, tag: str, value: "vtk.reference") -> bool:
        """``bool GetTag(std::string tag, std::string& value)``: the value goes into a ``vtk.reference``."""
        if not isinstance(value, vtk.reference):
            raise TypeError("GetTag argument 2: expected a vtk.reference (std::string&)")
        if tag not in self._tags:
            return False
        value.set(self._tags[tag])
        return True

    def HasTag(self, tag: str) -> bool:
        return tag in self._tags

    def RemoveTag(self, tag: str) -> None:
        self._tags.pop(tag, None)


class vtkSegmentation(vtk.vtkObject):
    def __init__(self) -> None:
        super().__init__()
        self._segments: dict = {}

    def AddEmptySegment(self, segment_id: str = "", name: str = "", color: Any = None) -> str:
        segment_id = str(segment_id or "")
        if not segment_id or segment_id in self._segments:
            base = segment_id or "Segment"
            segment_id = next(f"{base}_{n}" for n in itertools.count(1) if f"{base}_{n}" not in self._segments)
        segment = vtkSegment()
        segment.SetName(name or segment_id)
        if color is not None:
            segment.SetColor(*color)
        self._segments[segment_id] = segment
        return segment_id

    def GetSegment(self, segment_id: str) -> Optional[vtkSegment]:
        return self._segments.get(segment_id)

    def GetNumberOfSegments(self) -> int:
        return len(self._segments)

    def GetNthSegmentID(self, index: int) -> str:
        ids = list(self._segments)
        return ids[index] if 0 <= index < len(ids) else ""

    def GetSegmentIdBySegmentName(self, name: str) -> str:
        return next((sid for sid, seg in self._segments.items() if seg.GetName().lower() == name.lower()), "")

    def RemoveSegment(self, segment: Any) -> None:
        key = segment if isinstance(segment, str) else next((k for k, v in self._segments.items() if v is segment), None)
        self._segments.pop(key, None)


class vtkMRMLSegmentationNode(vtkMRMLDisplayableNode):
    _CLASS = "vtkMRMLSegmentationNode"
    _DISPLAY = vtkMRMLSegmentationDisplayNode

    def __init__(self) -> None:
        super().__init__()
        self._segmentation = vtkSegmentation()
        self._surface = False

    @staticmethod
    def GetReferenceImageGeometryReferenceRole() -> str:
        return "referenceImageGeometryRef"

    def GetSegmentation(self) -> vtkSegmentation:
        return self._segmentation

    def SetReferenceImageGeometryParameterFromVolumeNode(self, volume: vtkMRMLVolumeNode) -> None:
        if not isinstance(volume, vtkMRMLVolumeNode):
            raise TypeError("SetReferenceImageGeometryParameterFromVolumeNode: expected a volume node")
        self.SetNodeReferenceID(self.GetReferenceImageGeometryReferenceRole(), volume.GetID())

    def CreateClosedSurfaceRepresentation(self) -> bool:
        self._surface = True
        return True


# ------------------------------------------------------------------------------------- tables, plots
class vtkMRMLTableNode(vtkMRMLStorableNode):
    _CLASS = "vtkMRMLTableNode"

    def __init__(self) -> None:
        super().__init__()
        self._table = vtk.vtkTable()
        self._units: dict = {}
        self._descriptions: dict = {}
        self._titles: dict = {}
        self._column_title_header = False  # vtkMRMLTableNode.cxx: UseColumnTitleAsColumnHeader = false
        self._first_column_row_header = False  # and UseFirstColumnAsRowHeader = false

    def _set_flag(self, attribute: str, value: bool) -> None:
        """vtkSetMacro: Modified only when the value changes."""
        if bool(value) != getattr(self, attribute):
            setattr(self, attribute, bool(value))
            self.Modified()

    def SetUseColumnTitleAsColumnHeader(self, value: bool) -> None:
        self._set_flag("_column_title_header", value)

    def GetUseColumnTitleAsColumnHeader(self) -> bool:
        return self._column_title_header

    def SetUseFirstColumnAsRowHeader(self, value: bool) -> None:
        self._set_flag("_first_column_row_header", value)

    def GetUseFirstColumnAsRowHeader(self) -> bool:
        return self._first_column_row_header

    def GetColumnIndex(self, name: str) -> int:
        for index in range(self._table.GetNumberOfColumns()):
            if self._table.GetColumnName(index) == name:
                return index
        return -1

    def _set_column_property(self, store: dict, name: str, value: str) -> None:
        """SetColumnPropertyInternal: Modified only when the value changes."""
        if store.get(name, "") != value:
            store[name] = value
            self.Modified()

    def SetColumnTitle(self, name: str, title: str) -> None:
        self._set_column_property(self._titles, name, title)

    def GetColumnTitle(self, name: str) -> str:
        return self._titles.get(name, "")

    def GetTable(self) -> vtk.vtkTable:
        return self._table

    def AddColumn(self, column: Optional[vtk.vtkAbstractArray] = None) -> vtk.vtkAbstractArray:
        if column is None:
            column = vtk.vtkStringArray()
        if not isinstance(column, vtk.vtkAbstractArray):
            raise TypeError("AddColumn argument 1: expected vtkAbstractArray")
        rows = self._table.GetNumberOfRows()
        if self._table.GetNumberOfColumns() and column.GetNumberOfTuples() != rows:
            raise ValueError(f"AddColumn: column has {column.GetNumberOfTuples()} values, the table {rows} rows")
        self._table.AddColumn(column)
        self.Modified()
        return column

    def RemoveAllColumns(self) -> bool:
        while self._table.GetNumberOfColumns():
            self._table.RemoveColumn(0)
        self.Modified()
        return True

    def GetNumberOfRows(self) -> int:
        return self._table.GetNumberOfRows()

    def GetNumberOfColumns(self) -> int:
        return self._table.GetNumberOfColumns()

    def GetColumnName(self, index: int) -> str:
        return self._table.GetColumnName(index) or ""

    def GetCellText(self, row: int, column: int) -> str:
        return self._table.GetValue(row, column).ToString()

    def SetColumnUnitLabel(self, name: str, unit: str) -> None:
        self._set_column_property(self._units, name, unit)

    def GetColumnUnitLabel(self, name: str) -> str:
        return self._units.get(name, "")

    def SetColumnDescription(self, name: str, description: str) -> None:
        self._set_column_property(self._descriptions, name, description)

    def GetColumnDescription(self, name: str) -> str:
        return self._descriptions.get(name, "")


class vtkMRMLPlotSeriesNode(vtkMRMLNode):
    _CLASS = "vtkMRMLPlotSeriesNode"
    _IN_SUBJECT_HIERARCHY = True
    PlotTypeLine, PlotTypeBar, PlotTypeScatter, PlotTypeScatterBar = 0, 1, 2, 3

    def __init__(self) -> None:
        super().__init__()
        self._x, self._y, self._type = "", "", self.PlotTypeLine

    def SetAndObserveTableNodeID(self, node_id: str) -> None:
        self.SetNodeReferenceID("table", node_id)

    def GetTableNode(self) -> Optional[vtkMRMLTableNode]:
        return self.GetNodeReference("table")

    def SetXColumnName(self, name: str) -> None:
        self._x = str(name)

    def GetXColumnName(self) -> str:
        return self._x

    def SetYColumnName(self, name: str) -> None:
        self._y = str(name)

    def GetYColumnName(self) -> str:
        return self._y

    def SetPlotType(self, plot_type: int) -> None:
        if plot_type not in (0, 1, 2, 3):
            raise ValueError(f"unknown plot type {plot_type}")
        self._type = plot_type

    def GetPlotType(self) -> int:
        return self._type

    def plotted_x(self) -> np.ndarray:
        """Test helper (not MRML): where the points/bars are drawn along X, as the plot view lays
        them out: the X column for Scatter/ScatterBar, the row index 0..n-1 for Line/Bar."""
        table = self.GetTableNode().GetTable()
        y = table.GetColumnByName(self._y)
        if self._type in (self.PlotTypeScatter, self.PlotTypeScatterBar):
            return numpy_support.vtk_to_numpy(table.GetColumnByName(self._x)).astype(float)
        return np.arange(y.GetNumberOfTuples(), dtype=float)


class vtkMRMLPlotChartNode(vtkMRMLNode):
    _CLASS = "vtkMRMLPlotChartNode"
    _IN_SUBJECT_HIERARCHY = True

    def __init__(self) -> None:
        super().__init__()
        self._titles = {"x": "", "y": ""}

    def SetAndObservePlotSeriesNodeID(self, node_id: str) -> None:
        self.SetNodeReferenceID("plotSeries", node_id)

    def GetPlotSeriesNode(self) -> Optional[vtkMRMLPlotSeriesNode]:
        return self.GetNodeReference("plotSeries")

    def SetXAxisTitle(self, title: str) -> None:
        self._titles["x"] = str(title)

    def GetXAxisTitle(self) -> str:
        return self._titles["x"]

    def SetYAxisTitle(self, title: str) -> None:
        self._titles["y"] = str(title)

    def GetYAxisTitle(self) -> str:
        return self._titles["y"]


class vtkMRMLScriptedModuleNode(vtkMRMLNode):
    _CLASS = "vtkMRMLScriptedModuleNode"
    _TAG = "ScriptedModule"

    def __init__(self) -> None:
        super().__init__()
        self._parameters: dict = {}

    def SetParameter(self, name: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"SetParameter argument 2: expected str, got {type(value).__name__}")
        if self._parameters.get(name) != value or name not in self._parameters:
            self._parameters[name] = value
            self.Modified()

    def GetParameter(self, name: str) -> str:
        return self._parameters.get(name, "")

    def HasParameter(self, name: str) -> bool:
        return name in self._parameters

    def UnsetParameter(self, name: str) -> None:
        if self._parameters.pop(name, None) is not None:
            self.Modified()

    def GetParameterNames(self) -> tuple:
        return tuple(self._parameters)

    def GetParameterCount(self) -> int:
        return len(self._parameters)


class vtkMRMLLayoutNode(vtkMRMLNode):
    _CLASS = "vtkMRMLLayoutNode"
    SlicerLayoutConventionalView, SlicerLayoutFourUpView, SlicerLayoutOneUpRedSliceView = 2, 3, 6
    SlicerLayoutSideBySideView = 29


class vtkMRMLSliceCompositeNode(vtkMRMLNode):
    _CLASS = "vtkMRMLSliceCompositeNode"

    def __init__(self) -> None:
        super().__init__()
        self._layers = {"background": None, "foreground": None, "label": None}
        self._linked = 0

    def SetBackgroundVolumeID(self, node_id: Optional[str]) -> None:
        self._layers["background"] = node_id

    def GetBackgroundVolumeID(self) -> Optional[str]:
        return self._layers["background"]

    def SetForegroundVolumeID(self, node_id: Optional[str]) -> None:
        self._layers["foreground"] = node_id

    def GetForegroundVolumeID(self) -> Optional[str]:
        return self._layers["foreground"]

    def SetLabelVolumeID(self, node_id: Optional[str]) -> None:
        self._layers["label"] = node_id

    def SetLinkedControl(self, linked: Any) -> None:
        self._linked = int(bool(linked))

    def GetLinkedControl(self) -> int:
        return self._linked


class vtkMRMLSliceNode(vtkMRMLNode):
    """Orientation, view group and the SliceToRAS matrix (its last column: the slice centre, RAS mm);
    the jumps as vtkMRMLSliceNode.cxx makes them."""

    _CLASS = "vtkMRMLSliceNode"
    DefaultJumpSlice, CenteredJumpSlice, OffsetJumpSlice = -1, 0, 1

    def __init__(self) -> None:
        super().__init__()
        self._orientation = "Axial"
        self._slice_to_ras = vtk.vtkMatrix4x4()
        self._view_group = 0
        self._jump_mode = self.OffsetJumpSlice

    def GetSliceToRAS(self) -> vtk.vtkMatrix4x4:
        return self._slice_to_ras

    def SetViewGroup(self, group: int) -> None:
        self._view_group = int(group)

    def GetViewGroup(self) -> int:
        return self._view_group

    def SetJumpMode(self, mode: int) -> None:
        self._jump_mode = int(mode)

    def GetJumpMode(self) -> int:
        return self._jump_mode

    def JumpSliceByCentering(self, r: float, a: float, s: float) -> None:
        for row, value in enumerate((r, a, s)):
            self._slice_to_ras.SetElement(row, 3, float(value))
        self.Modified()

    def JumpSliceByOffsetting(self, r: float, a: float, s: float) -> None:
        matrix = _matrix_array(self._slice_to_ras)
        normal, origin = matrix[:3, 2], matrix[:3, 3]
        moved = origin + normal * float(np.dot(normal, np.array([r, a, s], float) - origin))
        for row in range(3):
            self._slice_to_ras.SetElement(row, 3, float(moved[row]))
        self.Modified()

    def JumpSlice(self, r: float, a: float, s: float) -> None:
        if self._jump_mode == self.CenteredJumpSlice:
            self.JumpSliceByCentering(r, a, s)
        else:
            self.JumpSliceByOffsetting(r, a, s)

    @staticmethod
    def JumpAllSlices(scene: "vtkMRMLScene", r: float, a: float, s: float, jumpMode: int = -1, viewGroup: int = -1,
                      exclude: Optional["vtkMRMLSliceNode"] = None) -> None:
        """The static form (the instance form ``JumpAllSlices(r, a, s)`` is not provided here)."""
        if not isinstance(scene, vtkMRMLScene):
            raise TypeError("vtkMRMLSliceNode.JumpAllSlices: the stand-in provides only the static form "
                            "JumpAllSlices(scene, r, a, s, jumpMode=-1, viewGroup=-1, exclude=None)")
        for node in scene._by_class("vtkMRMLSliceNode"):
            if node is exclude or (viewGroup >= 0 and viewGroup != node.GetViewGroup()):
                continue
            jump = {vtkMRMLSliceNode.DefaultJumpSlice: node.JumpSlice,
                    vtkMRMLSliceNode.CenteredJumpSlice: node.JumpSliceByCentering,
                    vtkMRMLSliceNode.OffsetJumpSlice: node.JumpSliceByOffsetting}.get(jumpMode)
            if jump is None:
                raise ValueError(f"vtkMRMLSliceNode.JumpAllSlices: invalid jump mode {jumpMode}")
            jump(r, a, s)

    def SetOrientationToAxial(self) -> None:
        self._orientation = "Axial"

    def SetOrientation(self, name: str) -> bool:
        self._orientation = str(name)
        return True

    def GetOrientation(self) -> str:
        return self._orientation

    def RotateToVolumePlane(self, volume: Any) -> None:
        pass


class vtkMRMLMessageCollection(vtk.vtkObject):
    def __init__(self) -> None:
        super().__init__()
        self._messages: list = []

    def AddMessage(self, kind: int, text: str) -> None:
        self._messages.append(str(text))

    def GetNumberOfMessages(self) -> int:
        return len(self._messages)

    def GetAllMessagesAsString(self) -> str:
        return "\n".join(self._messages)


# ------------------------------------------------------------------------------------- subject hierarchy
class vtkMRMLSubjectHierarchyConstants:
    """The level and attribute names of vtkMRMLSubjectHierarchyConstants.h (static methods)."""

    @staticmethod
    def GetSubjectHierarchyLevelFolder() -> str:
        return "Folder"

    @staticmethod
    def GetDICOMLevelPatient() -> str:
        return "Patient"

    @staticmethod
    def GetDICOMLevelStudy() -> str:
        return "Study"

    @staticmethod
    def GetDICOMAttributePrefix() -> str:
        return "DICOM."

    @staticmethod
    def GetDICOMUIDName() -> str:
        return "DICOM"


_ITEM_IDS = itertools.count(1)  # vtkSubjectHierarchyItem::NextSubjectHierarchyItemID: static, shared by every node


def _item_id(value: Any, argument: int, method: str) -> int:
    """A ``vtkIdType`` argument as VTK's Python wrapping takes it: an int (None is a TypeError)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{method} argument {argument}: expected vtkIdType (int), got {type(value).__name__}")
    return int(value)


def _text(value: Any, argument: int, method: str) -> str:
    """A ``std::string`` argument: str only (None is a TypeError in VTK's wrapping)."""
    if not isinstance(value, str):
        raise TypeError(f"{method} argument {argument}: expected str (std::string), got {type(value).__name__}")
    return value


class _Item:
    def __init__(self, item_id: int, parent: Optional["_Item"], name: str, level: str, data_node: Any) -> None:
        self.id, self.parent, self.name, self.data_node = item_id, parent, name, data_node
        self.children: list = []
        self.attributes = {"Level": level} if level else {}
        self.uids: dict = {}


class vtkMRMLSubjectHierarchyNode(vtkMRMLNode):
    """The scene's subject hierarchy as vtkMRMLSubjectHierarchyNode.h/.cxx: items with ids (0 is invalid),
    a scene item at the root, parents, levels (an item attribute), attributes and UIDs; data nodes
    the plugins own get an item under the scene item when added, lose it when removed (what
    qSlicerSubjectHierarchyPluginLogic does). Errors are logged and an invalid id returned, as in C++;
    the log is kept in ``errors`` (test helper, not MRML)."""

    _CLASS = "vtkMRMLSubjectHierarchyNode"
    _TAG = "SubjectHierarchy"
    SubjectHierarchyItemReparentedEvent = 62006

    def __init__(self) -> None:
        super().__init__()
        self._root = _Item(next(_ITEM_IDS), None, "Scene", "Scene", None)
        self._items = {self._root.id: self._root}
        self.errors: list = []

    # lookup -----------------------------------------------------------------------------
    @staticmethod
    def GetSubjectHierarchyNode(scene: "vtkMRMLScene") -> Optional["vtkMRMLSubjectHierarchyNode"]:
        if not isinstance(scene, vtkMRMLScene):
            raise TypeError("GetSubjectHierarchyNode argument 1: expected vtkMRMLScene")
        return scene.GetSubjectHierarchyNode()

    @staticmethod
    def GetInvalidItemID() -> int:
        return 0

    def _error(self, message: str) -> int:
        self.errors.append(message)
        return 0

    def _find(self, item_id: int, method: str) -> Optional[_Item]:
        item = self._items.get(_item_id(item_id, 1, method))
        if item is None:
            self._error(f"{method}: Failed to find subject hierarchy item by ID {item_id}")
        return item

    def GetSceneItemID(self) -> int:
        return self._root.id

    def GetItemByDataNode(self, dataNode: Optional[vtkMRMLNode]) -> int:
        if dataNode is None:
            return self._error("GetItemByDataNode: Invalid data node to find")
        return next((i.id for i in self._items.values() if i.data_node is dataNode), 0)

    def GetItemDataNode(self, itemID: int) -> Optional[vtkMRMLNode]:
        item = self._find(itemID, "GetItemDataNode")
        return item.data_node if item is not None else None

    def GetItemParent(self, itemID: int) -> int:
        if not _item_id(itemID, 1, "GetItemParent"):
            return self._error("GetItemParent: Invalid item ID given")
        item = self._find(itemID, "GetItemParent")
        return item.parent.id if item is not None and item.parent is not None else 0

    def GetItemChildren(self, itemID: int, childIDs: "vtk.vtkIdList", recursive: bool = False) -> None:
        if not isinstance(childIDs, vtk.vtkIdList):
            raise TypeError("GetItemChildren argument 2: expected vtkIdList (the std::vector form is not wrapped)")
        childIDs.Reset()
        item = self._find(itemID, "GetItemChildren")
        pending = list(item.children) if item is not None else []
        while pending:
            child = pending.pop(0)
            childIDs.InsertNextId(child.id)
            if recursive:
                pending[:0] = child.children

    def GetNumberOfItemChildren(self, itemID: int, recursive: bool = False) -> int:
        children = vtk.vtkIdList()
        self.GetItemChildren(itemID, children, recursive)
        return children.GetNumberOfIds()

    def GetNumberOfItems(self) -> int:
        return len(self._items) - 1

    # item properties --------------------------------------------------------------------
    def GetItemName(self, itemID: int) -> str:
        item = self._find(itemID, "GetItemName")
        if item is None:
            return ""
        return item.data_node.GetName() if item.data_node is not None else item.name

    def SetItemName(self, itemID: int, name: str) -> None:
        item = self._find(itemID, "SetItemName")
        if item is not None and item.data_node is not None:
            item.data_node.SetName(_text(name, 2, "SetItemName"))
        elif item is not None:
            item.name = _text(name, 2, "SetItemName")

    def GetItemLevel(self, itemID: int) -> str:
        return self.GetItemAttribute(itemID, "Level")

    def SetItemLevel(self, itemID: int, level: str) -> None:
        self.SetItemAttribute(itemID, "Level", level)

    def IsItemLevel(self, itemID: int, level: str) -> bool:
        return self.GetItemLevel(itemID) == _text(level, 2, "IsItemLevel")

    def GetItemAncestorAtLevel(self, itemID: int, level: str) -> int:
        item = self._find(itemID, "GetItemAncestorAtLevel")
        level = _text(level, 2, "GetItemAncestorAtLevel")
        ancestor = item.parent if item is not None else None
        while ancestor is not None and ancestor.attributes.get("Level") != level:
            ancestor = ancestor.parent
        return ancestor.id if ancestor is not None else 0

    def SetItemAttribute(self, itemID: int, attributeName: str, attributeValue: str) -> None:
        item = self._find(itemID, "SetItemAttribute")
        if item is not None:
            item.attributes[_text(attributeName, 2, "SetItemAttribute")] = _text(attributeValue, 3, "SetItemAttribute")

    def GetItemAttribute(self, itemID: int, attributeName: str) -> str:
        item = self._find(itemID, "GetItemAttribute")
        return item.attributes.get(_text(attributeName, 2, "GetItemAttribute"), "") if item is not None else ""

    def HasItemAttribute(self, itemID: int, attributeName: str) -> bool:
        item = self._find(itemID, "HasItemAttribute")
        return item is not None and _text(attributeName, 2, "HasItemAttribute") in item.attributes

    def RemoveItemAttribute(self, itemID: int, attributeName: str) -> bool:
        item = self._find(itemID, "RemoveItemAttribute")
        return item is not None and item.attributes.pop(_text(attributeName, 2, "RemoveItemAttribute"), None) is not None

    def GetItemAttributeNames(self, itemID: int) -> tuple:
        item = self._find(itemID, "GetItemAttributeNames")
        return tuple(item.attributes) if item is not None else ()

    def SetItemUID(self, itemID: int, uidName: str, uidValue: str) -> None:
        item = self._find(itemID, "SetItemUID")
        if item is not None:
            item.uids[_text(uidName, 2, "SetItemUID")] = _text(uidValue, 3, "SetItemUID")

    def GetItemUID(self, itemID: int, uidName: str) -> str:
        item = self._find(itemID, "GetItemUID")
        return item.uids.get(_text(uidName, 2, "GetItemUID"), "") if item is not None else ""

    # structure --------------------------------------------------------------------------
    def _add(self, parent: _Item, name: str, level: str, data_node: Any) -> int:
        item = _Item(next(_ITEM_IDS), parent, name, level, data_node)
        parent.children.append(item)
        self._items[item.id] = item
        self.Modified()
        return item.id

    def CreateItem(self, parentItemID: int, dataNode: Optional[vtkMRMLNode], ownerPluginName: Optional[str] = None) -> int:
        """The data node's item (its existing one, moved under a valid parent that differs)."""
        parent_id = _item_id(parentItemID, 1, "CreateItem")
        if not isinstance(dataNode, vtkMRMLNode):
            return self._error("CreateItem: Valid data node must be given to this function")
        existing = self.GetItemByDataNode(dataNode)
        if existing:
            if parent_id and self._items[existing].parent.id != parent_id:
                if self._find(parent_id, "CreateItem") is None:
                    return 0
                self._reparent(self._items[existing], self._items[parent_id])
            return existing
        parent = self._find(parent_id, "CreateItem")
        return self._add(parent, "", "", dataNode) if parent is not None else 0

    def CreateHierarchyItem(self, parentItemID: int, name: str, level: str, positionUnderParent: int = -1) -> int:
        parent = self._find(parentItemID, "CreateHierarchyItem")
        name, level = _text(name, 2, "CreateHierarchyItem"), _text(level, 3, "CreateHierarchyItem")
        return self._add(parent, name, level, None) if parent is not None else 0

    def CreateSubjectItem(self, parentItemID: int, name: str) -> int:
        return self.CreateHierarchyItem(parentItemID, name, vtkMRMLSubjectHierarchyConstants.GetDICOMLevelPatient())

    def CreateStudyItem(self, parentItemID: int, name: str) -> int:
        return self.CreateHierarchyItem(parentItemID, name, vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy())

    def CreateFolderItem(self, parentItemID: int, name: str) -> int:
        return self.CreateHierarchyItem(parentItemID, name,
                                        vtkMRMLSubjectHierarchyConstants.GetSubjectHierarchyLevelFolder())

    def _reparent(self, item: _Item, parent: _Item) -> None:
        item.parent.children.remove(item)
        parent.children.append(item)
        item.parent = parent
        self.InvokeEvent(self.SubjectHierarchyItemReparentedEvent)
        self.Modified()

    def SetItemParent(self, itemID: int, parentItemID: int, enableCircularCheck: bool = True) -> None:
        item_id, parent_id = _item_id(itemID, 1, "SetItemParent"), _item_id(parentItemID, 2, "SetItemParent")
        if not item_id or not parent_id:
            self._error("SetItemParent: Invalid item ID given")
            return
        if item_id == parent_id:
            self._error(f"SetItemParent: Cannot set an item as its own parent: {item_id}")
            return
        item, parent = self._items.get(item_id), self._find(parent_id, "SetItemParent")
        if item is None or item is self._root:
            self._error(f"SetItemParent: Failed to find non-scene subject hierarchy item by ID {item_id}")
            return
        if parent is None:
            return
        ancestor = parent.parent
        while enableCircularCheck and ancestor is not None:
            if ancestor is item:
                self._error(f"SetItemParent: Circular parenthood detected, parenting aborted: given parent item "
                            f"{parent_id} is a child of the reparented item {item_id}")
                return
            ancestor = ancestor.parent
        self._reparent(item, parent)

    def RemoveItem(self, itemID: int, removeDataNode: bool = True, recursive: bool = True) -> bool:
        if not _item_id(itemID, 1, "RemoveItem"):
            self._error("RemoveItem: Invalid item ID given")
            return False
        item = self._find(itemID, "RemoveItem")
        if item is None or item is self._root:
            return False
        for child in list(item.children):
            if recursive:
                self.RemoveItem(child.id, removeDataNode, True)
            else:  # children move up to the removed item's parent (ReparentChildrenToParent)
                self._reparent(child, item.parent)
        item.parent.children.remove(item)
        del self._items[item.id]
        if removeDataNode and item.data_node is not None and item.data_node.GetScene() is not None:
            item.data_node.GetScene().RemoveNode(item.data_node)
        self.Modified()
        return True


NODE_CLASSES = {klass._CLASS: klass for klass in (
    vtkMRMLScalarVolumeNode, vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeDisplayNode,
    vtkMRMLLabelMapVolumeDisplayNode, vtkMRMLLinearTransformNode, vtkMRMLTransformNode, vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsDisplayNode, vtkMRMLSegmentationNode, vtkMRMLSegmentationDisplayNode, vtkMRMLTableNode,
    vtkMRMLPlotSeriesNode, vtkMRMLPlotChartNode, vtkMRMLScriptedModuleNode, vtkMRMLColorTableNode, vtkMRMLLayoutNode,
    vtkMRMLSliceCompositeNode, vtkMRMLSliceNode, vtkMRMLSubjectHierarchyNode)}
"""Concrete node classes the scene can create (abstract ones, e.g. vtkMRMLVolumeNode, cannot be)."""


# ===================================================================================== scene
class vtkMRMLScene(vtk.vtkObject):
    NodeAddedEvent, NodeAboutToBeRemovedEvent, NodeRemovedEvent = 66000, 66001, 66002
    StartCloseEvent, EndCloseEvent = 0x2000 | 0x0100 | 0x0001, 0x2000 | 0x0200 | 0x0001

    def __init__(self) -> None:
        super().__init__()
        self._nodes: list = []
        self._counts: dict = {}
        self._closing = False

    # creation -------------------------------------------------------------------------
    def CreateNodeByClass(self, class_name: str) -> Optional[vtkMRMLNode]:
        """A new node the caller owns (one reference to release with ``UnRegister``, as in C++)."""
        klass = NODE_CLASSES.get(class_name)
        if klass is None:
            return None
        node = klass()
        node.Register(None)
        return node

    def GenerateUniqueName(self, base: str) -> str:
        names = {n.GetName() for n in self._nodes}
        if base not in names:
            return base
        return next(f"{base}_{n}" for n in itertools.count(1) if f"{base}_{n}" not in names)

    def AddNode(self, node: vtkMRMLNode) -> vtkMRMLNode:
        if not isinstance(node, vtkMRMLNode):
            raise TypeError("AddNode argument 1: expected a vtkMRMLNode")
        if node._singleton is not None:
            existing = self.GetSingletonNode(node._singleton, node.GetClassName())
            if existing is not None:
                return existing
        if node in self._nodes:
            return node
        count = self._counts.get(node.GetClassName(), 0) + 1
        self._counts[node.GetClassName()] = count
        node._id = f"{node.GetClassName()}{count}"
        node._scene = self
        if not node.GetName():
            node._name = self.GenerateUniqueName(node.GetClassName().replace("vtkMRML", "").replace("Node", ""))
        self._nodes.append(node)
        self.InvokeEvent(self.NodeAddedEvent)
        if node._IN_SUBJECT_HIERARCHY and not node.GetHideFromEditors():  # qSlicerSubjectHierarchyPluginLogic::onNodeAdded
            hierarchy = self.GetSubjectHierarchyNode()
            hierarchy.CreateItem(hierarchy.GetSceneItemID(), node)
        return node

    def GetSubjectHierarchyNode(self) -> vtkMRMLSubjectHierarchyNode:
        """The scene's subject hierarchy node, created when there is none (ResolveSubjectHierarchy)."""
        found = self._by_class("vtkMRMLSubjectHierarchyNode")
        if found:
            return found[0]
        node = vtkMRMLSubjectHierarchyNode()
        node.SetName("SubjectHierarchy")
        return self.AddNode(node)

    def AddNewNodeByClass(self, class_name: str, name: str = "") -> Optional[vtkMRMLNode]:
        node = self.CreateNodeByClass(class_name)
        if node is None:
            return None
        node.SetName(name if name else self.GenerateUniqueName(class_name.replace("vtkMRML", "").replace("Node", "")))
        self.AddNode(node)
        node.UnRegister(None)
        return node

    def RemoveNode(self, node: Optional[vtkMRMLNode]) -> None:
        if node is None or node not in self._nodes:
            return
        self.InvokeEvent(self.NodeAboutToBeRemovedEvent)
        if not self._closing and not isinstance(node, vtkMRMLSubjectHierarchyNode):  # onNodeAboutToBeRemoved
            hierarchy = self.GetSubjectHierarchyNode()
            item = hierarchy.GetItemByDataNode(node)
            if item:
                hierarchy.RemoveItem(item, False, False)
        self._nodes.remove(node)
        for other in self._nodes:
            other._drop_references_to(node.GetID())
        node._scene = None
        self.InvokeEvent(self.NodeRemovedEvent)

    def Clear(self, removeSingletons: int = 0) -> None:
        self._closing = True
        self.InvokeEvent(self.StartCloseEvent)
        for node in list(self._nodes):
            if removeSingletons or node.GetSingletonTag() is None:
                self.RemoveNode(node)
        for node in self._nodes:
            node._reset()
        self._closing = False
        self.InvokeEvent(self.EndCloseEvent)

    def IsClosing(self) -> bool:
        return self._closing

    # queries --------------------------------------------------------------------------
    def GetNodeByID(self, node_id: Optional[str]) -> Optional[vtkMRMLNode]:
        return next((n for n in self._nodes if n.GetID() == node_id), None) if node_id else None

    def _by_class(self, class_name: str) -> list:
        return [n for n in self._nodes if n.IsA(class_name)]

    def GetFirstNodeByClass(self, class_name: str) -> Optional[vtkMRMLNode]:
        found = self._by_class(class_name)
        return found[0] if found else None

    def GetFirstNodeByName(self, name: str) -> Optional[vtkMRMLNode]:
        return next((n for n in self._nodes if n.GetName() == name), None)

    def GetFirstNode(self, byName: Optional[str] = None, byClass: Optional[str] = None, byHideFromEditors: Any = None,
                     exactNameMatch: bool = True) -> Optional[vtkMRMLNode]:
        for node in self._nodes:
            if byClass and not node.IsA(byClass):
                continue
            if byName is not None and (node.GetName() != byName if exactNameMatch
                                       else not node.GetName().startswith(byName)):
                continue
            return node
        return None

    def GetNodesByClass(self, class_name: str) -> vtk.vtkCollection:
        """A collection the caller owns (Slicer's util releases it with ``UnRegister``)."""
        collection = vtk.vtkCollection()
        for node in self._by_class(class_name):
            collection.AddItem(node)
        collection.Register(None)
        return collection

    def GetNumberOfNodesByClass(self, class_name: str) -> int:
        return len(self._by_class(class_name))

    def GetNthNodeByClass(self, n: int, class_name: str) -> Optional[vtkMRMLNode]:
        found = self._by_class(class_name)
        return found[n] if 0 <= n < len(found) else None

    def GetNumberOfNodes(self) -> int:
        return len(self._nodes)

    def GetSingletonNode(self, tag: str, class_name: str) -> Optional[vtkMRMLNode]:
        return next((n for n in self._nodes if n.GetSingletonTag() == tag and n.IsA(class_name)), None)


# ===================================================================================== module logics
def _image_from(array: np.ndarray) -> vtk.vtkImageData:
    image = vtk.vtkImageData()
    image.SetDimensions(*reversed(array.shape))
    image.AllocateScalars(numpy_support.get_vtk_array_type(array.dtype), 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(array.shape)[:] = array
    return image


def _resample_nearest(array: np.ndarray, source_ijk_to_ras: np.ndarray, target_shape: tuple,
                      target_ijk_to_ras: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling of a label array onto another grid (zeros outside the source)."""
    if array.shape == tuple(target_shape) and np.allclose(source_ijk_to_ras, target_ijk_to_ras):
        return array.copy()
    target_to_source = np.linalg.inv(source_ijk_to_ras) @ target_ijk_to_ras
    offset_ijk = target_to_source[:3, 3]
    if np.allclose(target_to_source[:3, :3], np.eye(3)) and np.allclose(offset_ijk, np.rint(offset_ijk)):
        out = np.zeros(target_shape, dtype=array.dtype)  # same axes, whole-voxel shift: paste the overlap
        shift = np.rint(offset_ijk[::-1]).astype(int)  # source index = target index + shift, [k, j, i]
        lo = np.maximum(0, -shift)
        hi = np.minimum(np.array(target_shape), np.array(array.shape) - shift)
        if np.all(hi > lo):
            out[tuple(slice(a, b) for a, b in zip(lo, hi))] = array[tuple(slice(a + d, b + d) for a, b, d in zip(lo, hi, shift))]
        return out
    k, j, i = np.indices(target_shape).reshape(3, -1)
    ras = target_ijk_to_ras @ np.vstack([i, j, k, np.ones_like(i)])
    ijk = np.rint(np.linalg.inv(source_ijk_to_ras) @ ras)[:3].astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(array.shape[::-1])[:, None]), axis=0)
    out = np.zeros(int(np.prod(target_shape)), dtype=array.dtype)
    out[inside] = array[ijk[2, inside], ijk[1, inside], ijk[0, inside]]
    return out.reshape(target_shape)


class SegmentationsLogic:
    """``slicer.modules.segmentations.logic()``: labelmap <-> segment transfer (static methods in C++)."""

    @staticmethod
    def ImportLabelmapToSegmentationNode(labelmap: vtkMRMLLabelMapVolumeNode, segmentation: vtkMRMLSegmentationNode,
                                        segment_ids: Any = "", *rest: Any) -> bool:
        if not isinstance(labelmap, vtkMRMLLabelMapVolumeNode) or not isinstance(segmentation, vtkMRMLSegmentationNode):
            raise TypeError("ImportLabelmapToSegmentationNode: expected (vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, ...)")
        array = numpy_support.vtk_to_numpy(labelmap.GetImageData().GetPointData().GetScalars()).reshape(
            tuple(reversed(labelmap.GetImageData().GetDimensions())))
        if isinstance(segment_ids, vtk.vtkStringArray):  # update: label n -> segment_ids[n-1]
            for n in range(segment_ids.GetNumberOfValues()):
                segment = segmentation.GetSegmentation().GetSegment(segment_ids.GetValue(n))
                if segment is None:
                    return False
                segment._labelmap = ((array == n + 1).astype(np.uint8), labelmap._ijk_to_ras.copy())
            segmentation.Modified()
            return True
        for value in [int(v) for v in np.unique(array) if v != 0]:
            segment_id = segmentation.GetSegmentation().AddEmptySegment("", f"Label_{value}")
            segment = segmentation.GetSegmentation().GetSegment(segment_id)
            segment._labelmap = ((array == value).astype(np.uint8), labelmap._ijk_to_ras.copy())
        segmentation.Modified()
        return True

    @staticmethod
    def ExportSegmentsToLabelmapNode(segmentation: vtkMRMLSegmentationNode, segment_ids: Any,
                                     labelmap: vtkMRMLLabelMapVolumeNode, reference: Optional[vtkMRMLVolumeNode] = None,
                                     *rest: Any) -> bool:
        ids = ([segment_ids.GetValue(i) for i in range(segment_ids.GetNumberOfValues())]
               if isinstance(segment_ids, vtk.vtkStringArray) else list(segment_ids))
        if reference is None:
            reference = segmentation.GetNodeReference(segmentation.GetReferenceImageGeometryReferenceRole())
        if reference is None or reference.GetImageData() is None:
            return False
        shape = tuple(reversed(reference.GetImageData().GetDimensions()))
        out = np.zeros(shape, dtype=np.uint8)
        for value, segment_id in enumerate(ids, start=1):
            segment = segmentation.GetSegmentation().GetSegment(segment_id)
            if segment is None:
                return False
            if segment._labelmap is not None:
                mask = _resample_nearest(segment._labelmap[0], segment._labelmap[1], shape, reference._ijk_to_ras)
                out[mask > 0] = value
        labelmap.SetAndObserveImageData(_image_from(out))
        labelmap._ijk_to_ras = reference._ijk_to_ras.copy()
        return True


class VolumesLogic:
    def __init__(self, scene: vtkMRMLScene) -> None:
        self._scene = scene

    def CreateAndAddLabelVolume(self, volume: vtkMRMLVolumeNode, name: str) -> vtkMRMLLabelMapVolumeNode:
        labelmap = self._scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name)
        labelmap._ijk_to_ras = volume._ijk_to_ras.copy()
        dims = volume.GetImageData().GetDimensions()
        labelmap.SetAndObserveImageData(_image_from(np.zeros(tuple(reversed(dims)), dtype=np.int16)))
        labelmap.CreateDefaultDisplayNodes()
        return labelmap


class PlotsLogic:
    def __init__(self) -> None:
        self.shown_charts: list = []

    def ShowChartInLayout(self, chart: vtkMRMLPlotChartNode) -> None:
        if not isinstance(chart, vtkMRMLPlotChartNode):
            raise TypeError("ShowChartInLayout argument 1: expected vtkMRMLPlotChartNode")
        self.shown_charts.append(chart)
