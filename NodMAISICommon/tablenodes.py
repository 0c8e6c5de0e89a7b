"""Table nodes (Slicer side): measurement rows written with units as the header; the cell a click on a
table view hit."""
from __future__ import annotations

from typing import Any, Sequence

import vtk

from .tables import measurement_columns


def fill_table(tableNode, rows: Sequence[dict[str, Any]], descriptions: dict[str, str] | None = None) -> None:
    """Replace the table's content by one row per measurement dict; unit labels from the keys.

    The column names (with their units) become the view's header: by default a table view shows them as
    an extra first row and shows no unit (vtkMRMLTableNode's UseColumnTitleAsColumnHeader is false).
    """
    tableNode.RemoveAllColumns()
    tableNode.SetUseColumnTitleAsColumnHeader(True)
    for column in measurement_columns(rows):
        array = vtk.vtkDoubleArray() if column.numeric else vtk.vtkStringArray()
        array.SetName(column.name)
        for value in column.values:
            if column.numeric:
                array.InsertNextValue(float("nan") if value is None else float(value))
            else:
                array.InsertNextValue("" if value is None else str(value))
        tableNode.AddColumn(array)
        if column.unit:
            tableNode.SetColumnUnitLabel(column.name, column.unit)
        if descriptions and column.name in descriptions:
            tableNode.SetColumnDescription(column.name, descriptions[column.name])
    tableNode.Modified()


def clicked_cell_text(view, index, columnName: str) -> str:
    """Text of column ``columnName`` in the row of a qMRMLTableView that the click ``index`` (an index
    of the view's model) hit; '' when the table has no such column. The row's own cell, so sorting the
    view or a row of column names (a table not using titles as header) cannot pick another row."""
    column = view.mrmlTableNode().GetColumnIndex(columnName)
    return str(index.sibling(index.row(), column).data() or "") if column >= 0 else ""
