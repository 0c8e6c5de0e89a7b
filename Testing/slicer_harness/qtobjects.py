"""The object model of the PythonQt stand-in: QObject with Qt properties, dynamic properties,
signals and a parent/child tree, as Slicer's embedded Python (PythonQt) exposes them.

Strict on purpose: reading or writing a property a class does not have, connecting a signal
signature it does not emit, or writing a read-only property is an ``AttributeError``/``ValueError``
(real PythonQt would often only print a warning, and the module would silently do nothing).

PythonQt facts kept here:
* a Q_PROPERTY reads and writes as an attribute (``button.text = "Run"``); its ``setX(value)``
  slot exists too; a property shadows a getter of the same name (``label.text()`` is an error);
* ``obj.connect("clicked(bool)", slot)`` and ``obj.clicked.connect(slot)`` both connect; a Python
  slot is called with as many of the signal's arguments as it accepts;
* a QObject's ``name`` is its ``objectName``; ``property(name)`` of an unset dynamic property is None.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Optional


def _normalise(signature: str) -> str:
    return re.sub(r"\s+", "", signature)


def _accepted_arguments(slot: Callable[..., Any]) -> Optional[int]:
    """How many positional arguments ``slot`` takes (None: any number)."""
    try:
        parameters = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind == parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class Signal:
    """A signal of one object: its slots in connection order (duplicates allowed, as in Qt)."""

    def __init__(self, owner: "QObject", name: str, signatures: tuple) -> None:
        self.owner, self.name, self.signatures = owner, name, signatures
        self.slots: list = []

    def connect(self, slot: Callable[..., Any]) -> bool:
        if not callable(slot):
            raise TypeError(f"{type(self.owner).__name__}.{self.name}.connect: slot {slot!r} is not callable")
        self.slots.append(slot)
        return True

    def disconnect(self, slot: Optional[Callable[..., Any]] = None) -> bool:
        if slot is None:
            had = bool(self.slots)
            self.slots.clear()
            return had
        for index, connected in enumerate(self.slots):
            if connected == slot:
                del self.slots[index]
                return True
        return False

    def emit(self, *args: Any) -> None:
        if self.owner._blocked:
            return
        for slot in list(self.slots):
            accepted = _accepted_arguments(slot)
            slot(*(args if accepted is None else args[:accepted]))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


class QObject:
    """Base of every stand-in Qt class. Subclasses declare ``_PROPS`` (stored Q_PROPERTYs with their
    defaults) and ``_SIGNALS`` (signatures); computed or read-only properties are Python properties."""

    _PROPS: dict = {"objectName": ""}
    _SIGNALS: tuple = ("destroyed()", "destroyed(QObject*)", "objectNameChanged(QString)")

    def __init__(self, parent: Optional["QObject"] = None) -> None:
        object.__setattr__(self, "_props", dict(self._all_props()))
        object.__setattr__(self, "_dynamic", {})
        object.__setattr__(self, "_signal_objects", {})
        object.__setattr__(self, "_children", [])
        object.__setattr__(self, "_parent", None)
        object.__setattr__(self, "_blocked", False)
        if parent is not None:
            self.setParent(parent)

    # ------------------------------------------------------------------ class metadata
    @classmethod
    def _all_props(cls) -> dict:
        merged: dict = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("_PROPS", {}))
        return merged

    @classmethod
    def _all_signals(cls) -> dict:
        """signal name -> its signatures, over the class hierarchy."""
        merged: dict = {}
        for klass in reversed(cls.__mro__):
            for signature in klass.__dict__.get("_SIGNALS", ()):
                name = signature.split("(")[0]
                merged.setdefault(name, ())
                merged[name] = merged[name] + (_normalise(signature),)
        return merged

    # ------------------------------------------------------------------ attributes
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        props = self._props
        if name in props:
            return props[name]
        if name == "name":
            return props["objectName"]
        signals = self._all_signals()
        if name in signals:
            return self._signal(name)
        if name.startswith("set") and len(name) > 3:
            prop = _lower_first(name[3:])
            if prop in props or isinstance(getattr(type(self), prop, None), property):
                return lambda value: setattr(self, prop, value)
        raise AttributeError(f"{type(self).__name__} (PythonQt stand-in) has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        descriptor = getattr(type(self), name, None)
        if isinstance(descriptor, property):
            if descriptor.fset is None:
                raise AttributeError(f"{type(self).__name__}.{name} is a read-only property")
            descriptor.fset(self, value)
            return
        if name == "name":
            name = "objectName"
        if name not in self._props:
            raise AttributeError(f"{type(self).__name__} (PythonQt stand-in) has no property {name!r}")
        self._write_prop(name, value)

    def _write_prop(self, name: str, value: Any) -> None:
        """Store a property; subclasses hook ``_changed_<name>(old, new)`` to emit their signals."""
        old = self._props[name]
        self._props[name] = value
        hook = getattr(self, f"_changed_{name}", None)
        if hook is not None and old != value:
            hook(old, value)

    def _signal(self, name: str) -> Signal:
        signal = self._signal_objects.get(name)
        if signal is None:
            signal = Signal(self, name, self._all_signals()[name])
            self._signal_objects[name] = signal
        return signal

    def _emit(self, name: str, *args: Any) -> None:
        self._signal(name).emit(*args)

    # ------------------------------------------------------------------ PythonQt connect by signature
    def _signal_for(self, signature: str) -> Signal:
        wanted = _normalise(signature)
        for name, signatures in self._all_signals().items():
            if wanted in signatures:
                return self._signal(name)
        raise ValueError(f"{type(self).__name__} has no signal {signature!r} (signals: "
                         f"{sorted(s for sigs in self._all_signals().values() for s in sigs)})")

    def connect(self, signature: str, slot: Callable[..., Any]) -> bool:
        return self._signal_for(signature).connect(slot)

    def disconnect(self, signature: str, slot: Optional[Callable[..., Any]] = None) -> bool:
        return self._signal_for(signature).disconnect(slot)

    def connected_slots(self, signal_name: str) -> int:
        """Test helper (not Qt): how many slots a signal has."""
        return len(self._signal(signal_name).slots)

    # ------------------------------------------------------------------ dynamic properties, tree
    def property(self, name: str) -> Any:
        if name in self._props:
            return self._props[name]
        return self._dynamic.get(name)

    def setProperty(self, name: str, value: Any) -> bool:
        if name in self._props:
            self._write_prop(name, value)
            return True
        self._dynamic[name] = value
        return False

    def setParent(self, parent: Optional["QObject"]) -> None:
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        object.__setattr__(self, "_parent", parent)
        if parent is not None:
            parent._children.append(self)

    def parent(self) -> Optional["QObject"]:
        return self._parent

    def children(self) -> list:
        return list(self._children)

    def findChildren(self, kind: Any = None, name: str = "") -> list:
        found = []
        for child in self._children:
            if (kind is None or isinstance(kind, str) or isinstance(child, kind)) and (
                    not name or child.objectName == name):
                found.append(child)
            found += child.findChildren(kind, name)
        return found

    def findChild(self, kind: Any, name: str = "") -> Optional["QObject"]:
        found = self.findChildren(kind, name)
        return found[0] if found else None

    def className(self) -> str:
        return type(self).__name__

    def inherits(self, class_name: str) -> bool:
        return any(klass.__name__ == class_name for klass in type(self).__mro__)

    def isWidgetType(self) -> bool:
        return False

    def deleteLater(self) -> None:
        self.setParent(None)

    def blockSignals(self, block: bool) -> bool:
        previous = self._blocked
        object.__setattr__(self, "_blocked", bool(block))
        return previous

    def signalsBlocked(self) -> bool:
        return self._blocked
