"""Stand-in for Slicer's ``ctk`` module: the CTK widgets our .ui files and Slicer's parameter-node GUI
connectors name (each class must exist so the real connectors' ``isinstance`` checks can run)."""
from __future__ import annotations

from typing import Optional

from qtobjects import QObject
from standin_qt import QAbstractButton, QCheckBox, QComboBox, QMessageBox, QPushButton, QWidget, _RangeValue


class ctkCollapsibleButton(QAbstractButton):
    _PROPS = {"collapsed": False, "collapsedHeight": 10, "contentsFrameShape": 0, "checkable": True, "checked": True,
              "buttonTextAlignment": 0}
    _SIGNALS = ("contentsCollapsed(bool)",)

    def _changed_collapsed(self, old: bool, new: bool) -> None:
        self._props["checked"] = not new
        self._emit("contentsCollapsed", bool(new))


class ctkCollapsibleGroupBox(QWidget):
    _PROPS = {"title": "", "collapsed": False, "checked": True}
    _SIGNALS = ("toggled(bool)",)


class ctkSliderWidget(_RangeValue):
    _PROPS = {"decimals": 2, "minimum": 0.0, "maximum": 99.0, "singleStep": 1.0, "pageStep": 10.0, "suffix": "",
              "prefix": "", "tracking": True, "spinBoxVisible": True, "popupSlider": False, "tickInterval": 0.0,
              "synchronizeSiblings": 0}
    _SIGNALS = ("valueChanged(double)", "valueIsChanging(double)", "decimalsChanged(int)")
    _VALUE_TYPE = float


class ctkDoubleSlider(_RangeValue):
    _PROPS = {"minimum": 0.0, "maximum": 99.0, "singleStep": 1.0, "pageStep": 10.0, "orientation": 1, "tracking": True}
    _SIGNALS = ("valueChanged(double)", "sliderMoved(double)")
    _VALUE_TYPE = float


class ctkDoubleSpinBox(_RangeValue):
    _PROPS = {"decimals": 2, "minimum": 0.0, "maximum": 99.99, "singleStep": 1.0, "suffix": "", "prefix": "",
              "specialValueText": "", "decimalsOption": 0}
    _SIGNALS = ("valueChanged(double)", "valueChanged(QString)", "editingFinished()")
    _VALUE_TYPE = float


class ctkRangeWidget(QWidget):
    _PROPS = {"decimals": 2, "singleStep": 1.0, "minimum": 0.0, "maximum": 99.0, "minimumValue": 0.0,
              "maximumValue": 99.0, "suffix": "", "prefix": ""}
    _SIGNALS = ("valuesChanged(double,double)", "minimumValueChanged(double)", "maximumValueChanged(double)")

    def setRange(self, minimum: float, maximum: float) -> None:
        self._props["minimum"], self._props["maximum"] = float(minimum), float(maximum)

    def setValues(self, minimum: float, maximum: float) -> None:
        self._props["minimumValue"], self._props["maximumValue"] = float(minimum), float(maximum)
        self._emit("valuesChanged", float(minimum), float(maximum))


class ctkDoubleRangeSlider(ctkRangeWidget):
    pass


class ctkComboBox(QComboBox):
    _PROPS = {"defaultText": "", "forceDefault": False}


class ctkCheckBox(QCheckBox):
    pass


class ctkCheckablePushButton(QPushButton):
    _PROPS = {"checkBoxControlsButton": True, "checkBoxControlsButtonToggleState": False, "checkState": 0}
    _SIGNALS = ("checkBoxToggled(bool)", "checkStateChanged(Qt::CheckState)")


class ctkColorPickerButton(QPushButton):
    _PROPS = {"color": None, "displayColorName": True, "dialogOptions": 0}
    _SIGNALS = ("colorChanged(QColor)",)


class ctkPathLineEdit(QWidget):
    Dirs, Files, Drives, NoDot, NoDotDot, Readable, Writable, Executable = 0x1, 0x2, 0x4, 0x2000, 0x4000, 0x10, 0x20, 0x40
    _PROPS = {"filters": 0x2, "nameFilters": (), "label": "", "showBrowseButton": True, "showHistoryButton": True,
              "settingKey": "", "sizeAdjustPolicy": 0}
    _SIGNALS = ("currentPathChanged(QString)", "validInputChanged(bool)")

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._path = ""

    @property
    def currentPath(self) -> str:
        return self._path

    @currentPath.setter
    def currentPath(self, path: str) -> None:
        path = "" if path is None else str(path)
        if path != self._path:
            self._path = path
            self._emit("currentPathChanged", path)

    def addCurrentPathToHistory(self) -> None:
        pass


class ctkDirectoryButton(QWidget):
    _PROPS = {"caption": "", "text": "", "acceptMode": 0}
    _SIGNALS = ("directoryChanged(QString)", "directorySelected(QString)")

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._directory = ""

    @property
    def directory(self) -> str:
        return self._directory

    @directory.setter
    def directory(self, path: str) -> None:
        if str(path) != self._directory:
            self._directory = str(path)
            self._emit("directoryChanged", self._directory)


class ctkMessageBox(QMessageBox):
    """The dialog ``slicer.util.messageBox`` shows. ``exec_`` answers from :data:`ANSWERS`, which a
    test fills with what the user clicks; a dialog no test expected is an error (it would block)."""

    _PROPS = {"dontShowAgainVisible": False, "dontShowAgainSettingsKey": "", "windowTitle": ""}
    SHOWN: list = []
    ANSWERS: list = []

    def exec_(self) -> int:
        ctkMessageBox.SHOWN.append({"text": self.text, "detailedText": self.detailedText,
                                    "windowTitle": self.windowTitle})
        if not ctkMessageBox.ANSWERS:
            raise AssertionError(f"an unexpected message box would wait for the user: {self.text!r}")
        return ctkMessageBox.ANSWERS.pop(0)


def reset_dialogs(answers: Optional[list] = None) -> None:
    """Test helper: forget the dialogs shown and queue the answers of the next ones."""
    ctkMessageBox.SHOWN.clear()
    ctkMessageBox.ANSWERS[:] = list(answers or [])
