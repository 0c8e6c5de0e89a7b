"""The "Engine" section every synthesis module shows: where the engine runs, weights, server.

Values live in ``qt.QSettings`` (``settings.py``), never in the scene. Before patient data goes
to a server the user is asked once per server and session (``confirm_upload``).
"""
from __future__ import annotations

import ctk
import qt
import slicer

from nodsynth.errors import Cancelled

from .engines import baseline_controlnet_warning, connection_report, local_devices_text, needs_upload_consent
from .settings import (EngineSettings, load_engine_settings, normalize_server_url, save_engine_settings,
                       validated)

_CONSENTED_URLS: set[str] = set()
"""Servers the user agreed to send data to during this Slicer session."""


class EnginePanel:
    """Builds the engine-location widgets into ``parentLayout`` and keeps them in QSettings."""

    def __init__(self, parentLayout) -> None:
        self.collapsible = ctk.ctkCollapsibleButton()
        self.collapsible.text = "Engine location"
        self.collapsible.collapsed = True
        parentLayout.addWidget(self.collapsible)
        form = qt.QFormLayout(self.collapsible)

        self.locationComboBox = qt.QComboBox()
        self.locationComboBox.addItem("This computer", "local")
        self.locationComboBox.addItem("Remote server", "remote")
        form.addRow("Run on:", self.locationComboBox)

        self.deviceComboBox = qt.QComboBox()
        for device in ("auto", "cpu", "cuda"):
            self.deviceComboBox.addItem(device)
        self.deviceComboBox.toolTip = "auto: the GPU when torch sees one, else the CPU"
        form.addRow("Device:", self.deviceComboBox)
        self.devicesLabel = qt.QLabel("(looked up when this section is opened)")
        self.devicesLabel.wordWrap = True
        form.addRow("Found:", self.devicesLabel)
        self._devicesListed = False
        self.collapsible.connect("contentsCollapsed(bool)", self._listDevices)

        self.weightsPathLineEdit = ctk.ctkPathLineEdit()
        self.weightsPathLineEdit.filters = ctk.ctkPathLineEdit.Dirs
        self.weightsPathLineEdit.toolTip = ("Folder with the model checkpoints; empty: NODSYNTH_WEIGHTS or the "
                                            "nodsynth config file. Weights are never downloaded.")
        form.addRow("Weights folder:", self.weightsPathLineEdit)

        self.networkConfigLineEdit = qt.QLineEdit()
        self.networkConfigLineEdit.placeholderText = "maisi_v2 (published)"
        self.networkConfigLineEdit.toolTip = ("NodMAISI network configuration: empty for the published MAISI-v2 one, "
                                              "else a configuration name or a JSON file matching your checkpoints")
        form.addRow("Network config:", self.networkConfigLineEdit)

        self.allowBaselineCheckBox = qt.QCheckBox("Allow MAISI-v2's baseline ControlNet")
        self.allowBaselineCheckBox.toolTip = baseline_controlnet_warning()
        form.addRow(self.allowBaselineCheckBox)

        self.serverUrlLineEdit = qt.QLineEdit()
        self.serverUrlLineEdit.placeholderText = "http://gpu-server:8000"
        form.addRow("Server URL:", self.serverUrlLineEdit)

        self.tokenLineEdit = qt.QLineEdit()
        self.tokenLineEdit.echoMode = qt.QLineEdit.Password
        self.tokenLineEdit.toolTip = "Bearer token of the server (kept in the application settings, not in the scene)"
        form.addRow("Access token:", self.tokenLineEdit)

        self.testButton = qt.QPushButton("Test connection")
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        form.addRow(self.testButton)
        form.addRow(self.statusLabel)

        self.releaseButton = qt.QPushButton("Release GPU memory")
        self.releaseButton.toolTip = ("Unload the networks the job process keeps for the next run (shared by every "
                                      "NodMAISI module) and give CUDA's cached memory back; the next run loads them again")
        form.addRow(self.releaseButton)

        self._load()
        self.locationComboBox.connect("currentIndexChanged(int)", self._save)
        self.deviceComboBox.connect("currentIndexChanged(int)", self._save)
        self.weightsPathLineEdit.connect("currentPathChanged(QString)", self._save)
        self.networkConfigLineEdit.connect("editingFinished()", self._save)
        self.allowBaselineCheckBox.connect("toggled(bool)", self._save)
        self.serverUrlLineEdit.connect("editingFinished()", self._save)
        self.tokenLineEdit.connect("editingFinished()", self._save)
        self.testButton.connect("clicked(bool)", self.onTestConnection)

    def _listDevices(self, collapsed: bool) -> None:
        """Probe the devices the first time the section opens, not when the module loads: that imports
        torch and opens a CUDA context, and a broken torch must not break the module."""
        if collapsed or self._devicesListed:
            return
        self._devicesListed = True
        try:
            self.devicesLabel.text = local_devices_text()
        except Exception as exc:  # e.g. a torch built for another CUDA driver
            self.devicesLabel.text = f"could not list the devices: {exc}"

    def _load(self) -> None:
        settings = load_engine_settings(qt.QSettings())
        self.locationComboBox.setCurrentIndex(max(0, self.locationComboBox.findData(settings.location)))
        if self.deviceComboBox.findText(settings.device) < 0:  # e.g. "cuda:1", kept rather than lost
            self.deviceComboBox.addItem(settings.device)
        self.deviceComboBox.setCurrentText(settings.device)
        self.weightsPathLineEdit.currentPath = settings.weights_dir
        self.networkConfigLineEdit.text = settings.network_config
        self.allowBaselineCheckBox.checked = settings.allow_baseline_controlnet
        self.serverUrlLineEdit.text = settings.server_url
        self.tokenLineEdit.text = settings.token
        self._updateEnabled()

    def _updateEnabled(self) -> None:
        remote = self.locationComboBox.currentData == "remote"
        for widget in (self.serverUrlLineEdit, self.tokenLineEdit, self.testButton):
            widget.enabled = remote
        self.weightsPathLineEdit.enabled = not remote
        self.networkConfigLineEdit.enabled = not remote
        self.allowBaselineCheckBox.enabled = not remote

    def settings(self) -> EngineSettings:
        """The settings the widgets show now (not yet validated)."""
        return EngineSettings(location=self.locationComboBox.currentData or "local",
                              weights_dir=self.weightsPathLineEdit.currentPath,
                              device=self.deviceComboBox.currentText,
                              server_url=self.serverUrlLineEdit.text, token=self.tokenLineEdit.text,
                              network_config=self.networkConfigLineEdit.text,
                              allow_baseline_controlnet=bool(self.allowBaselineCheckBox.checked))

    def _save(self, *_args) -> None:
        settings = self.settings()
        if settings.server_url.strip():
            try:
                url, note = normalize_server_url(settings.server_url)
            except Exception as exc:
                self.statusLabel.text = str(exc)
            else:
                self.serverUrlLineEdit.text = url
                self.statusLabel.text = note or ""
        save_engine_settings(qt.QSettings(), self.settings())
        self._updateEnabled()

    def onTestConnection(self) -> None:
        self._save()
        with slicer.util.tryWithErrorDisplay("Connection test failed.", waitCursor=True):
            self.statusLabel.text = connection_report(self.settings())

    def confirm_upload(self, interactive: bool = True) -> EngineSettings:
        """Validated settings; for a remote server, the user's consent to send the data first."""
        settings = validated(self.settings())
        if needs_upload_consent(settings, _CONSENTED_URLS):
            if not interactive or not slicer.util.confirmYesNoDisplay(
                    f"The images of this patient will be sent to {settings.server_url} for processing.\n\n"
                    "Only continue if that server is allowed to receive this patient's data.",
                    windowTitle="Send patient data to a server?"):
                raise Cancelled(f"sending data to {settings.server_url} was not allowed")
            _CONSENTED_URLS.add(settings.server_url)
        return settings
