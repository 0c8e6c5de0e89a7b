"""Stand-in for Slicer's ``qt`` module (PythonQt): the Qt classes the NodMAISI modules and Slicer's
own Python code use, with the object model of :mod:`qtobjects` (strict properties and signals).

Time is real: a ``QTimer`` fires only from :func:`EventLoop.process_events`, which the tests call
the way Qt's event loop would, and which records how long every callback kept the GUI thread busy.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from qtobjects import QObject

# ----------------------------------------------------------------------------------- namespace
class Qt:
    WaitCursor, ArrowCursor = 3, 0
    NoModifier, ShiftModifier, ControlModifier = 0, 0x02000000, 0x04000000
    AlignLeft, AlignRight, AlignCenter, AlignTop = 0x1, 0x2, 0x84, 0x20
    Horizontal, Vertical = 1, 2
    WidgetShortcut, WidgetWithChildrenShortcut, WindowShortcut, ApplicationShortcut = 0, 3, 1, 2
    Checked, Unchecked = 2, 0
    RichText, PlainText = 1, 0
    DisplayRole, ToolTipRole = 0, 3


class QModelIndex:
    """A cell of a model; the default-constructed index is invalid and belongs to no model."""

    def __init__(self, row: int = -1, column: int = -1, model: Optional["QAbstractItemModel"] = None) -> None:
        self._row, self._column, self._model = row, column, model

    def row(self) -> int:
        return self._row

    def column(self) -> int:
        return self._column

    def isValid(self) -> bool:
        return self._model is not None and self._row >= 0 and self._column >= 0

    def model(self) -> Optional["QAbstractItemModel"]:
        return self._model

    def data(self, role: int = 0) -> Any:
        return self._model.data(self, role) if self.isValid() else None

    def sibling(self, row: int, column: int) -> "QModelIndex":
        return self._model.index(row, column) if self._model is not None else QModelIndex()


class QAbstractItemModel(QObject):
    """A table model: ``index`` is valid only inside ``rowCount() x columnCount()``; ``data`` and
    ``headerData`` of an unknown role are None (an invalid QVariant)."""

    def rowCount(self, parent: Optional[QModelIndex] = None) -> int:
        raise NotImplementedError

    def columnCount(self, parent: Optional[QModelIndex] = None) -> int:
        raise NotImplementedError

    def index(self, row: int, column: int, parent: Optional[QModelIndex] = None) -> QModelIndex:
        if 0 <= row < self.rowCount() and 0 <= column < self.columnCount():
            return QModelIndex(row, column, self)
        return QModelIndex()


class QSortFilterProxyModel(QAbstractItemModel):
    """Qt's proxy as qMRMLTableView uses it: rows in the source's order (nothing sorts or filters
    them unless sorting is enabled, which no NodMAISI view does); indexes map one to one."""

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._source: Optional[QAbstractItemModel] = None

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._source = model

    def sourceModel(self) -> Optional[QAbstractItemModel]:
        return self._source

    def rowCount(self, parent: Optional[QModelIndex] = None) -> int:
        return self._source.rowCount() if self._source is not None else 0

    def columnCount(self, parent: Optional[QModelIndex] = None) -> int:
        return self._source.columnCount() if self._source is not None else 0

    def mapToSource(self, index: QModelIndex) -> QModelIndex:
        return self._source.index(index.row(), index.column()) if index.isValid() else QModelIndex()

    def mapFromSource(self, index: QModelIndex) -> QModelIndex:
        return self.index(index.row(), index.column()) if index.isValid() else QModelIndex()

    def data(self, index: QModelIndex, role: int = 0) -> Any:
        return self._source.data(self.mapToSource(index), role)

    def headerData(self, section: int, orientation: int, role: int = 0) -> Any:
        return self._source.headerData(section, orientation, role)


# ----------------------------------------------------------------------------------- event loop
class EventLoop:
    """Active timers and the time each GUI-thread callback took (the test's view of responsiveness):
    wall-clock seconds, and the GUI thread's own CPU seconds (the work our code did there, which does
    not grow when other programs load the machine)."""

    def __init__(self) -> None:
        self.timers: list = []
        self.callback_seconds: list = []
        self.callback_cpu_seconds: list = []

    def add(self, timer: "QTimer") -> None:
        if timer not in self.timers:
            self.timers.append(timer)

    def remove(self, timer: "QTimer") -> None:
        if timer in self.timers:
            self.timers.remove(timer)

    def process_events(self) -> int:
        """Fire every timer that is due; returns how many fired."""
        now = time.monotonic()
        fired = 0
        for timer in [t for t in self.timers if t._due <= now]:
            if timer not in self.timers:  # stopped by an earlier callback
                continue
            timer._fire()
            fired += 1
        return fired

    def timed(self, callback: Callable[[], Any]) -> Any:
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            return callback()
        finally:
            self.callback_seconds.append(time.perf_counter() - start)
            self.callback_cpu_seconds.append(time.thread_time() - start_cpu)

    def run_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Run the loop (sleeping until the next timer) until ``predicate()`` or the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.process_events()
            pending = [t._due for t in self.timers]
            wake = min(pending + [deadline, time.monotonic() + 0.02])
            time.sleep(max(0.0, min(wake - time.monotonic(), 0.02)))
        return predicate()

    def run_for(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)


EVENT_LOOP = EventLoop()


class QTimer(QObject):
    _PROPS = {"interval": 0}
    _SIGNALS = ("timeout()",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._active, self._due, self._single = False, 0.0, False

    @property
    def active(self) -> bool:
        return self._active

    def isActive(self) -> bool:
        return self._active

    def start(self, msec: Optional[int] = None) -> None:
        if msec is not None:
            self.interval = int(msec)
        self._active = True
        self._due = time.monotonic() + self.interval / 1000.0
        EVENT_LOOP.add(self)

    def stop(self) -> None:
        self._active = False
        EVENT_LOOP.remove(self)

    def _fire(self) -> None:
        if self._single:
            self.stop()
        else:
            self._due = time.monotonic() + self.interval / 1000.0
        EVENT_LOOP.timed(lambda: self._emit("timeout"))

    @staticmethod
    def singleShot(msec: int, callback: Callable[[], Any]) -> None:
        timer = QTimer()
        timer._single = True
        timer.connect("timeout()", callback)
        timer.start(msec)


# ----------------------------------------------------------------------------------- settings, files
SETTINGS_STORE: dict = {}
"""Every QSettings of the process reads and writes this (the harness clears it between tests)."""


class QSettings(QObject):
    IniFormat, NativeFormat = 1, 0
    UserScope, SystemScope = 0, 1

    def __init__(self, *args: Any) -> None:
        super().__init__(None)

    def value(self, key: str, default: Any = None) -> Any:
        return SETTINGS_STORE.get(key, default)

    def setValue(self, key: str, value: Any) -> None:
        SETTINGS_STORE[key] = value

    def contains(self, key: str) -> bool:
        return key in SETTINGS_STORE

    def remove(self, key: str) -> None:
        for stored in [k for k in SETTINGS_STORE if k == key or k.startswith(key + "/")]:
            del SETTINGS_STORE[stored]

    def allKeys(self) -> list:
        return sorted(SETTINGS_STORE)

    def sync(self) -> None:
        pass


class QFile(QObject):
    ReadOnly, WriteOnly, ReadWrite, Text = 1, 2, 3, 16

    def __init__(self, path: str) -> None:
        super().__init__(None)
        self._path = str(path)

    def exists(self) -> bool:
        import os

        return os.path.isfile(self._path)

    def open(self, mode: int) -> bool:
        return self.exists()

    def close(self) -> None:
        pass

    def fileName(self) -> str:
        return self._path


class QUiLoader(QObject):
    def load(self, qfile: QFile, parent: Optional["QWidget"] = None) -> Optional["QWidget"]:
        from uiloader import build_ui

        widget = build_ui(qfile.fileName())
        if widget is not None and parent is not None:
            widget.setParent(parent)
        return widget


class QIcon:
    def __init__(self, path: str = "") -> None:
        self._path = path

    def isNull(self) -> bool:
        return not self._path


class QColor:
    def __init__(self, *args: Any) -> None:
        self._args = args

    def name(self, *args: Any) -> str:
        return str(self._args[0]) if self._args and isinstance(self._args[0], str) else "#000000"

    def isValid(self) -> bool:
        return bool(self._args)


class QSizePolicy:
    Fixed, Minimum, Maximum, Preferred, Expanding, MinimumExpanding, Ignored = 0, 1, 4, 5, 7, 3, 13

    def __init__(self, horizontal: int = 5, vertical: int = 5) -> None:
        self._policy = (horizontal, vertical)


class QKeySequence:
    def __init__(self, text: str = "") -> None:
        self._text = str(text)

    def toString(self) -> str:
        return self._text


# ----------------------------------------------------------------------------------- layouts
class QLayout(QObject):
    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(None)
        self._items: list = []
        self._owner: Optional[QWidget] = None
        if parent is not None:
            parent.setLayout(self)

    def _adopt(self, widget: "QWidget") -> None:
        if self._owner is not None:
            widget.setParent(self._owner)

    def addWidget(self, widget: "QWidget", *args: Any) -> None:
        self._items.append(widget)
        self._adopt(widget)

    def addLayout(self, layout: "QLayout", *args: Any) -> None:
        self._items.append(layout)
        if self._owner is not None:
            layout._set_owner(self._owner)

    def addStretch(self, *args: Any) -> None:
        self._items.append(None)

    def addSpacing(self, *args: Any) -> None:
        self._items.append(None)

    def addItem(self, item: Any) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def _set_owner(self, owner: "QWidget") -> None:
        self._owner = owner
        self.setParent(owner)
        for item in self._items:
            if isinstance(item, QWidget):
                item.setParent(owner)
            elif isinstance(item, QLayout):
                item._set_owner(owner)


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QGridLayout(QLayout):
    def addWidget(self, widget: "QWidget", *args: Any) -> None:
        super().addWidget(widget)


class QFormLayout(QLayout):
    def addRow(self, *args: Any) -> None:
        for item in args:
            if isinstance(item, str):
                item = QLabel(item)
            if isinstance(item, QLayout):
                self.addLayout(item)
            else:
                self.addWidget(item)

    def setWidget(self, row: int, role: int, widget: "QWidget") -> None:
        self.addWidget(widget)


# ----------------------------------------------------------------------------------- widgets
class QWidget(QObject):
    _PROPS = {"enabled": True, "visible": True, "toolTip": "", "statusTip": "", "whatsThis": "",
              "styleSheet": "", "windowTitle": "", "minimumWidth": 0, "maximumWidth": 16777215,
              "minimumHeight": 0, "maximumHeight": 16777215, "geometry": None, "sizePolicy": None,
              "focusPolicy": 0, "accessibleName": ""}

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._layout: Optional[QLayout] = None

    def isWidgetType(self) -> bool:
        return True

    def layout(self) -> Optional[QLayout]:
        return self._layout

    def setLayout(self, layout: QLayout) -> None:
        self._layout = layout
        layout._set_owner(self)

    def show(self) -> None:
        self.visible = True

    def hide(self) -> None:
        self.visible = False

    def isVisible(self) -> bool:
        return self.visible

    def isEnabled(self) -> bool:
        return self.enabled

    def setFocus(self, *args: Any) -> None:
        pass

    def update(self) -> None:
        pass

    def repaint(self) -> None:
        pass

    def adjustSize(self) -> None:
        pass

    def resize(self, *args: Any) -> None:
        pass

    def close(self) -> bool:
        self.visible = False
        return True

    def addAction(self, action: "QAction") -> None:
        action.setParent(self)


class QFrame(QWidget):
    _PROPS = {"frameShape": 0, "frameShadow": 0}


class QLabel(QFrame):
    _PROPS = {"text": "", "wordWrap": False, "alignment": 0, "textFormat": 0, "openExternalLinks": False,
              "pixmap": None, "textInteractionFlags": 0}

    def __init__(self, text: Any = "", parent: Optional[QObject] = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self.text = str(text)


class QAbstractButton(QWidget):
    _PROPS = {"text": "", "checkable": False, "checked": False, "icon": None, "shortcut": None, "autoRepeat": False}
    _SIGNALS = ("clicked()", "clicked(bool)", "toggled(bool)", "pressed()", "released()")

    def __init__(self, text: Any = "", parent: Optional[QObject] = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self.text = str(text)

    def _changed_checked(self, old: bool, new: bool) -> None:
        self._emit("toggled", bool(new))

    def click(self) -> None:
        """What a user's click does: toggles a checkable button, then ``clicked(checked)``."""
        if not self.enabled:
            return
        if self.checkable:
            self.checked = not self.checked
        self._emit("clicked", bool(self.checked))

    def isChecked(self) -> bool:
        return bool(self.checked)


class QPushButton(QAbstractButton):
    _PROPS = {"default": False, "autoDefault": False, "flat": False}

    def setMenu(self, menu: "QMenu") -> None:
        menu.setParent(self)


class QToolButton(QAbstractButton):
    _PROPS = {"popupMode": 0, "toolButtonStyle": 0}

    def setMenu(self, menu: "QMenu") -> None:
        menu.setParent(self)

    def setDefaultAction(self, action: "QAction") -> None:
        self._default_action = action

    def defaultAction(self) -> "QAction":
        return self._default_action


class QCheckBox(QAbstractButton):
    _PROPS = {"checkable": True, "tristate": False}
    _SIGNALS = ("stateChanged(int)",)

    def _changed_checked(self, old: bool, new: bool) -> None:
        self._emit("stateChanged", Qt.Checked if new else Qt.Unchecked)
        self._emit("toggled", bool(new))


class QRadioButton(QAbstractButton):
    _PROPS = {"checkable": True}


class QComboBox(QWidget):
    _PROPS = {"editable": False, "maxVisibleItems": 10, "sizeAdjustPolicy": 0, "placeholderText": ""}
    _SIGNALS = ("currentIndexChanged(int)", "currentIndexChanged(QString)", "currentTextChanged(QString)",
                "activated(int)", "activated(QString)")

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._items: list = []
        self._index = -1

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        index = int(index)
        if not -1 <= index < len(self._items):
            index = -1  # Qt ignores an out-of-range index by clearing the selection
        if index != self._index:
            self._index = index
            self._emit("currentIndexChanged", index)
            self._emit("currentTextChanged", self.currentText)

    @property
    def currentText(self) -> str:
        return self._items[self._index][0] if self._index >= 0 else ""

    @currentText.setter
    def currentText(self, text: str) -> None:
        index = self.findText(text)
        if index >= 0:
            self.currentIndex = index

    @property
    def currentData(self) -> Any:
        return self._items[self._index][1] if self._index >= 0 else None

    @property
    def count(self) -> int:
        return len(self._items)

    def addItem(self, *args: Any) -> None:
        if args and isinstance(args[0], QIcon):
            args = args[1:]
        text, data = (str(args[0]), args[1] if len(args) > 1 else None)
        self._items.append((text, data))
        if self._index < 0:
            self.currentIndex = 0

    def addItems(self, texts: list) -> None:
        for text in texts:
            self.addItem(text)

    def clear(self) -> None:
        self._items = []
        if self._index != -1:
            self._index = -1
            self._emit("currentIndexChanged", -1)
            self._emit("currentTextChanged", "")

    def findText(self, text: str) -> int:
        for index, (item_text, _) in enumerate(self._items):
            if item_text == text:
                return index
        return -1

    def findData(self, data: Any) -> int:
        for index, (_, item_data) in enumerate(self._items):
            if item_data == data:
                return index
        return -1

    def itemText(self, index: int) -> str:
        return self._items[index][0] if 0 <= index < len(self._items) else ""

    def itemData(self, index: int) -> Any:
        return self._items[index][1] if 0 <= index < len(self._items) else None

    def setItemText(self, index: int, text: str) -> None:
        if 0 <= index < len(self._items):
            self._items[index] = (str(text), self._items[index][1])
            if index == self._index:
                self._emit("currentTextChanged", self.currentText)

    def setCurrentIndex(self, index: int) -> None:
        self.currentIndex = index

    def setCurrentText(self, text: str) -> None:
        self.currentText = text


class _RangeValue(QWidget):
    """A value clamped to [minimum, maximum], as QSpinBox/QSlider/QProgressBar keep it."""

    _PROPS = {"minimum": 0, "maximum": 99, "singleStep": 1}
    _VALUE_TYPE: type = int

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._value = self._VALUE_TYPE(self.minimum)

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        clamped = self._VALUE_TYPE(min(max(self._VALUE_TYPE(value), self.minimum), self.maximum))
        if clamped != self._value:
            self._value = clamped
            self._emit("valueChanged", clamped)

    def setRange(self, minimum: Any, maximum: Any) -> None:
        self._props["minimum"], self._props["maximum"] = minimum, max(minimum, maximum)
        self.value = self._value

    def _changed_minimum(self, old: Any, new: Any) -> None:
        if self.maximum < new:
            self._props["maximum"] = new
        self.value = self._value

    def _changed_maximum(self, old: Any, new: Any) -> None:
        if self.minimum > new:
            self._props["minimum"] = new
        self.value = self._value


class QSpinBox(_RangeValue):
    _PROPS = {"suffix": "", "prefix": "", "specialValueText": "", "wrapping": False, "readOnly": False,
              "keyboardTracking": True}
    _SIGNALS = ("valueChanged(int)", "valueChanged(QString)", "textChanged(QString)", "editingFinished()")


class QDoubleSpinBox(_RangeValue):
    _PROPS = {"suffix": "", "prefix": "", "specialValueText": "", "decimals": 2, "maximum": 99.99,
              "minimum": 0.0, "singleStep": 1.0, "readOnly": False, "keyboardTracking": True}
    _SIGNALS = ("valueChanged(double)", "valueChanged(QString)", "textChanged(QString)", "editingFinished()")
    _VALUE_TYPE = float


class QSlider(_RangeValue):
    _PROPS = {"orientation": Qt.Horizontal, "pageStep": 10, "tickInterval": 0, "tracking": True}
    _SIGNALS = ("valueChanged(int)", "sliderMoved(int)", "sliderReleased()")


class QProgressBar(_RangeValue):
    _PROPS = {"maximum": 100, "format": "%p%", "textVisible": True, "orientation": Qt.Horizontal,
              "invertedAppearance": False}
    _SIGNALS = ("valueChanged(int)",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._value = -1

    def reset(self) -> None:
        self._value = -1


class QLineEdit(QWidget):
    Normal, NoEcho, Password, PasswordEchoOnEdit = 0, 1, 2, 3
    _PROPS = {"placeholderText": "", "echoMode": 0, "readOnly": False, "maxLength": 32767, "clearButtonEnabled": False}
    _SIGNALS = ("textChanged(QString)", "textEdited(QString)", "editingFinished()", "returnPressed()")

    def __init__(self, text: Any = "", parent: Optional[QObject] = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self._text = str(text)

    @property
    def text(self) -> str:
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        value = str(value)
        if value != self._text:
            self._text = value
            self._emit("textChanged", value)

    def clear(self) -> None:
        self.text = ""


class QTextEdit(QFrame):
    _PROPS = {"readOnly": False, "lineWrapMode": 1, "html": ""}
    _SIGNALS = ("textChanged()",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._plain = ""

    def toPlainText(self) -> str:
        return self._plain

    def setPlainText(self, text: str) -> None:
        self._plain = str(text)
        self._emit("textChanged")


class QAbstractItemView(QFrame):
    _PROPS = {"selectionMode": 1, "selectionBehavior": 0, "editTriggers": 0, "alternatingRowColors": False}
    _SIGNALS = ("clicked(QModelIndex)", "doubleClicked(QModelIndex)", "activated(QModelIndex)",
                "pressed(QModelIndex)")


class QTableView(QAbstractItemView):
    _PROPS = {"sortingEnabled": False, "showGrid": True}

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._model: Optional[QAbstractItemModel] = None

    def setModel(self, model: QAbstractItemModel) -> None:
        self._model = model

    def model(self) -> Optional[QAbstractItemModel]:
        return self._model

    def click(self, row: int, column: int) -> None:
        """Test helper (not Qt): the user clicks the cell the view shows at ``(row, column)``."""
        index = self._model.index(row, column)
        if not index.isValid():
            raise IndexError(f"{self.objectName}: no cell ({row}, {column}) in a {self._model.rowCount()} x "
                             f"{self._model.columnCount()} view")
        self._emit("clicked", index)


class QGroupBox(QWidget):
    _PROPS = {"title": "", "checkable": False, "checked": True, "flat": False}
    _SIGNALS = ("toggled(bool)", "clicked(bool)")


class QMainWindow(QWidget):
    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._status = QStatusBar(self)

    def statusBar(self) -> "QStatusBar":
        return self._status


class QStatusBar(QWidget):
    _SIGNALS = ("messageChanged(QString)",)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._messages: list = []

    def showMessage(self, message: str, timeout: int = 0) -> None:
        self._messages.append(str(message))
        self._emit("messageChanged", str(message))

    def currentMessage(self) -> str:
        return self._messages[-1] if self._messages else ""


class QDialog(QWidget):
    Accepted, Rejected = 1, 0
    _PROPS = {"modal": False}
    _SIGNALS = ("accepted()", "rejected()", "finished(int)")

    def exec_(self) -> int:
        return self.Accepted

    def exec(self) -> int:
        return self.exec_()

    def accept(self) -> None:
        self._emit("accepted")

    def reject(self) -> None:
        self._emit("rejected")


class QMessageBox(QDialog):
    NoButton, Ok, Cancel, Yes, No = 0, 0x400, 0x400000, 0x4000, 0x10000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4
    _PROPS = {"text": "", "informativeText": "", "detailedText": "", "icon": 0, "standardButtons": 0x400}


class QMenu(QWidget):
    _PROPS = {"title": ""}
    _SIGNALS = ("triggered(QAction*)", "aboutToShow()")

    def addAction(self, action: Any) -> Any:
        if isinstance(action, str):
            action = QAction(action, self)
        action.setParent(self)
        return action

    def actions(self) -> list:
        return [c for c in self.children() if isinstance(c, QAction)]


class QAction(QObject):
    _PROPS = {"text": "", "checkable": False, "checked": False, "enabled": True, "statusTip": "", "toolTip": "",
              "shortcut": None, "visible": True}
    _SIGNALS = ("triggered()", "triggered(bool)", "toggled(bool)", "changed()")

    def __init__(self, text: Any = "", parent: Optional[QObject] = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self.text = str(text)

    def trigger(self) -> None:
        if self.enabled:
            if self.checkable:
                self.checked = not self.checked
            self._emit("triggered", bool(self.checked))


class QShortcut(QObject):
    """A keyboard shortcut; ``activated()`` fires when the test presses its key (:meth:`press`)."""

    _PROPS = {"key": None, "enabled": True, "context": Qt.WindowShortcut, "autoRepeat": True}
    _SIGNALS = ("activated()", "activatedAmbiguously()")

    def __init__(self, *args: Any) -> None:
        parent = next((a for a in args if isinstance(a, QObject)), None)
        key = next((a for a in args if isinstance(a, (QKeySequence, str))), None)
        super().__init__(parent)
        if key is not None:
            self.key = key if isinstance(key, QKeySequence) else QKeySequence(key)

    def press(self) -> None:
        """Test helper (not Qt): the user presses this shortcut's key."""
        if self.enabled:
            EVENT_LOOP.timed(lambda: self._emit("activated"))


class QApplication:
    """Static side of the application (``slicer.app`` is the instance)."""

    override_cursors: list = []

    @staticmethod
    def setOverrideCursor(cursor: Any) -> None:
        QApplication.override_cursors.append(cursor)

    @staticmethod
    def restoreOverrideCursor() -> None:
        if QApplication.override_cursors:
            QApplication.override_cursors.pop()

    @staticmethod
    def processEvents(*args: Any) -> None:
        EVENT_LOOP.process_events()


class QElapsedTimer:
    def __init__(self) -> None:
        self._start = time.monotonic()

    def start(self) -> None:
        self._start = time.monotonic()

    def elapsed(self) -> int:
        return int((time.monotonic() - self._start) * 1000)


class QDesktopServices:
    opened: list = []

    @staticmethod
    def openUrl(url: Any) -> bool:
        QDesktopServices.opened.append(url)
        return True


class QUrl:
    TolerantMode = 0

    def __init__(self, text: str = "", mode: int = 0) -> None:
        self._text = str(text)

    @staticmethod
    def fromLocalFile(path: str) -> "QUrl":
        return QUrl("file://" + str(path))

    def toString(self) -> str:
        return self._text
