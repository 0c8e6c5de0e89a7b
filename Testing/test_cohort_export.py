"""``nodsynth cohort export``: the training sets read by the real tools - MONAI's datalist loader and detection
box transforms (every box centre within one voxel of its mask's centroid), nnU-Net v2's own dataset-integrity
check, ``evaluate froc`` fed the LUNA16 rows unchanged - each with a provenance sidecar marking every case
synthetic."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cohort_cases import run_cases, write_sources, write_spec
from nodsynth.cli.main import main
from nodsynth.cohort.export import CLASSIFICATION_COLUMNS
from nodsynth.io.volume_files import read_volume

COUNTS = {"solid": {"6-10": 2}, "part-solid": {"10-14": 2}, "ground-glass": {"8-12": 1}}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    sources = write_sources(tmp_path_factory.mktemp("cohort_export"))
    spec = write_spec(sources, counts=COUNTS, nodules_per_ct=[2, 3], licences={"ct": "CC0 (demo phantom)"})
    plan = sources / "plan"
    assert main(["cohort", "plan", str(spec), "--out", str(plan)]) == 0
    run_cases(plan / "manifest.jsonl")
    return plan


def export(made: Path, fmt: str, out: Path, *extra: str) -> Path:
    assert main(["cohort", "export", str(made), "--format", fmt, "--out", str(out), *extra]) == 0
    return out


def centroid_ijk(ids_path: Path, nodule_id: int) -> np.ndarray:
    kji = np.argwhere(read_volume(ids_path).array == nodule_id)
    return kji.mean(axis=0)[::-1]


def test_monai_datalist_and_box_transforms_put_every_box_on_its_mask(made, tmp_path):
    from monai.apps.detection.transforms.dictionary import AffineBoxToImageCoordinated, ConvertBoxToStandardModed
    from monai.data import load_decathlon_datalist
    from monai.transforms import Compose, EnsureChannelFirstd, EnsureTyped, LoadImaged

    try:  # the bundle reads with ITK, turning its LPS affine into RAS; nibabel's affine is RAS already
        import itk  # noqa: F401
        reader = {"reader": "ITKReader", "affine_lps_to_ras": True}
    except ImportError:
        reader = {"reader": "NibabelReader"}
    out = export(made, "monai-detection", tmp_path / "det")
    items = load_decathlon_datalist(str(out / "datalist.json"), is_segmentation=True, data_list_key="training",
                                    base_dir=str(out))
    transforms = Compose([
        LoadImaged(keys="image", image_only=False, meta_key_postfix="meta_dict", **reader),
        EnsureChannelFirstd(keys="image"),
        EnsureTyped(keys=["box", "label"]),
        ConvertBoxToStandardModed(box_keys="box", mode="cccwhd"),
        AffineBoxToImageCoordinated(box_keys="box", box_ref_image_keys="image", image_meta_key_postfix="meta_dict",
                                    affine_lps_to_ras=True)])
    nodules = 0
    for item in items:
        case = Path(item["image"]).parent
        data = transforms(item)
        boxes = np.asarray(data["box"], dtype=float)
        assert list(item["label"]) == [0] * len(boxes)
        for number, box in enumerate(boxes, start=1):
            centre = (box[:3] + box[3:]) / 2.0
            assert np.all(np.abs(centre - centroid_ijk(case / "ids.nii.gz", number)) <= 1.0), (case.name, number)
            nodules += 1
    assert nodules == 5


def test_nnunet_folder_passes_nnunet_v2s_own_integrity_check(made, tmp_path):
    pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity", reason="nnU-Net v2 is not installed (pip install nnunetv2: the nnunet extra)")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    out = export(made, "nnunet", tmp_path / "Dataset501_synthetic", "--dataset-id", "501")
    verify_dataset_integrity(str(out), num_processes=1)
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["numTraining"] == len(list((out / "labelsTr").iterdir())) == len(list((out / "imagesTr").iterdir()))
    label = read_volume(next((out / "labelsTr").iterdir())).array
    assert sorted(np.unique(label)) == [0, 1]


def test_nnunet_folder_must_carry_the_dataset_id_in_its_name(made, tmp_path, capsys):
    out = tmp_path / "Dataset007_synthetic"
    assert main(["cohort", "export", str(made), "--format", "nnunet", "--out", str(out), "--dataset-id", "8"]) == 2
    assert "Dataset008_<name>" in capsys.readouterr().err and not out.exists()


def test_luna16_rows_feed_evaluate_froc_unchanged(made, tmp_path):
    out = export(made, "luna16", tmp_path / "luna")
    with open(out / "annotations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    detections = tmp_path / "detections.csv"
    with open(detections, "w", newline="") as handle:  # every annotation found, with probability 0.9
        writer = csv.DictWriter(handle, [*rows[0], "probability"])
        writer.writeheader()
        writer.writerows({**r, "probability": 0.9} for r in rows)
    report = tmp_path / "froc.json"
    assert main(["evaluate", "froc", "--annotations", str(out / "annotations.csv"), "--detections", str(detections),
                 "--scans", str(out / "seriesuids.csv"), "--json", str(report), "--bootstrap", "0"]) == 0
    result = json.loads(report.read_text())
    assert result["n_scans"] == 2 and result["cpm"] == pytest.approx(1.0)


def test_classification_rows_and_provenance_mark_every_case_synthetic(made, tmp_path):
    out = export(made, "classification", tmp_path / "cls")
    with open(out / "nodules.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CLASSIFICATION_COLUMNS and len(rows) == 5
    assert all(r["synthetic"] == "1" and r["patient_id"] in ("demo0", "demo1") for r in rows)
    assert {r["subtype"] for r in rows} == set(COUNTS)
    provenance = json.loads((out / "provenance.json").read_text())
    cases = provenance["cases"]
    assert provenance["synthetic"] and set(cases) == {r["case_id"] for r in rows}
    for case in cases.values():
        assert case["synthetic"] and case["engine"] == "classic" and case["licences"] == {"ct": "CC0 (demo phantom)"}
        assert (out / case["source_ct"]).resolve().is_file() and case["seeds"]["nodules"]


def test_a_cohort_whose_cases_are_not_made_is_refused_and_nothing_written(tmp_path, capsys):
    sources = write_sources(tmp_path, seeds=(0,))
    plan = tmp_path / "plan"
    assert main(["cohort", "plan", str(write_spec(sources, counts={"solid": {"6-8": 1}})), "--out", str(plan)]) == 0
    out = tmp_path / "det"
    assert main(["cohort", "export", str(plan), "--format", "monai-detection", "--out", str(out)]) == 2
    assert "not made yet (demo0_c001); run nodsynth batch run" in capsys.readouterr().err and not out.exists()


def test_report_holds_planned_vs_measured_per_nodule_and_counts_per_bin(made, tmp_path):
    from nodsynth.cohort.report import NODULE_COLUMNS

    out = tmp_path / "report"
    assert main(["cohort", "report", str(made), "--out", str(out)]) == 0
    with open(out / "report.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == NODULE_COLUMNS and len(rows) == 5
    for row in rows:
        assert abs(float(row["measured_diameter_mm"]) - float(row["diameter_mm"])) <= 1.0
        assert row["measured_location"] == row["location"] and row["inside_lung"] == "True"
        assert -1000 < float(row["mean_hu"]) < 400 and row["qc_passed"] == ""
    with open(out / "bins.csv", newline="") as handle:
        bins = list(csv.DictReader(handle))
    assert {(b["subtype"], b["bin_mm"]): int(b["planned"]) for b in bins} == {
        (s, b): n for s, by_bin in COUNTS.items() for b, n in by_bin.items()}
    assert all(b["planned"] == b["measured_in_bin"] for b in bins)
    assert "Counts per bin" in (out / "report.html").read_text()


def test_the_re_estimated_subtype_follows_the_hu_of_the_voxels():
    from nodsynth.cohort.report import estimated_subtype

    rng = np.random.default_rng(0)
    assert estimated_subtype(rng.normal(30, 40, 500)) == "solid"
    assert estimated_subtype(rng.normal(-700, 60, 500)) == "ground-glass"


def test_dicom_export_writes_each_case_as_a_valid_synthetic_ct_series_seg_and_sr(made, tmp_path):
    pytest.importorskip("highdicom", reason="highdicom is not installed (pip install 'nodsynth[dicom]')")
    from dicom_series_writer import dicom_errors, pydicom, tool

    from nodsynth.cohort.made import made_cases
    from nodsynth.cohort.table import read_cohort
    from nodsynth.io.dicom.seg_read import read_segmentation

    dciodvfy = tool("dciodvfy")
    out = export(made, "dicom", tmp_path / "dicom")
    with open(out / "dicom.csv", newline="") as handle:
        index = {r["case_id"]: r for r in csv.DictReader(handle)}
    cases = made_cases(made)
    assert set(index) == {c.case_id for c in cases}
    assert len({r["dicom_patient_id"] for r in index.values()}) == len(cases)  # a new patient per case
    for case in cases:
        folder = out / index[case.case_id]["folder"]
        slices = sorted((folder / "ct").iterdir())
        for path in [*slices, folder / "seg.dcm", folder / "sr.dcm"]:
            assert dicom_errors([dciodvfy, str(path)]) == [], path
        ct, back = read_volume(case.ct), read_volume(folder / "ct")
        assert np.array_equal(back.array, np.rint(ct.array)) and np.allclose(back.origin, ct.origin, atol=1e-4)
        assert np.array_equal(read_segmentation(folder / "seg.dcm").array, read_volume(case.ids).array)
        header = pydicom.dcmread(slices[0], stop_before_pixels=True)
        assert "SYNTHETIC" in header.SeriesDescription and list(header.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert header.PatientID == index[case.case_id]["dicom_patient_id"] != case.patient_id
        seeds = ", ".join(r["seed"] for r in read_cohort(made / "cohort.csv") if r["case_id"] == case.case_id)
        assert header.DerivationDescription.endswith(f"engine classic; weights SHA-256 not recorded; seed {seeds}")
    assert json.loads((out / "provenance.json").read_text())["synthetic"] is True
