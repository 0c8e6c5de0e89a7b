"""What Slicer's Extensions Index needs from this repository (issue 21 (8)): the catalog entry to submit,
``ExtensionsIndex/NodMAISI.json``, valid for schema v1.0.1 (github.com/Slicer/ExtensionsIndex,
schemas/slicer-extension-catalog-entry-schema-v1.0.1.json) and for the index's own checks
(scripts/check_description_files.py: file name = CMake project, https or git scm_url of a repository whose
name starts with 'Slicer', LF line endings, a licence file in the repository root)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
ENTRY = REPO / "ExtensionsIndex" / "NodMAISI.json"
SCHEMA_URL = "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json#"

# schema v1.0.1: "required", "additionalProperties": false, each property's "type" (and enum / range)
REQUIRED = ("$schema", "category", "scm_url")
PROPERTY_TYPES = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
                  "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int}
SCM_TYPES = ("git", "local")
TIERS = range(1, 6)


def schema_problems(entry: dict) -> list[str]:
    """What schema v1.0.1 refuses in ``entry`` (empty when it is valid)."""
    problems = [f"missing required {key!r}" for key in REQUIRED if key not in entry]
    for key, value in entry.items():
        kind = PROPERTY_TYPES.get(key)
        if kind is None:
            problems.append(f"{key!r} is not a property of the schema")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{key!r} must be a {kind.__name__}")
    if not all(isinstance(item, str) for item in entry.get("build_dependencies", [])):
        problems.append("build_dependencies must list strings")
    if entry.get("scm_type", "git") not in SCM_TYPES:
        problems.append(f"scm_type must be one of {SCM_TYPES}")
    if isinstance(entry.get("tier"), int) and entry["tier"] not in TIERS:
        problems.append("tier must be 1 to 5")
    return problems


def cmake_value(key: str) -> str:
    return re.search(rf'set\({key}\s+"([^"]*)"\)', (REPO / "CMakeLists.txt").read_text()).group(1)


def test_the_schema_rules_refuse_what_the_schema_refuses():
    assert schema_problems({"$schema": SCHEMA_URL, "category": "Segmentation", "scm_url": "https://x/SlicerX"}) == []
    assert schema_problems({"category": "Segmentation", "scm_url": "https://x/SlicerX"}) == ["missing required '$schema'"]
    assert schema_problems({"$schema": SCHEMA_URL, "category": "S", "scm_url": "u", "tier": 6, "homepage": "h",
                            "enabled": "yes"}) == ["'homepage' is not a property of the schema",
                                                   "'enabled' must be a bool", "tier must be 1 to 5"]


def test_the_catalog_entry_is_valid_for_schema_1_0_1():
    raw = ENTRY.read_bytes()
    assert b"\r" not in raw, "the index accepts LF line endings only"
    entry = json.loads(raw)
    assert entry["$schema"] == SCHEMA_URL
    assert schema_problems(entry) == []


def test_the_catalog_entry_matches_the_extension():
    entry = json.loads(ENTRY.read_text())
    project = re.search(r"^project\((\w+)", (REPO / "CMakeLists.txt").read_text(), flags=re.M).group(1)
    assert ENTRY.stem == project, "the index names an extension by its file, which must match project()"
    assert entry["category"] == cmake_value("EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == cmake_value("EXTENSION_DEPENDS").split()
    url = urlsplit(entry["scm_url"])
    assert url.scheme in ("https", "git") and url.path.rsplit("/", 1)[-1].startswith("Slicer")
    assert entry["scm_url"] == cmake_value("EXTENSION_HOMEPAGE")
    assert cmake_value("EXTENSION_ICONURL").startswith(entry["scm_url"].replace("github.com", "raw.githubusercontent.com")
                                                       + "/" + entry["scm_revision"] + "/")


@pytest.mark.parametrize("line", ["Apache License", "Version 2.0, January 2004",
                                  "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "END OF TERMS AND CONDITIONS"])
def test_the_licence_file_is_the_apache_2_licence_pyproject_names(line):
    assert re.search(r'^license\s*=\s*\{\s*text\s*=\s*"Apache-2.0"', (REPO / "pyproject.toml").read_text(), flags=re.M)
    text = (REPO / "LICENSE").read_text()
    assert line in text and len(text.split()) > 1500
