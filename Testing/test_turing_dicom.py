"""``nodsynth turing build --format dicom``: blinded reading copies as DICOM series, 20 real + 20 synthetic.

The cheating reader again (Testing/test_turing_build.py's leave-one-out threshold rule, plus the same
rule for words): every header attribute of every case (file meta included), each UID's root and each
value's length, private tags, file count, sizes, times, creation order and the voxel values. No rule may
reach 80 % on the study; the same probe must separate a naive export (real series as a scanner writes
them, synthetic ones from ``nodsynth dicom export``).
"""
from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from dicom_series_writer import pydicom, tool, write_series
from nodsynth.cli.main import main
from nodsynth.io.volume_files import read_volume
from test_turing_build import _key, _loo_threshold_accuracy, _value_features, lidc_manifests

pytestmark = pytest.mark.shared_data
N_EACH = 20
TELL_ACCURACY = 0.8
ABSENT = "<absent>"


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return lidc_manifests(tmp_path_factory.mktemp("turing_dicom"), per_stratum=6)


@pytest.fixture(scope="module")
def dicom_study(manifests, tmp_path_factory):
    paths, _ = manifests
    study = tmp_path_factory.mktemp("study") / "study"
    assert main(["turing", "build", "--real", str(paths["real"]), "--synthetic", str(paths["synthetic"]),
                 "--out", str(study), "--n-real", str(N_EACH), "--n-synthetic", str(N_EACH), "--phases",
                 "cropped,full", "--full", "whole", "--cube-mm", "32", "--seed", "1", "--format", "dicom"]) == 0
    return study


def _case_features(folder: Path) -> tuple[dict, dict]:
    """(words, numbers) describing one case series: its first slice's header and the folder's files."""
    files = sorted(folder.iterdir())
    words, numbers = {}, {"file count": len(files), "bytes": sum(p.stat().st_size for p in files),
                          "modification time": folder.stat().st_mtime_ns, "creation order (inode)": folder.stat().st_ino}
    first = pydicom.dcmread(files[0])
    numbers["private tags"] = sum(1 for e in first.iterall() if e.tag.is_private)
    for element in [*first.file_meta, *first.iterall()]:
        if element.keyword in ("PixelData", "") or element.VR == "SQ":
            continue
        name, value = element.keyword, str(element.value)
        words[name] = value
        numbers[f"{name} length"] = len(value)
        if element.VR == "UI":
            words[f"{name} root"] = value.rsplit(".", 1)[0]
        if element.VR in ("DS", "IS", "US", "SS", "FD", "FL") and element.VM == 1:
            numbers[name] = float(element.value)
    numbers.update(_value_features(read_volume(folder).array))
    return words, numbers


def _loo_word_accuracy(values: list[str], labels: list[bool]) -> float:
    """Leave-one-out accuracy of guessing the group as the majority of the other cases with the same word."""
    right = 0
    for held, (value, label) in enumerate(zip(values, labels)):
        others = [lab for i, (v, lab) in enumerate(zip(values, labels)) if i != held and v == value]
        others = others or [lab for i, lab in enumerate(labels) if i != held]
        votes = Counter(others)
        right += int((votes[True] > votes[False]) == label)
    return right / len(values)


def dicom_tells(cases: dict[Path, bool]) -> list[str]:
    """The attributes and file properties whose leave-one-out rule reaches :data:`TELL_ACCURACY`."""
    labels = list(cases.values())
    described = [_case_features(folder) for folder in cases]
    tells = []
    for kind, rule in ((0, _loo_word_accuracy), (1, _loo_threshold_accuracy)):
        names = sorted({name for d in described for name in d[kind]})
        for name in names:
            default = ABSENT if kind == 0 else -1.0
            if rule([d[kind].get(name, default) for d in described], labels) >= TELL_ACCURACY:
                tells.append(name)
    return tells


def test_no_attribute_or_file_property_tells_real_from_synthetic(dicom_study):
    truth = {(r["phase"], r["case_id"]): r["truth"] == "synthetic" for r in _key(dicom_study)}
    for phase in ("cropped", "full"):
        cases = {p: truth[(phase, p.name)] for p in sorted((dicom_study / phase).iterdir()) if p.is_dir()}
        assert len(cases) == 2 * N_EACH and sum(cases.values()) == N_EACH
        assert dicom_tells(cases) == [], phase
    first = pydicom.dcmread(sorted(next(p for p in (dicom_study / "full").iterdir() if p.is_dir()).iterdir())[0])
    assert "SYNTHETIC" not in str(first.SeriesDescription) and "DerivationDescription" not in first
    assert first.PatientName != "" and not first.StudyDate


def test_the_probe_separates_a_naive_export(manifests, tmp_path):
    """Positive control: real series as a scanner writes them vs the honest synthetic export."""
    _, rows = manifests
    cases = {}
    for truth, items in rows.items():
        for number, row in enumerate(items[:N_EACH // 2]):
            folder = tmp_path / f"{truth}{number}"
            if truth == "real":
                write_series(read_volume(row[0]), folder)
            else:
                assert main(["dicom", "export", "--ct", row[0], "--out", str(folder), "--seed", "0"]) == 0
                folder = folder / "ct"
            cases[folder] = truth == "synthetic"
    tells = dicom_tells(cases)
    assert {"ImageType", "SeriesDescription", "DerivationDescription", "RescaleIntercept"} <= set(tells), tells


def test_dciodvfy_finds_no_error_in_the_reading_copies(dicom_study):
    dciodvfy = tool("dciodvfy")
    for phase in ("cropped", "full"):
        case = next(p for p in sorted((dicom_study / phase).iterdir()) if p.is_dir())
        done = subprocess.run([dciodvfy, str(sorted(case.iterdir())[0])], capture_output=True, text=True, timeout=120)
        assert [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")] == []
