"""pyproject.toml: ``pip install -e ".[all]"`` (README command 1) installs every optional extra."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli",
                              reason="reading pyproject.toml needs tomllib (3.11+) or tomli")


def test_the_all_extra_holds_every_other_extra():
    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    (requirement,) = extras["all"]
    included = set(re.fullmatch(r"nodsynth\[(.*)\]", requirement).group(1).split(","))
    assert included == set(extras) - {"all"}
