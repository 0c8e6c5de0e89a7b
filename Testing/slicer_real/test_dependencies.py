"""Packages are installed after the user agrees, with Slicer's own numpy / SimpleITK / requests pinned;
a self-test under ``Slicer --testing`` installs without asking (issue 21 (5)); headless callers are told
what to install."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import qt
import slicer
import standin_ctk
from conftest import VERSION
from NodMAISICommon.requirements import PROTECTED_PACKAGES, installed_version
from nodsynth.errors import Cancelled, NodsynthError

ABSENT = "nodsynth-absent-package>=1,<2"


def pins_in(path: str) -> set:
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def expected_pins() -> set:
    return {f"{name}=={installed_version(name)}" for name in PROTECTED_PACKAGES if installed_version(name)}


@pytest.fixture
def installs(monkeypatch) -> list:
    """``(requirements, pins)`` of every pip run, recorded where this Slicer version's own code would start
    pip: ``slicer.packaging.pip_install`` (5.12) or ``slicer.util._executePythonModule`` (5.8, 5.10)."""
    recorded: list = []
    if VERSION == "v5.12.3":
        import slicer.packaging as packaging

        def record(requirements, constraints=None, **options):
            recorded.append((list(requirements), pins_in(constraints)))

        monkeypatch.setattr(packaging, "pip_install", record)
    else:
        assert importlib.import_module("NodMAISICommon.dependencies").slicer_pip_ensure() is None, \
            f"Slicer {VERSION} has no slicer.packaging"

        def record(module, args):
            assert module == "pip" and args[0] == "install" and args[1] == "-c"
            recorded.append((list(args[3:]), pins_in(args[2])))

        monkeypatch.setattr(slicer.util, "_executePythonModule", record)
    return recorded


def test_packages_are_installed_with_slicers_own_packages_pinned(installs):
    """Issue 11 (7): through slicer.packaging.pip_ensure (5.12) or slicer.util.pip_install (5.8, 5.10),
    always with a constraints file that pins the installed numpy / SimpleITK / requests."""
    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    standin_ctk.reset_dialogs([qt.QMessageBox.Ok])
    dependencies.ensure_packages([ABSENT, "numpy>=1"])
    [(requirements, pins)] = installs
    from packaging.requirements import Requirement

    [requirement] = [Requirement(str(r)) for r in requirements]  # numpy is met: only the missing package
    assert requirement.name == "nodsynth-absent-package"
    assert requirement.specifier.contains("1.5") and not requirement.specifier.contains("2.0")
    assert pins == expected_pins() and any(p.startswith("numpy==") for p in pins)
    assert len(standin_ctk.ctkMessageBox.SHOWN) == 1, "the user was asked first"

    standin_ctk.reset_dialogs([qt.QMessageBox.Cancel])
    with pytest.raises(Cancelled):
        dependencies.ensure_packages([ABSENT])
    assert len(installs) == 1, "nothing installed after the user declined"


def test_a_self_test_under_slicer_testing_installs_without_asking(installs):
    """Issue 21 (5): in testing mode Slicer's own confirmOkCancelDisplay answers False (its testing value
    True compared with qt.QMessageBox.Ok), so asking would decline every install."""
    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    slicer.app.setTestingEnabled(True)
    assert slicer.util.confirmOkCancelDisplay("Install?") is False, "Slicer's util.py in testing mode"
    dependencies.ensure_packages([ABSENT], interactive=True)
    from packaging.requirements import Requirement

    assert [[str(Requirement(r)) for r in requirements] for requirements, _ in installs] == [[str(Requirement(ABSENT))]]
    assert installs[0][1] == expected_pins()
    assert standin_ctk.ctkMessageBox.SHOWN == [], "no dialog waits for a user in testing mode"


def test_an_intel_mac_is_told_that_local_engines_cannot_run_and_what_still_works(monkeypatch):
    """Issue 21 (9): no torch>=2.4 exists for macOS x86_64; say so instead of starting an install that fails."""
    import platform

    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    monkeypatch.setattr(dependencies, "unmet_requirements", lambda requirements: list(requirements))  # no torch
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    with pytest.raises(NodsynthError, match="no builds for Intel macOS .*Remote server"):
        dependencies.ensure_torch(interactive=True)
    assert standin_ctk.ctkMessageBox.SHOWN == [], "nothing offered to install"


def test_headless_callers_are_told_what_to_install():
    dependencies = importlib.import_module("NodMAISICommon.dependencies")
    with pytest.raises(Exception, match="nodsynth-absent-package"):
        dependencies.ensure_packages([ABSENT], interactive=False)
    assert standin_ctk.ctkMessageBox.SHOWN == []


def test_every_self_test_installs_what_it_needs_first():
    """Issue 11 (8): scikit-learn / scikit-image do not ship with Slicer."""
    import ast

    import slicer_harness

    for name in slicer_harness.MODULE_FOLDERS:
        tree = ast.parse((slicer_harness.REPO / name / f"{name}.py").read_text())
        test_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{name}Test")
        for method in (n for n in test_class.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")):
            first = method.body[0]
            call = first.value if isinstance(first, ast.Expr) else None
            assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "ensure_packages", \
                f"{name}Test.{method.name} must call ensure_packages before anything else"
