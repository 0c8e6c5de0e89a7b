"""Tables as Slicer shows them: a qMRMLTableView's model (qMRMLTableModel.cxx) puts the column names in
model row 0 unless the table node uses its column titles as the header (vtkMRMLTableNode.cxx:
``UseColumnTitleAsColumnHeader = false``), and only then shows the unit labels. Issue 21 (1)."""
from __future__ import annotations

import numpy as np
import pytest

import modules as harness_modules
import qt
import slicer
from nodsynth.augment import nodule_components
from nodsynth.labels import NODULE
from nodsynth.volume import Volume

RADII_VOXELS = (2, 4, 3)
"""Nodules of different sizes (so a row's voxel count tells which nodule it is), in raster order."""


def labelmap_with_nodules(count: int) -> Volume:
    """A small lung label map with ``count`` spherical nodules along k, each its own size."""
    array = np.full((12 + 12 * count, 20, 20), 28, dtype=np.uint8)  # 28: a lung lobe
    k, j, i = np.indices(array.shape)
    for n, radius in enumerate(RADII_VOXELS[:count]):
        array[(k - 10 - 12 * n) ** 2 + (j - 10) ** 2 + (i - 10) ** 2 <= radius ** 2] = NODULE
    return Volume(array, spacing=(0.8, 0.8, 1.5))


def shown_cell(view, row: int, column_name: str) -> str:
    """The text the user sees in ``row`` under the header that names ``column_name``."""
    model = view.model()
    headers = [model.headerData(c, qt.Qt.Horizontal) for c in range(model.columnCount())]
    column = next(c for c, header in enumerate(headers) if header.split(" [")[0] == column_name)
    return model.index(row, column).data()


def test_the_table_view_shows_column_names_in_row_0_unless_titles_are_the_header():
    """The stand-in follows qMRMLTableModel::updateModelFromMRML and mrmlTableRowIndex."""
    import vtk

    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode")
    column = vtk.vtkDoubleArray()
    column.SetName("volume_mm3")
    for value in (5.0, 7.5):
        column.InsertNextValue(value)
    table.AddColumn(column)
    table.SetColumnUnitLabel("volume_mm3", "mm3")
    view = slicer.qMRMLTableView()
    view.setMRMLTableNode(table)
    model = view.model()
    assert not table.GetUseColumnTitleAsColumnHeader(), "vtkMRMLTableNode's default"
    assert model.rowCount() == 3 and model.index(0, 0).data() == "volume_mm3"
    assert model.headerData(0, qt.Qt.Horizontal) == "A", "no unit shown"
    assert view.tableModel().mrmlTableRowIndex(view.sortFilterProxyModel().mapToSource(model.index(1, 0))) == 0
    table.SetUseColumnTitleAsColumnHeader(True)  # the model follows the node's ModifiedEvent
    assert model.rowCount() == 2 and model.index(0, 0).data() == "5"
    assert model.headerData(0, qt.Qt.Horizontal) == "volume_mm3 [mm3]"


def test_every_table_the_modules_fill_shows_its_units_and_no_title_row():
    from NodMAISICommon.tablenodes import fill_table

    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode")
    fill_table(table, [{"nodule_id": 1, "volume_mm3": 33.5}, {"nodule_id": 2, "volume_mm3": 4.0}])
    view = slicer.qMRMLTableView()
    view.setMRMLTableNode(table)
    model = view.model()
    assert [model.headerData(c, qt.Qt.Horizontal) for c in range(2)] == ["nodule_id", "volume_mm3 [mm3]"]
    assert [model.index(r, 1).data() for r in range(model.rowCount())] == ["33.5", "4"]


@pytest.mark.parametrize("count", [1, 3])
def test_clicking_a_nodule_row_selects_that_nodule(count):
    from NodMAISICommon.volumes import node_from_volume

    labelmap = labelmap_with_nodules(count)
    voxels_of = {n: len(coords) for n, coords in enumerate(nodule_components(labelmap), start=1)}
    assert len(set(voxels_of.values())) == count
    widget = harness_modules.create_widget("LesionAugment")
    try:
        p = widget._parameterNode
        p.inputLabelmap = node_from_volume(labelmap, "labels", label=True)
        view = widget.ui.noduleTableView
        assert view.mrmlTableNode() is p.noduleTable
        assert view.model().rowCount() == count, "one row per nodule, no row of column names"
        for row in reversed(range(count)):
            view.click(row, 0)
            assert voxels_of[p.noduleId] == int(float(shown_cell(view, row, "voxels"))), f"row {row}"
    finally:
        harness_modules.unload(widget)


def test_a_click_on_a_row_of_column_names_changes_nothing():
    """A table node showing its column names as row 0 (a table loaded from a scene saved by another tool)."""
    from NodMAISICommon.volumes import node_from_volume

    widget = harness_modules.create_widget("LesionAugment")
    try:
        p = widget._parameterNode
        p.inputLabelmap = node_from_volume(labelmap_with_nodules(3), "labels", label=True)
        p.noduleTable.SetUseColumnTitleAsColumnHeader(False)
        p.noduleId = 2
        view = widget.ui.noduleTableView
        view.click(0, 0)
        assert p.noduleId == 2
        view.click(3, 0)
        assert voxels_of_row(view, 3) == len(nodule_components(labelmap_with_nodules(3))[p.noduleId - 1])
    finally:
        harness_modules.unload(widget)


def voxels_of_row(view, row: int) -> int:
    model = view.model()
    names = [model.index(0, c).data() for c in range(model.columnCount())]
    return int(float(model.index(row, names.index("voxels")).data()))
