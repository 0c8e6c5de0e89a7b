"""The shared widget plumbing and the dependency installer against the Slicer double of
test_slicer_logic: a job still running when the user leaves the module finishes into the
module's parameter node; closing the scene cancels it and discards its result; packages are
installed through ``slicer.packaging.pip_ensure`` when that Slicer has it."""
from __future__ import annotations

import importlib
import sys
import types

import pytest

from nodsynth.errors import Cancelled
from test_slicer_logic import REPO, build_double


@pytest.fixture
def double(monkeypatch):
    modules = build_double()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(REPO))
    for name in ("qtjob", "enginepanel", "widgetbase", "dependencies"):
        monkeypatch.delitem(sys.modules, f"NodMAISICommon.{name}", raising=False)
    messages = []
    modules["slicer.util"].showStatusMessage = lambda text, ms=0: messages.append(text)
    yield types.SimpleNamespace(slicer=modules["slicer"], util=modules["slicer.util"], messages=messages)
    for name in ("qtjob", "enginepanel", "widgetbase", "dependencies"):
        sys.modules.pop(f"NodMAISICommon.{name}", None)


class ParameterNode:
    def __init__(self):
        self.connected = 0

    def connectGui(self, ui):
        self.connected += 1
        return f"tag{self.connected}"

    def disconnectGui(self, tag):
        assert tag == f"tag{self.connected}", "disconnects the tag it was given"
        self.connected -= 1


class Runner:
    def __init__(self):
        self.running, self.cancelled, self.started = False, False, None
        self.applyButton = None

    def cancel(self):
        self.cancelled = True

    def start(self, fn, onDone, *args, **kwargs):
        self.running, self.started = True, onDone


def widget(double, node):
    base = importlib.import_module("NodMAISICommon.widgetbase").ModuleWidgetBase
    w = base()
    w.ui, w.runner = object(), Runner()
    w.addObserver = w.removeObserver = lambda *a: None
    w.logic = types.SimpleNamespace(getParameterNode=lambda: node)
    w.setParameterNode(node)
    return w


def test_leaving_the_module_keeps_the_parameter_node_for_a_running_job(double):
    node, results = ParameterNode(), []
    w = widget(double, node)
    w.startJob(None, lambda: 1, lambda result: results.append((result, w._parameterNode)))
    w.exit()
    assert node.connected == 0, "the GUI no longer follows the node while the module is hidden"
    w.runner.started("mask")
    assert results == [("mask", node)], "the result reaches the module's parameter node"
    w.enter()
    assert node.connected == 1 and w._parameterNode is node


def test_closing_the_scene_cancels_the_job_and_discards_its_result(double):
    node, results = ParameterNode(), []
    w = widget(double, node)
    w.startJob(None, lambda: 1, results.append)
    w.onSceneStartClose(None, None)
    assert w.runner.cancelled and w._parameterNode is None and node.connected == 0
    w.runner.started("mask")  # the job finished before it saw the cancel
    assert results == [] and double.messages == ["Result discarded: the scene was closed."]


def test_packages_go_through_slicer_packaging_pip_ensure(double, monkeypatch):
    calls = []
    packaging = types.ModuleType("slicer.packaging")
    packaging.pip_ensure = lambda reqs, **kw: calls.append((list(reqs), kw))
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    dependencies.ensure_packages(["nodsynth-absent-package>=1,<2", "numpy>=1"])
    [(requirements, options)] = calls
    [requirement] = requirements  # numpy is met: only the missing package is asked for
    assert requirement.name == "nodsynth-absent-package"
    assert requirement.specifier.contains("1.5") and not requirement.specifier.contains("2.0")
    assert "numpy" in options["skip_packages"] and options["requester"] == "NodMAISI"

    def declined(reqs, **kw):
        raise RuntimeError("the user declined")

    packaging.pip_ensure = declined
    with pytest.raises(Cancelled, match="declined"):
        dependencies.ensure_packages(["nodsynth-absent-package>=1,<2"])


def test_without_slicer_packaging_the_user_is_asked_before_pip_install(double):
    asked, installed = [], []
    double.util.confirmOkCancelDisplay = lambda text, **kw: asked.append(text) or False
    double.util.pip_install = installed.append
    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    with pytest.raises(Cancelled):
        dependencies.ensure_packages(["nodsynth-absent-package>=1,<2"])
    assert "nodsynth-absent-package>=1,<2" in asked[0] and installed == []


def test_only_the_button_that_started_a_job_cancels_it(double):
    w = widget(double, ParameterNode())
    resize, render = object(), object()
    assert not w.toggleCancel(render), "nothing running: the click may start a job"
    w.startJob(resize, lambda: 1, lambda result: None)
    assert w.toggleCancel(render) and not w.runner.cancelled, "another button neither starts nor cancels"
    assert double.messages == ["Another job is running; wait for it or cancel it first."]
    assert w.toggleCancel(resize) and w.runner.cancelled
