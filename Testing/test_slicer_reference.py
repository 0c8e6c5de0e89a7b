"""The Slicer layer against Slicer's REAL Python code: ``Testing/slicer_real`` run once per Slicer
version (5.8.1, 5.10.0, 5.12.3), each in its own process (``slicer`` cannot be imported twice), with
``../shared/slicer_reference/<version>`` as the ``slicer`` package and strict stand-ins only for what
Slicer compiles from C++ (see ``Testing/slicer_harness``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import slicer_harness

TESTING = Path(__file__).resolve().parent


@pytest.mark.parametrize("version", slicer_harness.VERSIONS)
def test_slicer_layer_against_slicers_own_code(version):
    if not (slicer_harness.REFERENCE / version / "slicer" / "util.py").is_file():
        pytest.skip(f"Slicer's Python files are not available: {slicer_harness.REFERENCE / version} is missing "
                    "(a fresh clone has no ../shared)")
    if sys.version_info < slicer_harness.MIN_PYTHON[version]:
        pytest.skip(f"Slicer {version}'s Python files need Python >= "
                    f"{'.'.join(map(str, slicer_harness.MIN_PYTHON[version]))}; this is {sys.version.split()[0]}")
    pytest.importorskip("vtk", reason="the real VTK (pip install vtk==9.4.2) runs under the stand-ins")
    env = dict(os.environ, NODMAISI_SLICER_VERSION=version)
    done = subprocess.run([sys.executable, "-m", "pytest", str(TESTING / "slicer_real"), "-q", "-rs", "-s",
                           "-p", "no:cacheprovider"], cwd=TESTING.parent, env=env, capture_output=True, text=True,
                          timeout=3600)
    print(done.stdout[-20000:])
    assert done.returncode == 0, f"Slicer {version}: the real-code tests failed\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
