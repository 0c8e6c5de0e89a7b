"""Stand-ins for Slicer's C++ Qt widgets (``slicer.qMRML*``, ``slicer.qSlicer*``) used by our .ui files
and named by the real parameter-node GUI connectors."""
from __future__ import annotations

from typing import Any, Optional

from qtobjects import QObject
from standin_qt import QAbstractItemView, QToolButton, QWidget, _RangeValue


class qMRMLWidget(QWidget):
    _SIGNALS = ("mrmlSceneChanged(vtkMRMLScene*)",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._scene = None

    def setMRMLScene(self, scene: Any) -> None:
        if scene is not self._scene:
            self._scene = scene
            self._emit("mrmlSceneChanged", scene)

    def mrmlScene(self) -> Any:
        return self._scene


class qSlicerWidget(qMRMLWidget):
    pass


class qMRMLNodeComboBox(qMRMLWidget):
    """Lists the scene's nodes of ``nodeTypes``; ``setCurrentNode`` of a node it does not list (another
    class, not in the scene) leaves nothing selected, as the real combo box's model would."""

    _PROPS = {"nodeTypes": (), "showHidden": False, "showChildNodeTypes": True, "hideChildNodeTypes": (),
              "baseName": "", "noneEnabled": False, "addEnabled": True, "removeEnabled": True, "editEnabled": False,
              "renameEnabled": False, "noneDisplay": "None", "selectNodeUponCreation": True,
              "interactionNodeSingletonTag": "", "sizeAdjustPolicy": 0}
    _SIGNALS = ("currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)", "currentNodeIDChanged(QString)",
                "nodeAdded(vtkMRMLNode*)", "nodeAddedByUser(vtkMRMLNode*)", "nodeAboutToBeRemoved(vtkMRMLNode*)",
                "nodeActivated(vtkMRMLNode*)")

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._current = None

    def _listed(self, node: Any) -> bool:
        if node is None or self._scene is None or node.GetScene() is not self._scene:
            return False
        types = list(self.nodeTypes)
        if self.showChildNodeTypes:
            return any(node.IsA(t) for t in types)
        return node.GetClassName() in types

    def currentNode(self) -> Any:
        if self._current is not None and not self._listed(self._current):
            self._current = None  # removed from the scene
        return self._current

    def currentNodeID(self) -> str:
        node = self.currentNode()
        return node.GetID() if node is not None else ""

    def setCurrentNode(self, node: Any) -> None:
        if isinstance(node, str):
            node = self._scene.GetNodeByID(node) if self._scene is not None else None
        new = node if self._listed(node) else None
        if new is not self._current:
            self._current = new
            self._emit("currentNodeChanged", new)
            self._emit("currentNodeIDChanged", new.GetID() if new is not None else "")

    def setCurrentNodeID(self, node_id: str) -> None:
        self.setCurrentNode(node_id)


class qMRMLSliderWidget(_RangeValue):
    _PROPS = {"decimals": 2, "minimum": 0.0, "maximum": 99.0, "singleStep": 1.0, "quantity": "", "suffix": ""}
    _SIGNALS = ("valueChanged(double)",)
    _VALUE_TYPE = float

    def setMRMLScene(self, scene: Any) -> None:
        pass


class qMRMLSpinBox(_RangeValue):
    _PROPS = {"decimals": 2, "minimum": 0.0, "maximum": 99.0, "singleStep": 1.0, "quantity": "", "suffix": ""}
    _SIGNALS = ("valueChanged(double)",)
    _VALUE_TYPE = float

    def setMRMLScene(self, scene: Any) -> None:
        pass


class qMRMLRangeWidget(QWidget):
    _PROPS = {"minimum": 0.0, "maximum": 99.0, "minimumValue": 0.0, "maximumValue": 99.0, "decimals": 2,
              "singleStep": 1.0, "quantity": ""}
    _SIGNALS = ("valuesChanged(double,double)",)


class qSlicerMarkupsPlaceWidget(qSlicerWidget):
    HidePlaceMultipleMarkupsOption, ShowPlaceMultipleMarkupsOption, ForcePlaceSingleMarkup, ForcePlaceMultipleMarkups = 0, 1, 2, 3
    _PROPS = {"buttonsVisible": True, "deleteAllControlPointsOptionVisible": True, "unsetLastControlPointOptionVisible": True,
              "unsetAllControlPointsOptionVisible": True, "placeMultipleMarkups": 1, "placeModeEnabled": False,
              "placeModePersistency": False}
    _SIGNALS = ("activeMarkupsFiducialPlaceModeChanged(bool)", "activeMarkupsPlaceModeChanged(bool)")

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._node = None
        self._place = QToolButton(self)
        self._place.objectName = "PlaceButton"

    def setCurrentNode(self, node: Any) -> None:
        if node is not None and not node.IsA("vtkMRMLMarkupsNode"):
            raise TypeError("qSlicerMarkupsPlaceWidget.setCurrentNode: expected a markups node")
        self._node = node

    def currentNode(self) -> Any:
        return self._node

    def placeButton(self) -> QToolButton:
        return self._place


class qMRMLTableView(QAbstractItemView):
    _SIGNALS = ("selectionChanged()",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._table = None

    def setMRMLScene(self, scene: Any) -> None:
        pass

    def setMRMLTableNode(self, node: Any) -> None:
        if node is not None and not node.IsA("vtkMRMLTableNode"):
            raise TypeError("qMRMLTableView.setMRMLTableNode: expected a table node")
        self._table = node

    def mrmlTableNode(self) -> Any:
        return self._table


class qMRMLPlotView(QWidget):
    pass


class qMRMLSegmentSelectorWidget(qMRMLWidget):
    _PROPS = {"noneEnabled": False, "editEnabled": False, "segmentationNodeSelectorVisible": True,
              "multiSelection": False}
    _SIGNALS = ("currentNodeChanged(vtkMRMLNode*)", "currentSegmentChanged(QString)")
