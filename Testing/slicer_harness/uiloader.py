"""``QUiLoader`` of the stand-in: builds the widget tree of a Qt Designer ``.ui`` file.

Every widget class must be one the stand-ins know, every standard property one its class has
(a typo in a .ui is an error here; Qt would only warn); ``stdset="0"`` properties (such as
``SlicerParameterName``) become dynamic properties; ``<connections>`` are connected.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Optional

import standin_ctk
import standin_qt
import standin_slicer_widgets

_MODULES = (standin_qt, standin_ctk, standin_slicer_widgets)


def widget_class(name: str) -> type:
    for module in _MODULES:
        klass = getattr(module, name, None)
        if isinstance(klass, type):
            return klass
    raise ValueError(f"the .ui uses widget class {name!r}, which the Slicer stand-ins do not provide")


def _enum(text: str) -> Any:
    value = 0
    for part in text.split("|"):
        owner, _, constant = part.strip().rpartition("::")
        klass = widget_class(owner) if owner and owner != "Qt" else standin_qt.Qt
        value |= getattr(klass, constant)
    return value


def property_value(element: ET.Element) -> Any:
    """The Python value of a ``<property>``'s child element."""
    value = list(element)[0]
    kind, text = value.tag, (value.text or "")
    if kind in ("string", "cstring"):
        return text
    if kind == "bool":
        return text.strip().lower() == "true"
    if kind == "number":
        return int(text)
    if kind == "double":
        return float(text)
    if kind in ("enum", "set"):
        return _enum(text)
    if kind == "stringlist":
        return tuple((s.text or "") for s in value.findall("string"))
    if kind in ("rect", "size"):
        return tuple(int(child.text) for child in value)
    raise ValueError(f"unsupported .ui property type <{kind}>")


def _apply_properties(widget: Any, element: ET.Element) -> None:
    for prop in element.findall("property"):
        name, value = prop.get("name"), property_value(prop)
        if prop.get("stdset") == "0":
            widget.setProperty(name, value)
        else:
            setattr(widget, name, value)


def _build_layout(element: ET.Element, owner: Any, names: dict) -> Any:
    layout = widget_class(element.get("class"))()
    layout.objectName = element.get("name", "")
    owner.setLayout(layout)
    for item in element.findall("item"):
        for child in item:
            if child.tag == "widget":
                layout.addWidget(_build_widget(child, None, names))
            elif child.tag == "layout":
                inner = widget_class(child.get("class"))()
                layout.addLayout(inner)
                holder = standin_qt.QWidget(owner)
                _fill_layout(child, inner, holder, names)
            elif child.tag == "spacer":
                layout.addStretch()
    return layout


def _fill_layout(element: ET.Element, layout: Any, owner: Any, names: dict) -> None:
    layout._set_owner(owner)
    for item in element.findall("item"):
        for child in item:
            if child.tag == "widget":
                layout.addWidget(_build_widget(child, None, names))


def _build_widget(element: ET.Element, parent: Optional[Any], names: dict) -> Any:
    widget = widget_class(element.get("class"))(parent) if parent is not None else widget_class(element.get("class"))()
    widget.objectName = element.get("name", "")
    names[widget.objectName] = widget
    _apply_properties(widget, element)
    for child in element:
        if child.tag == "layout":
            _build_layout(child, widget, names)
        elif child.tag == "widget":
            _build_widget(child, widget, names)
    return widget


def build_ui(path: str) -> Any:
    root = ET.parse(path).getroot()
    names: dict = {}
    widget = _build_widget(root.find("widget"), None, names)
    for connection in root.iter("connection"):
        sender, receiver = names[connection.findtext("sender")], names[connection.findtext("receiver")]
        slot = connection.findtext("slot").split("(")[0]
        sender.connect(connection.findtext("signal"), getattr(receiver, slot))
    return widget
