"""The widget plumbing every NodMAISI module shares: load the .ui, bind it to the parameter node,
follow scene close, drive one background job, and show the engine-location panel."""
from __future__ import annotations

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from .enginepanel import EnginePanel
from .qtjob import QtJobRunner


class ModuleWidgetBase(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Subclasses set ``LOGIC_CLASS`` and ``WITH_ENGINE_PANEL`` and override ``setupConnections``,
    ``defaultInputs`` and ``updateButtons``; ``self.runner`` runs their background work."""

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
        self.runner = QtJobRunner(self.ui.progressBar, None, self.ui.statusLabel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.setupConnections()
        self.initializeParameterNode()

    def setupConnections(self) -> None:
        """Connect buttons and extra observers (override)."""

    def defaultInputs(self, parameterNode) -> None:
        """Fill empty inputs with sensible nodes of the scene (override)."""

    def updateButtons(self, caller=None, event=None) -> None:
        """Enable/disable buttons from the parameter node (override)."""

    def cancelRunningJob(self) -> None:
        if self.runner is not None and self.runner.running:
            self.runner.cancel()

    def cleanup(self) -> None:
        self.cancelRunningJob()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        """Stop following the parameter node while the module is not shown (the GUI catches up on
        ``enter``); the node is kept, so a job still running finishes into it."""
        self._disconnectParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelRunningJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        parameterNode = self.logic.getParameterNode()
        self.defaultInputs(parameterNode)
        self.setParameterNode(parameterNode)

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)

    def setParameterNode(self, parameterNode) -> None:
        self._disconnectParameterNode()
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
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

    def startJob(self, button, fn, onDone, *args, **kwargs) -> None:
        """Run ``fn`` in the background; ``button`` turns into Cancel meanwhile."""
        self.runner.applyButton = button

        def showResult(result) -> None:
            if self._parameterNode is None:  # the scene was closed while the job ran
                slicer.util.showStatusMessage("Result discarded: the scene was closed.", 5000)
                return
            onDone(result)

        self.runner.start(fn, showResult, *args, **kwargs)

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
