"""The widget plumbing every NodMAISI module shares: load the .ui, bind it to the parameter node,
follow scene close, drive one job in the module's job process, and show the engine-location panel."""
from __future__ import annotations

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from .dependencies import ensure_packages
from .enginepanel import EnginePanel
from .engines import show_engine_labels
from .requirements import CORE_REQUIREMENTS
from .qtjob import QtJobRunner

PARAMETER_NAME_PROPERTY = "SlicerParameterName"
"""The dynamic property of a .ui widget that names the parameter it shows (parameterNodeWrapper)."""


def parameter_widgets(ui) -> dict:
    """``{parameter name: widget}`` for the widgets of ``ui`` (``childWidgetVariables``) that name one."""
    return {widget.property(PARAMETER_NAME_PROPERTY): widget for widget in vars(ui).values()
            if widget.property(PARAMETER_NAME_PROPERTY)}


class ModuleWidgetBase(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Subclasses set ``LOGIC_CLASS`` and ``WITH_ENGINE_PANEL`` and override ``setupConnections``,
    ``defaultInputs`` and ``updateButtons``; ``self.runner`` runs their long work out of process."""

    LOGIC_CLASS = None
    WITH_ENGINE_PANEL = False

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.runner = None
        self.enginePanel = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedPointLists = {}

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        if self.WITH_ENGINE_PANEL:
            self.enginePanel = EnginePanel(self.layout)
        self.logic = self.LOGIC_CLASS()
        self.runner = QtJobRunner(self.ui.progressBar, self.ui.statusLabel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        slicer.app.connect("aboutToQuit()", self.runner.close)
        self.setupConnections()
        self.initializeParameterNode()

    def setupConnections(self) -> None:
        """Connect buttons and extra observers (override)."""

    def defaultInputs(self, parameterNode) -> None:
        """Fill empty inputs with sensible nodes of the scene (override)."""

    def updateButtons(self, caller=None, event=None) -> None:
        """Enable/disable buttons from the parameter node (override)."""

    def cleanup(self) -> None:
        """The module is unloaded: end its job process, stop following the scene and the GUI."""
        if self.runner is not None:
            self.runner.close()
            slicer.app.disconnect("aboutToQuit()", self.runner.close)
        self._disconnectParameterNode()
        self.removeObservers()

    def enter(self) -> None:
        # warm before the first click (the job process, the dependency lookup): a click only hands the job over
        self.runner.host.start()
        ensure_packages(CORE_REQUIREMENTS, interactive=False, install=False)
        self.initializeParameterNode()

    def exit(self) -> None:
        """Stop following the parameter node while the module is not shown (the GUI catches up on
        ``enter``); the node is kept, so a job still running finishes into it."""
        self._disconnectParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        """The nodes a running job would write into are about to go: end it (and its process)."""
        if self.runner is not None:
            self.runner.discard("Job stopped: the scene was closed.")
            self.runner.host.stop()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        parameterNode = self.logic.getParameterNode()
        self.defaultInputs(parameterNode)
        self.setParameterNode(parameterNode)

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode is not None and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)

    def setParameterNode(self, parameterNode) -> None:
        self._disconnectParameterNode()
        self._parameterNode = parameterNode
        if self._parameterNode is not None:
            # connectParametersToGui returns its tag in every Slicer version (connectGui does not in 5.8)
            widgets = parameter_widgets(self.ui)
            self._parameterNodeGuiTag = self._parameterNode.connectParametersToGui(widgets)
            if "engine" in widgets:
                show_engine_labels(widgets["engine"])
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

    def observePoints(self, pointList, placeWidget, onPointPlaced) -> None:
        """Follow ``pointList``: ``placeWidget`` places into it and ``onPointPlaced(caller, event)`` runs
        for every newly placed point; the list followed before for the same callback is let go."""
        key = onPointPlaced.__name__
        previous = self._observedPointLists.get(key)
        if previous is not None:
            self.removeObserver(previous, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, onPointPlaced)
        self._observedPointLists[key] = pointList
        placeWidget.setCurrentNode(pointList)
        if pointList is not None:
            self.addObserver(pointList, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, onPointPlaced)

    def startJob(self, button, target: str, args: tuple, onDone, uploads=()) -> None:
        """Run ``target`` (``"module:function"``) with ``args`` in the module's job process; ``button``
        turns into Cancel meanwhile, and ``onDone(result)`` writes the result into nodes (a job still
        running when the scene closes is ended, so its result never reaches removed nodes).
        ``uploads``: inputs handed over piece by piece first (see :meth:`storedInput`)."""
        self.runner.start(button, target, args, onDone, uploads)

    def storedInput(self, node, volume, uploads: list):
        """``volume`` (read from ``node``) as an input the job process keeps until the node changes: a
        ``Stored`` reference, with the hand-over appended to ``uploads`` the first time."""
        from .volumes import content_key

        # ``volume`` views the node's voxels; the view keeps VTK's array alive even if the node gets new
        # voxels meanwhile (the key then changes, so the next job sends them)
        stored, pieces = self.runner.host.put_in_pieces(content_key(node), volume)
        uploads.append(pieces)
        return stored

    def toggleCancel(self, button) -> bool:
        """True when a job is running, so ``button`` must not start another: the job is cancelled when
        ``button`` started it (it shows 'Cancel'); another button's click is ignored."""
        if not self.runner.running:
            return False
        if self.runner.applyButton is button:
            self.runner.cancel()
        else:
            slicer.util.showStatusMessage("Another job is running; wait for it or cancel it first.", 5000)
        return True
