"""Shared fixtures: the real data in ../shared/data (skipped with a message when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

collect_ignore = [] if os.environ.get("NODMAISI_SLICER_VERSION") else ["slicer_real"]
"""Testing/slicer_real runs in a child process per Slicer version (test_slicer_reference.py)."""

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
