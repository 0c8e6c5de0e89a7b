"""The Slicer-layer tests that run against Slicer's real Python code, one Slicer version per process.

``Testing/test_slicer_reference.py`` starts ``python -m pytest Testing/slicer_real`` once per version
with ``NODMAISI_SLICER_VERSION`` set; this conftest installs that version (:mod:`slicer_harness`)
before any test imports a module file. Collected on its own only in that child process.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTING = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTING))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import slicer_harness  # noqa: E402

VERSION = os.environ.get("NODMAISI_SLICER_VERSION", "")
if VERSION not in slicer_harness.VERSIONS:
    raise RuntimeError(f"set NODMAISI_SLICER_VERSION to one of {slicer_harness.VERSIONS} (got {VERSION!r}); "
                       "these tests run through Testing/test_slicer_reference.py")
slicer = slicer_harness.install(VERSION)


@pytest.fixture(autouse=True)
def fresh_slicer():
    """Every test starts from an empty scene, no settings, no pending timers or dialogs."""
    slicer_harness.reset(slicer)
    yield slicer
    slicer_harness.reset(slicer)


@pytest.fixture(scope="session")
def patient():
    from slicer_fixtures import demo_patient

    return demo_patient()
