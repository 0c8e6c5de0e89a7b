"""Stand-ins for Slicer's C++ Qt widgets (``slicer.qMRML*``, ``slicer.qSlicer*``) used by our .ui files
and named by the real parameter-node GUI connectors."""
from __future__ import annotations

from typing import Any, Optional

from qtobjects import QObject
import vtk

from standin_qt import QAbstractItemModel, QModelIndex, QSortFilterProxyModel, QTableView, QToolButton, QWidget, Qt, _RangeValue


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


class qMRMLTableModel(QAbstractItemModel):
    """Libs/MRML/Widgets/qMRMLTableModel.cxx (5.8-5.12): the node's table as model rows, rebuilt on the
    node's ModifiedEvent. Unless the node's UseColumnTitleAsColumnHeader (false by default in
    vtkMRMLTableNode.cxx), model row 0 holds the column NAMES (an editable bold row; tableRowOffset -1)
    and the header shows A, B, C...; with it, the header shows "title [unit]" and model row r is table
    row r. With UseFirstColumnAsRowHeader the first column labels the rows and is not a model column."""

    _PROPS = {"transposed": False}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._node = None
        self._observer = None
        self._cells: list = []  # [model row][model column] -> text
        self._headers: dict = {}  # (orientation, section) -> text

    def setMRMLTableNode(self, node: Any) -> None:
        if self._node is not None:
            self._node.RemoveObserver(self._observer)
        if node is not None:
            self._observer = node.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda caller, event: self.updateModelFromMRML())
        self._node = node
        self.updateModelFromMRML()

    def mrmlTableNode(self) -> Any:
        return self._node

    def _changed_transposed(self, old: bool, new: bool) -> None:
        self.updateModelFromMRML()

    @staticmethod
    def _cell_text(table: Any, row: int, column: int) -> str:
        array = table.GetColumn(column)
        if isinstance(array, vtk.vtkBitArray):
            return ""  # a check box
        variant = table.GetValue(row, column)
        if array.GetDataType() in (vtk.VTK_CHAR, vtk.VTK_UNSIGNED_CHAR, vtk.VTK_SIGNED_CHAR):
            return str(variant.ToInt())
        return variant.ToString()

    def updateModelFromMRML(self) -> None:
        node = self._node
        table = node.GetTable() if node is not None else None
        self._cells, self._headers = [], {}
        if table is None or table.GetNumberOfColumns() == 0:
            return
        titles = node.GetUseColumnTitleAsColumnHeader()
        labelColumn = node.GetUseFirstColumnAsRowHeader()
        colOffset, rowOffset = (1 if labelColumn else 0), (0 if titles else -1)
        columnAxis, rowAxis = (Qt.Vertical, Qt.Horizontal) if self.transposed else (Qt.Horizontal, Qt.Vertical)
        for tableCol in range(colOffset, table.GetNumberOfColumns()):
            name = table.GetColumnName(tableCol)
            if titles:
                header = node.GetColumnTitle(name) or name
                unit = node.GetColumnUnitLabel(name)
                header += f" [{unit}]" if unit else ""
            else:
                header = _excel_column_name(tableCol - colOffset)
            self._headers[(columnAxis, tableCol - colOffset)] = header
        for tableRow in range(rowOffset, table.GetNumberOfRows()):
            self._cells.append([self._cell_text(table, tableRow, c) if tableRow >= 0 else table.GetColumnName(c)
                                for c in range(colOffset, table.GetNumberOfColumns())])
            if labelColumn:
                label = table.GetValue(tableRow, 0).ToString() if tableRow >= 0 else table.GetColumnName(0)
            else:
                label = str(tableRow - rowOffset + 1)
            self._headers[(rowAxis, tableRow - rowOffset)] = label
        if self.transposed:
            self._cells = [list(column) for column in zip(*self._cells)]

    def rowCount(self, parent: Optional[QModelIndex] = None) -> int:
        return len(self._cells)

    def columnCount(self, parent: Optional[QModelIndex] = None) -> int:
        return len(self._cells[0]) if self._cells else 0

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid() or index.model() is not self or role != Qt.DisplayRole:
            return None
        return self._cells[index.row()][index.column()]

    def headerData(self, section: int, orientation: int, role: int = Qt.DisplayRole) -> Any:
        return self._headers.get((orientation, section)) if role == Qt.DisplayRole else None

    def mrmlTableRowIndex(self, index: QModelIndex) -> int:
        if self._node is None:
            return -1
        row = index.column() if self.transposed else index.row()
        return row if self._node.GetUseColumnTitleAsColumnHeader() else row - 1

    def mrmlTableColumnIndex(self, index: QModelIndex) -> int:
        if self._node is None:
            return -1
        column = index.row() if self.transposed else index.column()
        return column + 1 if self._node.GetUseFirstColumnAsRowHeader() else column


def _excel_column_name(index: int) -> str:
    """qMRMLTableModelPrivate::columnNameFromIndex: A, B, ..., Z, AA, AB, ..."""
    name = ""
    while index >= 0:
        name = chr(ord("A") + index % 26) + name
        index = index // 26 - 1
    return name


class qMRMLTableView(QTableView):
    """Libs/MRML/Widgets/qMRMLTableView.cxx: a QTableView whose model is a QSortFilterProxyModel over a
    qMRMLTableModel; ``clicked`` carries an index of the proxy (the view's model)."""

    _SIGNALS = ("selectionChanged()",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(qMRMLTableModel(self))
        self.setModel(proxy)

    def setMRMLScene(self, scene: Any) -> None:
        pass

    def tableModel(self) -> qMRMLTableModel:
        return self.sortFilterProxyModel().sourceModel()

    def sortFilterProxyModel(self) -> QSortFilterProxyModel:
        return self.model()

    def setMRMLTableNode(self, node: Any) -> None:
        if node is not None and not node.IsA("vtkMRMLTableNode"):
            raise TypeError("qMRMLTableView.setMRMLTableNode: expected a table node")
        self.tableModel().setMRMLTableNode(node)
        self._emit("selectionChanged")

    def mrmlTableNode(self) -> Any:
        return self.tableModel().mrmlTableNode()

    @property
    def transposed(self) -> bool:
        return self.tableModel().transposed

    @transposed.setter
    def transposed(self, value: bool) -> None:
        self.tableModel().transposed = bool(value)


class qMRMLPlotView(QWidget):
    pass


class qMRMLSegmentSelectorWidget(qMRMLWidget):
    _PROPS = {"noneEnabled": False, "editEnabled": False, "segmentationNodeSelectorVisible": True,
              "multiSelection": False}
    _SIGNALS = ("currentNodeChanged(vtkMRMLNode*)", "currentSegmentChanged(QString)")
