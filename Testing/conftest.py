"""Shared fixtures: the real data in ../shared/data (skipped with a message when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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

DEMO_KINDS_BELOW_TARGET = {"juxta-vascular": 0.87}
"""Kinds that do not reach :data:`DEMO_DICE_REQUIRED` yet, with the floor they do hold (seed 0
measures 0.879: a vessel fused under the nodule without a neck). Issue 2 stays open for them;
``test_demo.py`` keeps the 0.9 target as a strict xfail, which fails once the target is met so
this entry gets removed."""


def demo_dice_floor(kind: str) -> float:
    """Dice a demo nodule of ``kind`` must reach in the tests of the layers above the segmenter."""
    return DEMO_KINDS_BELOW_TARGET.get(kind, DEMO_DICE_REQUIRED)
