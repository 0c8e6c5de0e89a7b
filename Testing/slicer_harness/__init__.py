"""Run the NodMAISI Slicer modules against Slicer's REAL pure-Python code.

``install(version)`` makes ``import slicer`` / ``qt`` / ``ctk`` / ``vtk`` work in a plain Python
the way they do inside 3D Slicer: ``vtk`` is the real VTK (PyPI, 9.4 as Slicer 5.8-5.12 build
on); ``slicer.util``, ``slicer.parameterNodeWrapper``, ``slicer.ScriptedLoadableModule`` and
``slicer.packaging`` are Slicer's own files from ``../shared/slicer_reference/<version>``; only
what Slicer compiles from C++ is a strict stand-in (:mod:`mrml`, :mod:`standin_qt`,
:mod:`standin_ctk`, :mod:`standin_slicer_widgets`, :mod:`standin_slicer`).

One version per process: the tests in ``Testing/slicer_real`` run in a child pytest per version
(``Testing/test_slicer_reference.py``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REFERENCE = Path(os.environ.get("NODSYNTH_SLICER_REFERENCE", REPO.parent / "shared" / "slicer_reference"))
VERSIONS = ("v5.8.1", "v5.10.0", "v5.12.3")
MIN_PYTHON = {"v5.8.1": (3, 9), "v5.10.0": (3, 10), "v5.12.3": (3, 11)}
"""Oldest Python each version's files import on (5.10 uses itertools.pairwise, 5.12 tomllib); Slicer
itself ships 3.9 (5.8) and 3.12 (5.10, 5.12)."""
MODULE_FOLDERS = ("PseudoNoduleSeg", "LesionAugment", "NodMAISI", "HRLDMInpaint")


def install(version: str, main_window: bool = True):
    """Import paths and modules for ``version``; returns the ``slicer`` package."""
    folder = REFERENCE / version
    if not (folder / "slicer" / "util.py").is_file():
        raise FileNotFoundError(f"Slicer {version}'s Python files are not in {folder}")
    sys.path.insert(0, str(HERE))
    import standin_ctk
    import standin_qt
    import vtk  # noqa: F401 - the real VTK, imported before the stand-ins that subclass it

    sys.modules["qt"] = standin_qt
    sys.modules["ctk"] = standin_ctk
    import standin_slicer

    slicer = standin_slicer.build(folder, main_window)
    if os.name != "nt":  # jobs start PythonSlicer, found on PATH, as in Slicer
        from launcher import install_launcher

        install_launcher(Path(tempfile.mkdtemp(prefix="pythonslicer-")))
    for path in [str(REPO)] + [str(REPO / module) for module in MODULE_FOLDERS]:
        if path not in sys.path:
            sys.path.insert(1, path)
    return slicer


def reset(slicer) -> None:
    """Between tests: an empty scene (singletons too), no settings, no timers, no dialogs."""
    import standin_ctk
    import standin_qt

    slicer.mrmlScene.Clear(1)
    standin_qt.SETTINGS_STORE.clear()
    standin_qt.EVENT_LOOP.timers.clear()
    standin_qt.EVENT_LOOP.callback_seconds.clear()
    standin_qt.EVENT_LOOP.callback_cpu_seconds.clear()
    standin_ctk.reset_dialogs()
    slicer.app._exit_calls.clear()
    slicer.app.setTestingEnabled(False)
