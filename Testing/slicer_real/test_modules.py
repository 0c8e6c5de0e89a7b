"""Every module loads in Slicer's real code: its parameter node is built by the real wrapper, every
field round-trips every type it allows, every .ui parameter widget gets the real GUI connector, the
panel builds, and entering/leaving the module does not pile up connections."""
from __future__ import annotations

import importlib
import typing

import pytest

import modules as harness_modules
import slicer
import slicer_harness
from slicer.parameterNodeWrapper import createGuiConnector, getNodeTypes, isNodeOrUnionOfNodes, splitAnnotations

MODULES = slicer_harness.MODULE_FOLDERS


def wrapper_class(module_name):
    python_module = importlib.import_module(module_name)
    return getattr(python_module, f"{module_name}ParameterNode"), getattr(python_module, f"{module_name}Logic")


def allows_none(datatype) -> bool:
    """A single node class holds None (the wrapper's node serializer); a Union only when None is in it."""
    bare, _ = splitAnnotations(datatype)
    if typing.get_origin(bare) is typing.Union:
        return type(None) in typing.get_args(bare)
    return isNodeOrUnionOfNodes(bare)


def sample_values(datatype, default):
    """Values a field of ``datatype`` must accept: a node of every allowed class (and None when the type
    allows it), both bool values, the bounds and default of a range, every choice, text."""
    from slicer.parameterNodeWrapper import Choice, WithinRange, findFirstAnnotation

    bare, annotations = splitAnnotations(datatype)
    if isNodeOrUnionOfNodes(bare):
        values = [slicer.mrmlScene.AddNewNodeByClass(t, f"sample {t}") for t in getNodeTypes(bare)]
        return values + ([None] if allows_none(datatype) else [])
    choice = findFirstAnnotation(annotations, Choice)
    if choice is not None:
        return list(choice.choices)
    if bare is bool:
        return [True, False]
    within = findFirstAnnotation(annotations, WithinRange)
    if within is not None:
        return [bare(within.minimum), bare(within.maximum), default]
    if bare is str:
        return ["", "some text"]
    return [default]


@pytest.mark.parametrize("name", MODULES)
def test_logic_creates_its_parameter_node_with_the_real_wrapper(name):
    wrapper, logic_class = wrapper_class(name)
    node = logic_class().getParameterNode()
    assert type(node) is wrapper and node.parameterNode.GetAttribute("ModuleName") == name
    for field, info in wrapper.allParameters.items():
        assert node.getValue(field) == info.default.value, f"{name}.{field} does not start at its default"


@pytest.mark.parametrize("name", MODULES)
def test_every_field_round_trips_each_type_it_allows(name):
    wrapper, logic_class = wrapper_class(name)
    node = logic_class().getParameterNode()
    checked = 0
    for field, info in wrapper.allParameters.items():
        for value in sample_values(wrapper.dataType(field), info.default.value):
            node.setValue(field, value)
            again = logic_class().getParameterNode()  # a second wrapper reads what the first wrote
            assert node.getValue(field) == value and again.getValue(field) == value, f"{name}.{field} = {value!r}"
            checked += 1
    assert checked >= len(wrapper.allParameters)


@pytest.mark.parametrize("name", MODULES)
def test_every_ui_parameter_widget_gets_the_real_gui_connector(name):
    wrapper, _ = wrapper_class(name)
    harness_modules.load_module(name)
    ui = slicer.util.childWidgetVariables(slicer.util.loadUI(str(slicer_harness.REPO / name / "Resources" / "UI" / f"{name}.ui")))
    bound = {w.property("SlicerParameterName"): w for w in vars(ui).values() if w.property("SlicerParameterName")}
    assert bound, f"{name}.ui binds no widget"
    for field, widget in bound.items():
        connector = createGuiConnector(widget, wrapper.dataType(field))  # raises when none can represent it
        assert connector.widget() is widget
        if widget.className() == "qMRMLNodeComboBox" and widget.noneEnabled:
            assert allows_none(wrapper.dataType(field)), f"{name}.ui offers None for {field}, which it cannot hold"


@pytest.mark.parametrize("name", MODULES)
def test_the_panel_builds_and_follows_its_parameter_node(name):
    widget = harness_modules.create_widget(name)
    try:
        node = widget._parameterNode
        assert node is not None and widget._parameterNodeGuiTag is not None
        ui = widget.ui
        bound = {w.property("SlicerParameterName"): w for w in vars(ui).values() if w.property("SlicerParameterName")}
        choice_fields = [f for f, w in bound.items() if w.className() == "QComboBox"]
        assert choice_fields, f"{name} has no choice bound to a combo box"
        field = choice_fields[0]
        box = bound[field]
        choices = choice_values(wrapper_class(name)[0], field)
        assert box.count == len(choices)
        box.currentIndex = box.count - 1  # the user picks the last choice
        assert node.getValue(field) == choices[-1]
        node.setValue(field, choices[0])  # the parameter changes (e.g. a loaded scene)
        assert box.currentIndex == 0
    finally:
        harness_modules.unload(widget)


def choice_values(wrapper, field) -> list:
    from slicer.parameterNodeWrapper import Choice, findFirstAnnotation

    return list(findFirstAnnotation(splitAnnotations(wrapper.dataType(field))[1], Choice).choices)


ENGINE_MODULES = ("LesionAugment", "NodMAISI", "HRLDMInpaint")


@pytest.mark.parametrize("name", ENGINE_MODULES)
def test_the_engine_choice_shows_labels_and_keeps_engine_names_as_values(name):
    """Issue 21 (8): the drop-down showed 'nodmaisi', 'classic'; it shows the labels, the parameter keeps names."""
    from NodMAISICommon.engines import ENGINE_LABELS

    widget = harness_modules.create_widget(name)
    try:
        node, box = widget._parameterNode, widget.ui.engineComboBox
        choices = choice_values(wrapper_class(name)[0], "engine")
        for _ in range(2):  # the GUI is connected again on every enter
            assert [box.itemText(i) for i in range(box.count)] == [ENGINE_LABELS[c] for c in choices]
            box.currentIndex = box.count - 1
            assert node.engine == choices[-1]
            node.engine = choices[0]
            assert box.currentText == ENGINE_LABELS[choices[0]]
            harness_modules.exit(widget)
            harness_modules.enter(widget)
    finally:
        harness_modules.unload(widget)


@pytest.mark.parametrize("name", MODULES)
def test_entering_and_leaving_three_times_leaves_one_connection_per_widget(name):
    """Issue 11 (12): Slicer 5.8's connectGui returns no tag; the panel must still disconnect."""
    widget = harness_modules.create_widget(name)
    try:
        bound = [w for w in vars(widget.ui).values() if w.property("SlicerParameterName")]
        signals = {w: ("currentIndexChanged" if w.className() == "QComboBox" else
                       "stateChanged" if w.className() == "QCheckBox" else
                       "currentNodeChanged" if w.className() == "qMRMLNodeComboBox" else "valueChanged")
                   for w in bound if w.className() in ("QComboBox", "QCheckBox", "qMRMLNodeComboBox", "QSpinBox",
                                                        "ctkSliderWidget")}
        before = {w: w.connected_slots(s) for w, s in signals.items()}
        for _ in range(3):
            harness_modules.exit(widget)
            harness_modules.enter(widget)
        after = {w: w.connected_slots(s) for w, s in signals.items()}
        assert after == before, {w.objectName: (before[w], after[w]) for w in signals if before[w] != after[w]}
        harness_modules.exit(widget)
        assert all(w.connected_slots(s) == before[w] - 1 for w, s in signals.items()), "leaving disconnects"
    finally:
        harness_modules.unload(widget)


@pytest.mark.parametrize("name", MODULES)
def test_module_metadata(name):
    parent = harness_modules.load_module(name)
    assert parent.title == name and list(parent.categories) == ["NodMAISI"]
    assert parent.icon is not None and not parent.icon.isNull(), "Resources/Icons/<module>.png is found"
    assert name in slicer.selfTests
