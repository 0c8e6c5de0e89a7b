"""The pure helpers of the Slicer glue package NodMAISICommon, with real numbers (no Slicer needed)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import SimpleITK as sitk

from NodMAISICommon.engines import connection_report, engine_from_settings, local_devices_text, needs_upload_consent
from NodMAISICommon.geometry import apply_homogeneous, markup_points_to_volume_lps, volume_lps_to_markup_points
from NodMAISICommon.requirements import (CORE_REQUIREMENTS, ENGINE_REQUIREMENTS, PROTECTED_PACKAGES,
                                         REMOTE_REQUIREMENTS, protected_pins, unmet_requirements)
from NodMAISICommon.settings import (EngineSettings, load_engine_settings, normalize_server_url,
                                     save_engine_settings, validate_device, validated)
from NodMAISICommon.tables import measurement_columns, unit_of
from NodMAISICommon.terminology import LUNG_NODULE_TERMINOLOGY, parse_terminology_entry
from nodsynth.engines.classic import ClassicEngine
from nodsynth.engines.remote import RemoteEngine
from nodsynth.errors import InputError
from nodsynth.volume import Volume


# ------------------------------------------------------------------------------------------ geometry
def rotation_z_deg(angle_deg: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[:3, 3] = translation
    return m


def test_point_under_a_parent_transform_to_lps():
    # local RAS (10, 20, 30) rotated 90 deg about S -> (-20, 10, 30), shifted by (5, -3, 2) -> (-15, 7, 32) RAS
    lps = markup_points_to_volume_lps([[10.0, 20.0, 30.0]], rotation_z_deg(90, (5.0, -3.0, 2.0)))
    np.testing.assert_allclose(lps, [[15.0, -7.0, 32.0]], atol=1e-12)
    back = volume_lps_to_markup_points(lps, rotation_z_deg(90, (5.0, -3.0, 2.0)))
    np.testing.assert_allclose(back, [[10.0, 20.0, 30.0]], atol=1e-12)


def test_point_without_transform_is_only_flipped():
    np.testing.assert_allclose(markup_points_to_volume_lps([[1.5, -2.0, 3.0], [0, 0, -7]]),
                               [[-1.5, 2.0, 3.0], [0, 0, -7]])


def test_clicked_voxel_centre_maps_back_to_its_index_in_an_oblique_volume():
    """A click on voxel (i, j, k) of a Slicer volume lands on that voxel of the nodsynth Volume."""
    direction = sitk.VersorTransform((0.2, 0.3, 0.9), 0.4).GetMatrix()
    image = sitk.Image(20, 30, 10, sitk.sitkInt16)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-100.0, 50.0, 12.0))
    image.SetDirection(direction)
    volume = Volume.from_sitk(image)
    _, ijk_to_ras = volume.to_slicer()  # what volumeNode.GetIJKToRASMatrix would give Slicer
    ijk = np.array([7.0, 11.0, 4.0])
    click_ras = (ijk_to_ras @ np.append(ijk, 1.0))[:3]  # what the markups node stores for that click
    lps = markup_points_to_volume_lps([click_ras])[0]
    np.testing.assert_allclose(lps, image.TransformContinuousIndexToPhysicalPoint(ijk.tolist()), atol=1e-9)
    np.testing.assert_allclose(volume.world_to_index(lps), ijk, atol=1e-9)


def test_non_affine_matrix_is_rejected():
    m = np.eye(4)
    m[3, 0] = 0.1
    with pytest.raises(InputError, match="affine"):
        apply_homogeneous(m, [[0, 0, 0]])
    with pytest.raises(InputError, match="4x4"):
        apply_homogeneous(np.eye(3), [[0, 0, 0]])


# --------------------------------------------------------------------------------------- terminology
def test_lung_nodule_terminology_codes():
    codes = parse_terminology_entry(LUNG_NODULE_TERMINOLOGY)
    assert (codes["category"].value, codes["category"].meaning) == ("49755003", "Morphologically Altered Structure")
    assert (codes["type"].value, codes["type"].meaning) == ("27925004", "Nodule")
    assert (codes["region"].value, codes["region"].meaning) == ("39607008", "Lung")
    assert codes["type_modifier"] is None and codes["region_modifier"] is None
    assert all(c.scheme == "SCT" for c in (codes["category"], codes["type"], codes["region"]))


def test_parses_an_entry_written_by_slicer():
    # as Slicer writes it in a .seg.nrrd (Segment1_Tags TerminologyEntry)
    entry = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^49755003^Morphologically Altered "
             "Structure~SCT^4147007^Mass~^^~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^")
    codes = parse_terminology_entry(entry)
    assert codes["type"].value == "4147007" and codes["region"].meaning == "Liver"
    with pytest.raises(ValueError, match="7"):
        parse_terminology_entry("only~three~fields")


# ------------------------------------------------------------------------------------------ settings
class DictSettings:
    """A store with QSettings' value(key, default) / setValue(key, value)."""

    def __init__(self):
        self.values = {}

    def value(self, key, default=None):
        return self.values.get(key, default)

    def setValue(self, key, value):
        self.values[key] = value


def test_settings_round_trip_and_keys():
    store = DictSettings()
    assert load_engine_settings(store) == EngineSettings()
    settings = EngineSettings("remote", "", "cuda:1", "http://gpu:8000", "s3cret")
    save_engine_settings(store, settings)
    assert load_engine_settings(store) == settings
    assert store.values["NodMAISI/ServerToken"] == "s3cret" and store.values["NodMAISI/Location"] == "remote"
    allowed = EngineSettings(network_config="maisi_tiny", allow_baseline_controlnet=True)
    save_engine_settings(store, allowed)
    store.values["NodMAISI/AllowBaselineControlNet"] = "true"  # an INI file gives booleans back as text
    assert load_engine_settings(store) == allowed


def test_a_local_engine_gets_only_the_options_the_user_set():
    from NodMAISICommon.engines import local_engine_config

    assert local_engine_config(EngineSettings()) == {}
    assert local_engine_config(EngineSettings(device="cuda:1", network_config="maisi_tiny",
                                              allow_baseline_controlnet=True)) == {
        "device": "cuda:1", "config": "maisi_tiny", "allow_baseline_controlnet": True}


@pytest.mark.parametrize("text, url, noted", [
    ("gpu-box:8000", "http://gpu-box:8000", True),
    ("  https://gpu.example.org/v1/ ", "https://gpu.example.org", False),
    ("http://127.0.0.1:8765/", "http://127.0.0.1:8765", False),
    ("https://proxy.example.org/nodsynth", "https://proxy.example.org/nodsynth", False),
])
def test_server_url_normalisation(text, url, noted):
    normalized, note = normalize_server_url(text)
    assert normalized == url
    assert (note is not None) == noted


@pytest.mark.parametrize("text, message", [
    ("", "empty|no server URL"), ("ftp://gpu:21", "http"), ("http://:8000", "no host"),
    ("http://gpu:99999", "port"), ("http://gpu:8000/?a=1", "query"),
])
def test_bad_server_urls_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        normalize_server_url(text)


def test_settings_validation(tmp_path):
    assert validated(EngineSettings(weights_dir=str(tmp_path), device="CUDA")).device == "cuda"
    assert validate_device("cuda:2") == "cuda:2"
    with pytest.raises(InputError, match="device"):
        validate_device("tpu")
    with pytest.raises(InputError, match="does not exist"):
        validated(EngineSettings(weights_dir=str(tmp_path / "missing")))
    with pytest.raises(InputError, match="token"):
        validated(EngineSettings(location="remote", server_url="http://gpu:8000"))
    with pytest.raises(InputError, match="location"):
        validated(EngineSettings(location="cloud"))
    remote = validated(EngineSettings(location="remote", server_url="gpu:8000/", token=" t "))
    assert (remote.server_url, remote.token) == ("http://gpu:8000", "t")


def test_engine_from_settings_local_and_remote():
    assert isinstance(engine_from_settings("classic", EngineSettings()), ClassicEngine)
    remote = engine_from_settings("nodmaisi", EngineSettings(location="remote", server_url="gpu:8000", token="t"))
    assert isinstance(remote, RemoteEngine)
    assert (remote.server_url, remote.engine) == ("http://gpu:8000", "nodmaisi")


def test_connection_report_names_an_unreachable_server():
    with pytest.raises(InputError, match="this computer"):
        connection_report(EngineSettings())
    # port 9 (discard) on loopback: nothing listens; the report must fail with a clear error, not hang
    settings = EngineSettings(location="remote", server_url="http://127.0.0.1:9", token="t")
    with pytest.raises(Exception, match="127.0.0.1:9"):
        connection_report(settings)


def test_consent_is_needed_once_per_server_even_on_loopback():
    local = EngineSettings()
    tunnel = EngineSettings(location="remote", server_url="localhost:8765", token="t")
    assert not needs_upload_consent(local, set())
    assert needs_upload_consent(tunnel, set())  # an SSH tunnel looks like localhost
    assert not needs_upload_consent(tunnel, {"http://localhost:8765"})
    assert needs_upload_consent(tunnel, {"http://other:8765"})


def test_local_devices_are_listed():
    from nodsynth.server.devices import resolve_devices

    lines = local_devices_text().splitlines()
    assert [line.split(":")[0] for line in lines] == resolve_devices("auto")
    assert all("GB free" in line or "unknown" in line for line in lines)


# --------------------------------------------------------------------------------------- requirements
def test_every_requirement_has_lower_and_upper_bounds():
    from packaging.requirements import Requirement

    for text in CORE_REQUIREMENTS + ENGINE_REQUIREMENTS + REMOTE_REQUIREMENTS:
        ops = {spec.operator for spec in Requirement(text).specifier}
        assert ">=" in ops and "<" in ops, f"{text} needs a lower and an upper bound"
        assert Requirement(text).name not in PROTECTED_PACKAGES


def test_protected_packages_are_pinned_at_their_installed_versions():
    versions = {"numpy": "1.26.4", "SimpleITK": "2.4.0", "requests": None, "torch": "2.6.0"}
    assert protected_pins(versions.get) == ["numpy==1.26.4", "SimpleITK==2.4.0", "torch==2.6.0"]
    assert protected_pins(lambda name: None) == []


def test_requirements_cover_the_package_dependencies():
    """Every nodsynth dependency Slicer does not ship is in the list, with a compatible lower bound."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli",
                                  reason="reading pyproject.toml needs tomllib (3.11+) or tomli")
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    ours = {Requirement(r).name.lower(): Requirement(r) for r in CORE_REQUIREMENTS + ENGINE_REQUIREMENTS}
    deps = pyproject["project"]["dependencies"] + [d for d in pyproject["project"]["optional-dependencies"]["engines"]]
    for text in deps:
        req = Requirement(text)
        if req.name in PROTECTED_PACKAGES:
            continue
        assert req.name.lower() in ours, f"{req.name} is missing from NodMAISICommon.requirements"
        for spec in req.specifier:
            if spec.operator == ">=":
                assert ours[req.name.lower()].specifier.contains(spec.version), \
                    f"{req.name}: our bounds exclude the package's minimum {spec.version}"


def test_unmet_requirements():
    versions = {"scipy": "1.13.1", "monai": "1.7.0", "tqdm": None}
    unmet = unmet_requirements(["scipy>=1.10,<2", "monai>=1.5,<1.7", "tqdm>=4.60,<5"], versions.get)
    assert unmet == ["monai>=1.5,<1.7", "tqdm>=4.60,<5"]
    assert unmet_requirements(["numpy>=1.0"]) == []  # installed here


@pytest.mark.parametrize("system, machine, blocked", [
    ("Darwin", "x86_64", True), ("Darwin", "arm64", False), ("Linux", "x86_64", False),
    ("Linux", "aarch64", False), ("Windows", "AMD64", False)])
def test_torch_cannot_be_installed_on_intel_macos(system, machine, blocked):
    """Issue 21 (9): pypi.org/simple/torch has macOS x86_64 wheels up to 2.2.2 only."""
    from packaging.specifiers import SpecifierSet

    from NodMAISICommon.requirements import LAST_TORCH_FOR_INTEL_MAC, TORCH_REQUIREMENT, torch_platform_problem

    assert not SpecifierSet(TORCH_REQUIREMENT).contains(f"{LAST_TORCH_FOR_INTEL_MAC}.99")
    problem = torch_platform_problem(system, machine)
    assert (problem is not None) == blocked
    if blocked:
        assert "Intel macOS" in problem and "model-free" in problem and "Remote server" in problem


# ----------------------------------------------------------------------------------------------- tables
def test_measurement_columns_with_units():
    rows = [{"nodule": "Nodule 1", "volume_mm3": 523.6, "longest_diameter_mm": 10.2, "mean_hu": -20.5,
             "centroid_lps": [1.0, 2.0, 3.0], "histogram": list(np.full(40, 1 / 40)), "lobe": "left lung upper lobe"},
            {"nodule": "Nodule 2", "volume_mm3": 14.1, "centroid_lps": np.array([-4.0, 5.5, 6.0]),
             "pleural_distance_mm": 2.5, "centroid_ras_mm": (4.0, -5.5, 6.0)}]
    columns = {c.name: c for c in measurement_columns(rows)}
    assert "histogram" not in columns
    assert columns["volume_mm3"].unit == "mm3" and columns["volume_mm3"].values == [523.6, 14.1]
    assert columns["mean_hu"].unit == "HU" and columns["mean_hu"].values == [-20.5, None]
    assert [columns[f"centroid_lps_{a}"].values for a in "LPS"] == [[1.0, -4.0], [2.0, 5.5], [3.0, 6.0]]
    assert columns["centroid_lps_P"].unit == "mm"
    assert columns["pleural_distance_mm"].values == [None, 2.5]
    assert columns["centroid_ras_R"].values == [None, 4.0] and columns["centroid_ras_A"].unit == "mm"
    assert columns["volume_mm3"].numeric and not columns["lobe"].numeric
    assert list(columns)[:2] == ["nodule", "volume_mm3"]


@pytest.mark.parametrize("key, unit", [("volume_mm3", "mm3"), ("equivalent_diameter_mm", "mm"), ("std_hu", "HU"),
                                       ("achieved_percent", "%"), ("voxels_after", ""), ("subtype", "")])
def test_unit_of(key, unit):
    assert unit_of(key) == unit
