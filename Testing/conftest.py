"""Shared fixtures: the real data in ../shared/data (skipped with a message when absent)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

collect_ignore = [] if os.environ.get("NODMAISI_SLICER_VERSION") else ["slicer_real"]
"""Testing/slicer_real runs in a child process per Slicer version (test_slicer_reference.py)."""

TEMPORARY_ENV = ("TMPDIR", "TORCHINDUCTOR_CACHE_DIR", "PYTEST_DEBUG_TEMPROOT")


def pytest_configure(config):
    """Send what the code under test leaves in the temporary folder (job hosts' ``nodmaisi-jobs-*``, torch's
    ``torchinductor_<user>`` cache, also from child processes) to one folder of this run, removed at its end;
    pytest's own ``tmp_path`` folders stay where they were."""
    config._nodsynth_saved_env = {name: os.environ.get(name) for name in TEMPORARY_ENV}
    config._nodsynth_saved_tempdir = tempfile.tempdir
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    folder = config._nodsynth_session_tmp = tempfile.mkdtemp(prefix="nodsynth-tests-")
    os.environ["TMPDIR"] = tempfile.tempdir = folder
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(folder, "torchinductor")


def pytest_unconfigure(config):
    folder = getattr(config, "_nodsynth_session_tmp", None)
    if folder is None:
        return
    for name, value in config._nodsynth_saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    tempfile.tempdir = config._nodsynth_saved_tempdir
    shutil.rmtree(folder, ignore_errors=True)


REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("NODSYNTH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (a fresh clone has no ../shared/data)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


DEMO_DICE_REQUIRED = 0.9
"""Issue 2: click segmentation reaches Dice >= 0.9 for every demo-patient nodule kind."""
