"""``nodsynth evaluate nodules``: nodule-centred crops (geometry checked on a known field), the
HR-LDM metrics per plane / averaged / per subtype on real LIDC nodules, report rows, bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import shared_path

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.evaluate.nodule_crops import CropSettings, mask_centre_lps, nodule_crop  # noqa: E402
from nodsynth.evaluate.report import load_report_rows, report_rows  # noqa: E402
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from test_evaluate_fid_cli import network_file  # noqa: E402,F401 (the TorchScript network fixture)

SUBTYPE = {"Solid": "solid", "Solid/Mixed": "solid", "Part Solid/Mixed": "part-solid",
           "Non-Solid/Mixed": "ground-glass", "Non-Solid/GGO": "ground-glass"}


def test_crop_is_centred_and_in_ras_order():
    """On an oblique-free but flipped grid whose HU grow 3 per mm towards patient left (LPS +x),
    1 per mm posterior and 2 per mm superior, the crop's x axis must run to the right, y anterior,
    z superior, with the centre on voxel size // 2."""
    k, j, i = np.meshgrid(np.arange(30), np.arange(40), np.arange(50), indexing="ij")
    direction = np.diag([1.0, -1.0, 1.0])  # j runs anterior
    volume = Volume(np.zeros((30, 40, 50), dtype=np.float32), (0.8, 0.7, 1.5), (-20.0, 15.0, -30.0), direction)
    world = volume.index_to_world(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(30, 40, 50, 3)
    volume = volume.with_array((3 * world[..., 0] + world[..., 1] + 2 * world[..., 2]).astype(np.float32))
    centre = volume.index_to_world((25.0, 20.0, 15.0))
    crop = nodule_crop(volume, centre, CropSettings(size_voxels=16, spacing_mm=1.0, slices=3))
    assert crop.shape == (16, 16, 16) and crop.dtype == np.float32
    expected_centre = 3 * centre[0] + centre[1] + 2 * centre[2]
    assert crop[8, 8, 8] == pytest.approx(expected_centre, abs=1e-3)
    assert crop[9, 8, 8] - crop[8, 8, 8] == pytest.approx(-3.0, abs=1e-3)  # x -> right: LPS x decreases
    assert crop[8, 9, 8] - crop[8, 8, 8] == pytest.approx(-1.0, abs=1e-3)  # y -> anterior: LPS y decreases
    assert crop[8, 8, 9] - crop[8, 8, 8] == pytest.approx(2.0, abs=1e-3)   # z -> superior


def test_crop_outside_the_scan_is_air_and_clipped():
    volume = Volume(np.full((10, 10, 10), 3000.0, dtype=np.float32), (1.0, 1.0, 1.0))
    crop = nodule_crop(volume, (4.5, 4.5, 4.5), CropSettings(size_voxels=32, spacing_mm=1.0, slices=1))
    assert crop.max() == 1000.0 and crop.min() == -1000.0 and crop[0, 0, 0] == -1000.0


def lidc_rows(indices):
    folder = shared_path("lidc_vois")
    with open(folder / "nodules.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{"ct": str(folder / "image" / rows[i]["file"]), "coordX": rows[i]["coordX"], "coordY": rows[i]["coordY"],
             "coordZ": rows[i]["coordZ"], "mask": "", "subtype": SUBTYPE[rows[i]["Texture"]]} for i in indices]


def write_list(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ct", "coordX", "coordY", "coordZ", "mask", "subtype"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def lists(tmp_path):
    slabs = shared_path("lidc_slabs")
    mask_rows = [{"ct": str(slabs / f"LIDC-IDRI-000{n}_slab.nrrd"), "coordX": "", "coordY": "", "coordZ": "",
                  "mask": str(slabs / f"LIDC-IDRI-000{n}_slab_nodule_2of4.nrrd"),
                  "subtype": "solid" if n == 1 else "ground-glass"} for n in (1, 2)]
    real = write_list(tmp_path / "real.csv", lidc_rows(range(0, 6)) + mask_rows[:1])
    synthetic = write_list(tmp_path / "synthetic.csv", lidc_rows(range(6, 12)) + mask_rows[1:])
    return real, synthetic


def test_cli_nodules_report(lists, network_file, tmp_path):
    real, synthetic = lists
    out = tmp_path / "nodules.json"
    assert main(["evaluate", "nodules", "--real", str(real), "--synthetic", str(synthetic), "--network",
                 str(network_file), "--json", str(out), "--crop-size", "24", "--slices", "3", "--kid-subsets", "10"]) == 0
    data = json.loads(out.read_text())
    assert data["n_real"] == 7 and data["n_synthetic"] == 7
    assert data["n_vectors_real"] == {"xy": 21, "yz": 21, "zx": 21} and data["kid_subset_size"] == 21
    for metric in ("fid", "kid", "mmd"):
        planes = [data[f"{metric}_{p}"] for p in ("xy", "yz", "zx")]
        assert data[f"{metric}_avg"] == pytest.approx(np.mean(planes))
    assert all(data[f"fid_{p}"] > 0 and data[f"mmd_sigma_{p}"] > 0 for p in ("xy", "yz", "zx"))
    assert all(abs(data[f"kid_std_{p}"]) < 1e-12 for p in ("xy", "yz", "zx"))  # subset = every vector: one value
    assert set(data["subtypes"]) >= {"solid"}
    solid = data["subtypes"]["solid"]
    assert solid["n_real"] + solid["n_synthetic"] >= 4 and "fid_avg" in solid
    assert data["settings"]["crop_size_voxels"] == 24
    kind, rows = load_report_rows(out)
    assert kind == "nodules"
    assert {"section": "Nodule crops", "metric": "FID average", "value": f"{data['fid_avg']:.6g}"} in rows
    assert any(r["section"] == "Nodule crops: solid" for r in rows)


def test_mask_centre_is_the_centroid():
    mask = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    centre = mask_centre_lps(mask)
    kji = np.argwhere(mask.array > 0).mean(axis=0)
    assert centre == pytest.approx(mask.index_to_world(kji[::-1]))


@pytest.mark.parametrize("case, message", [
    ("nan", "not finite (NaN or infinite coordinates)"),
    ("one-row", "FID is undefined with fewer than 2 samples per side"),
    ("no-centre", "give the nodule centre (coordX,coordY,coordZ) or a mask"),
    ("missing-ct", "the CT file"),
])
def test_cli_nodules_bad_input(lists, network_file, tmp_path, capsys, case, message):
    real, synthetic = lists
    rows = list(csv.DictReader(open(real, newline="")))
    if case == "nan":
        rows[2]["coordY"] = "nan"
    elif case == "one-row":
        rows = rows[:1]
    elif case == "no-centre":
        rows[1].update(coordX="", coordY="", coordZ="", mask="")
    else:
        rows[3]["ct"] = str(tmp_path / "absent.nii.gz")
    write_list(real, rows)
    out = tmp_path / "o" / "nodules.json"
    assert main(["evaluate", "nodules", "--real", str(real), "--synthetic", str(synthetic), "--network",
                 str(network_file), "--json", str(out), "--crop-size", "24", "--slices", "3"]) == 2
    assert message in capsys.readouterr().err
    assert not out.parent.exists()


def test_report_rows_of_each_kind_and_bad_reports(tmp_path):
    from nodsynth.errors import InputError

    fid = {"fid_xy": 1.5, "fid_yz": 2.0, "fid_zx": 2.5, "fid_avg": 2.0, "n_real": 3, "n_synthetic": 4,
           "n_slices_real": {"xy": 10, "yz": 20, "zx": 20}, "n_slices_synthetic": {"xy": 12, "yz": 20, "zx": 20}}
    kind, rows = report_rows(fid)
    assert kind == "fid" and rows[3] == {"section": "2.5D FID", "metric": "FID average", "value": "2"}
    assert {"section": "2.5D FID", "metric": "synthetic slices (xy / yz / zx)", "value": "12 / 20 / 20"} in rows
    froc = {"system": "NodMAISI", "sensitivities": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "cpm": 0.4,
            "fps": [0.125, 0.25, 0.5, 1, 2, 4, 8], "curve": {},
            "ci95": {"sensitivities_lower": [0.0] * 7, "sensitivities_upper": [1.0] * 7, "cpm_lower": 0.3, "cpm_upper": 0.5},
            "strata": {"<10 mm": {"n_nodules": 0, "skipped": "no nodule of this diameter"}}}
    kind, rows = report_rows({"systems": {"NodMAISI": froc, "clinical": dict(froc, cpm=0.35)}})
    assert kind == "froc" and len(rows) == 2 * 9
    assert {"section": "FROC: NodMAISI", "metric": "CPM", "value": "0.4 (0.3-0.5)"} in rows
    assert {"section": "FROC: clinical", "metric": "sensitivity at 1/8 FP/scan", "value": "0.1 (0-1)"} in rows
    with pytest.raises(InputError, match="'fid_yz' must be a finite number"):
        report_rows(dict(fid, fid_yz="high"))
    with pytest.raises(InputError, match="not a nodsynth evaluation report"):
        report_rows({"dice": 0.9})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        load_report_rows(broken)
