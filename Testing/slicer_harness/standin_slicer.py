"""The ``slicer`` package as Slicer's embedded Python sees it, with Slicer's REAL pure-Python files.

``slicer`` is a package whose ``__path__`` is one version's folder of ``../shared/slicer_reference``,
so ``slicer.util``, ``slicer.parameterNodeWrapper``, ``slicer.ScriptedLoadableModule`` and (5.12)
``slicer.packaging`` are Slicer's own code. What Slicer builds from C++ is a stand-in here: the
MRML classes and scene (:mod:`mrml`), ``slicer.app`` (qSlicerApplication), ``slicer.modules``
(the module logics our code calls) and the qMRML/qSlicer widgets; ``slicer.i18n`` (a pure-Python
file not in the reference folder) translates nothing.
"""
from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Optional

import mrml
import standin_slicer_widgets as widgets
from qtobjects import QObject
from standin_qt import EVENT_LOOP, QMainWindow, QSettings


class _CommandOptions:
    def __init__(self, no_main_window: bool) -> None:
        self.runPythonAndExit = False
        self.noMainWindow = no_main_window
        self.testingEnabled = False


class _LayoutManager:
    """Three slice views (Red, Yellow, Green) over singleton slice and composite nodes of the scene."""

    VIEWS = ("Red", "Yellow", "Green")

    def __init__(self, scene: mrml.vtkMRMLScene) -> None:
        self._scene = scene
        self.layout = 2

    def setLayout(self, layout: int) -> None:
        self.layout = int(layout)

    def _node(self, class_name: str, view: str) -> mrml.vtkMRMLNode:
        node = self._scene.GetSingletonNode(view, class_name)
        if node is None:
            node = self._scene.CreateNodeByClass(class_name)
            node.SetSingletonTag(view)
            node.SetName(f"{class_name.replace('vtkMRML', '').replace('Node', '')}{view}")
            self._scene.AddNode(node)
            node.UnRegister(None)
        return node

    def sliceViewNames(self) -> tuple:
        return self.VIEWS

    def sliceWidget(self, name: str) -> Optional["_SliceWidget"]:
        return _SliceWidget(self, name) if name in self.VIEWS else None

    def mrmlSliceLogics(self) -> Any:
        import vtk

        return vtk.vtkCollection()


class _SliceLogic:
    def FitSliceToAll(self, *args: Any) -> None:
        pass

    def FitSliceToBackground(self, *args: Any) -> None:
        pass


class _SliceWidget:
    def __init__(self, manager: _LayoutManager, name: str) -> None:
        self._manager, self._name = manager, name

    def mrmlSliceCompositeNode(self) -> mrml.vtkMRMLSliceCompositeNode:
        return self._manager._node("vtkMRMLSliceCompositeNode", self._name)

    def mrmlSliceNode(self) -> mrml.vtkMRMLSliceNode:
        return self._manager._node("vtkMRMLSliceNode", self._name)

    def sliceLogic(self) -> _SliceLogic:
        return _SliceLogic()


class _IOManager:
    """``app.coreIOManager()``: volumes read with SimpleITK (ITK, as Slicer's volume reader), LPS -> RAS."""

    EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

    def __init__(self, scene: mrml.vtkMRMLScene) -> None:
        self._scene = scene

    def fileType(self, path: str) -> str:
        return "VolumeFile" if str(path).lower().endswith(self.EXTENSIONS) else "NoFile"

    def loadNodes(self, file_type: str, properties: dict, loaded: Any, messages: Any) -> bool:
        import numpy as np
        import SimpleITK as sitk

        path = str(properties.get("fileName", ""))
        if file_type != "VolumeFile":
            messages.AddMessage(0, f"no reader for file type {file_type}")
            return False
        try:
            image = sitk.ReadImage(path)
        except RuntimeError as exc:
            messages.AddMessage(0, f"could not read {path}: {exc}")
            return False
        array = sitk.GetArrayFromImage(image)
        direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
        ijk_to_lps = np.eye(4)
        ijk_to_lps[:3, :3] = direction * np.asarray(image.GetSpacing(), float)
        ijk_to_lps[:3, 3] = image.GetOrigin()
        class_name = "vtkMRMLLabelMapVolumeNode" if properties.get("labelmap") else "vtkMRMLScalarVolumeNode"
        node = self._scene.AddNewNodeByClass(class_name, properties.get("name") or Path(path).name.split(".")[0])
        node._ijk_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps
        node.SetAndObserveImageData(mrml._image_from(np.ascontiguousarray(array)))
        node.CreateDefaultDisplayNodes()
        loaded.AddItem(node)
        return True


class Application(QObject):
    """``slicer.app``: exit status, testing flag, main window, settings, event processing."""

    _PROPS = {"applicationName": "Slicer", "applicationVersion": "5.x"}
    _SIGNALS = ("aboutToQuit()", "startupCompleted()")

    def __init__(self, scene: mrml.vtkMRMLScene, main_window: bool) -> None:
        super().__init__(None)
        self._options = _CommandOptions(not main_window)
        self._main_window = QMainWindow() if main_window else None
        if self._main_window is not None:
            self._main_window.objectName = "qSlicerMainWindow"
        self._layout = _LayoutManager(scene) if main_window else None
        self._io = _IOManager(scene)
        self._module_manager = _ModuleManager()
        self._testing = False
        self._exit_calls: list = []
        self._override_cursors = 0
        self._temporary_path = os.path.join(tempfile.gettempdir(), f"Slicer-harness-{os.getpid()}")

    @property
    def temporaryPath(self) -> str:
        """qSlicerCoreApplication::temporaryPath: the folder for Slicer's temporary files (made if missing)."""
        os.makedirs(self._temporary_path, exist_ok=True)
        return self._temporary_path

    def commandOptions(self) -> _CommandOptions:
        return self._options

    def exit(self, status: int = 0) -> None:
        """Qt's exit: the event loop ends with ``status`` (recorded here for the tests)."""
        self._exit_calls.append(int(status))

    def quit(self) -> None:
        self.exit(0)

    def testingEnabled(self) -> bool:
        return self._testing

    def setTestingEnabled(self, enabled: bool) -> None:
        self._testing = bool(enabled)

    def topLevelWidgets(self) -> list:
        return [self._main_window] if self._main_window is not None else []

    def layoutManager(self) -> Optional[_LayoutManager]:
        return self._layout

    def coreIOManager(self) -> _IOManager:
        return self._io

    def moduleManager(self) -> "_ModuleManager":
        return self._module_manager

    def processEvents(self, *args: Any) -> None:
        EVENT_LOOP.process_events()

    def setOverrideCursor(self, cursor: Any) -> None:
        self._override_cursors += 1

    def restoreOverrideCursor(self) -> None:
        self._override_cursors -= 1

    def userSettings(self) -> QSettings:
        return QSettings()

    def settings(self) -> QSettings:
        return QSettings()

    def quitting(self) -> None:
        """Test helper (not Slicer): the application is about to quit."""
        self._emit("aboutToQuit")


class _ModuleManager(QObject):
    _SIGNALS = ("moduleAboutToBeUnloaded(QString)", "moduleLoaded(QString)")


class _Module:
    def __init__(self, logic: Any) -> None:
        self._logic = logic

    def logic(self) -> Any:
        return self._logic


def build(reference_folder: Path, main_window: bool) -> types.ModuleType:
    """A fresh ``slicer`` package over ``reference_folder/slicer`` (registered in ``sys.modules``)."""
    package = types.ModuleType("slicer")
    package.__path__ = [str(reference_folder / "slicer")]
    package.__file__ = str(reference_folder / "slicer" / "__init__.py")
    sys.modules["slicer"] = package
    for name in dir(mrml):
        value = getattr(mrml, name)
        if name.startswith("vtk") and isinstance(value, type):
            setattr(package, name, value)
    for name in ("qMRMLWidget", "qSlicerWidget", "qMRMLNodeComboBox", "qMRMLSliderWidget", "qMRMLSpinBox",
                 "qMRMLRangeWidget", "qSlicerMarkupsPlaceWidget", "qMRMLTableView", "qMRMLPlotView",
                 "qMRMLSegmentSelectorWidget"):
        setattr(package, name, getattr(widgets, name))
    scene = mrml.vtkMRMLScene()
    package.mrmlScene = scene
    package.app = Application(scene, main_window)
    package.modules = types.SimpleNamespace(
        segmentations=_Module(mrml.SegmentationsLogic()), volumes=_Module(mrml.VolumesLogic(scene)),
        plots=_Module(mrml.PlotsLogic()))
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    sys.modules["slicer.i18n"] = i18n
    package.i18n = i18n
    import slicer.util  # noqa: F401 - Slicer imports util at start-up; slicer.util.* is used without importing it

    return package
