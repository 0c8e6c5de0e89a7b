"""Load a NodMAISI module as Slicer's module manager does, and drive its widget (enter / exit).

Slicer creates a ``qSlicerScriptedLoadableModule`` (the ``parent`` a ScriptedLoadableModule fills in:
title, categories, icon...) and, when the module is first shown, a
``qSlicerScriptedLoadableModuleWidget`` whose layout the module widget's ``setup`` fills; it calls
``enter()`` each time the module is selected and ``exit()`` when another one is.
"""
from __future__ import annotations

import importlib
from typing import Any

import slicer

from qtobjects import QObject
from standin_qt import QVBoxLayout, QWidget
from slicer_harness import REPO


class ModuleParent(QObject):
    """qSlicerScriptedLoadableModule (what ``ScriptedLoadableModule.__init__`` gets as ``parent``)."""

    _PROPS = {"title": "", "categories": (), "dependencies": (), "contributors": (), "helpText": "",
              "acknowledgementText": "", "icon": None, "path": "", "hidden": False, "index": -1}


class ModuleWidgetParent(QWidget):
    """qSlicerScriptedLoadableModuleWidget: the panel a module widget builds into."""

    def __init__(self) -> None:
        super().__init__(None)
        self.setLayout(QVBoxLayout())
        self._entered = False

    @property
    def isEntered(self) -> bool:
        return self._entered


def load_module(name: str) -> Any:
    """Import module ``name`` and register it as ``slicer.modules.<name lowercase>``; returns its parent."""
    existing = getattr(slicer.modules, name.lower(), None)
    if existing is not None:
        return existing
    python_module = importlib.import_module(name)
    parent = ModuleParent()
    parent.path = str(REPO / name / f"{name}.py")
    getattr(python_module, name)(parent)
    setattr(slicer.modules, name.lower(), parent)
    return parent


def create_widget(name: str) -> Any:
    """The module's widget after ``setup()`` (the first time the module is shown), then entered."""
    load_module(name)
    panel = ModuleWidgetParent()
    widget = getattr(importlib.import_module(name), f"{name}Widget")(panel)
    widget.setup()
    enter(widget)
    return widget


def enter(widget: Any) -> None:
    widget.parent._entered = True
    widget.enter()


def exit(widget: Any) -> None:
    widget.exit()
    widget.parent._entered = False


def unload(widget: Any) -> None:
    """The module is unloaded (application quitting or module reload): Slicer calls ``cleanup``."""
    slicer.app.moduleManager()._emit("moduleAboutToBeUnloaded", widget.moduleName)
