"""Write measurement rows into a ``vtkMRMLTableNode`` with units (Slicer side)."""
from __future__ import annotations

from typing import Any, Sequence

import vtk

from .tables import measurement_columns


def fill_table(tableNode, rows: Sequence[dict[str, Any]], descriptions: dict[str, str] | None = None) -> None:
    """Replace the table's content by one row per measurement dict; unit labels from the keys."""
    tableNode.RemoveAllColumns()
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
