"""A click on plain lung parenchyma (issue 20, item 3): the library flags the low-contrast mask, the CLI
(single and CSV) and the batch op refuse it as "no nodule at this point" unless forced; real nodules,
ground-glass against the chest wall included, pass. On the real LIDC-IDRI slabs."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from batch_cases import write_manifest
from conftest import shared_path
from nodsynth.batch import run_manifest
from nodsynth.cli.main import main
from nodsynth.segment import segment_nodule
from nodsynth.segment.contrast import MIN_CONTRAST_HU
from nodsynth.io.volume_files import read_volume
from slicer_fixtures import parenchyma_point

SLAB = "LIDC-IDRI-0001_slab.nrrd"


@pytest.fixture(scope="module")
def slab():
    path = shared_path("lidc_slabs", SLAB)
    ct = read_volume(path)
    return path, ct, parenchyma_point(ct)


def nodule_centre(case: str):
    """The real slab CT and the 2-of-4 nodule mask voxel nearest its centroid (LPS mm)."""
    ct = read_volume(shared_path("lidc_slabs", f"{case}_slab.nrrd"))
    kji = np.argwhere(read_volume(shared_path("lidc_slabs", f"{case}_slab_nodule_2of4.nrrd")).array > 0)
    return ct, ct.index_to_world(kji[np.argmin(((kji - kji.mean(axis=0)) ** 2).sum(axis=1))][::-1].astype(float))


def test_the_library_flags_parenchyma_and_keeps_the_mask(slab):
    _, ct, point = slab
    result = segment_nodule(ct, point)
    assert result.voxel_count > 0  # the segmenter outlines something anyway
    assert result.low_contrast and result.contrast_hu < MIN_CONTRAST_HU
    assert result.to_dict()["low_contrast"] is True


@pytest.mark.parametrize("case", ["LIDC-IDRI-0001", "LIDC-IDRI-0002"])
def test_real_nodules_are_not_flagged(case):
    """0002 is ground-glass against the chest wall: denser than its whole shell's median only by
    comparing with the lung in the shell."""
    ct, centre = nodule_centre(case)
    result = segment_nodule(ct, centre)
    assert not result.low_contrast and result.contrast_hu >= MIN_CONTRAST_HU


def test_the_contrast_is_the_nodules_not_the_expanded_masks():
    ct, centre = nodule_centre("LIDC-IDRI-0002")
    plain, expanded = segment_nodule(ct, centre), segment_nodule(ct, centre, expand_mm=3.0)
    assert expanded.voxel_count > 2 * plain.voxel_count
    assert expanded.contrast_hu == plain.contrast_hu and not expanded.low_contrast


def test_the_cli_refuses_parenchyma_unless_forced(slab, tmp_path, capsys):
    path, _, point = slab
    out, info = tmp_path / "out" / "mask.nii.gz", tmp_path / "out" / "info.json"
    argv = ["segment", "--ct", str(path), "--point=" + ",".join(f"{v:.3f}" for v in point),
            "--out", str(out), "--json", str(info)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no nodule at this point" in err and " HU " in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert main(argv + ["--force"]) == 0
    assert read_volume(out).array.any() and json.loads(info.read_text())["segmentation"]["low_contrast"] is True


def test_the_csv_mode_fails_the_parenchyma_row_only(slab, tmp_path, capsys):
    path, _, point = slab
    _, centre = nodule_centre("LIDC-IDRI-0001")
    table = tmp_path / "clicks.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ"])
        writer.writerow([path.name, "lung", *point])
        writer.writerow([path.name, "nodule", *centre])
    out_dir = tmp_path / "masks"
    argv = ["segment", "--csv", str(table), "--ct-dir", str(path.parent), "--out-dir", str(out_dir)]
    assert main(argv) == 1
    assert "no nodule at this point" in capsys.readouterr().err
    assert sorted(p.name for p in out_dir.glob("*.nii.gz")) == ["LIDC-IDRI-0001_slab_nodule.nii.gz"]
    assert main(argv + ["--force"]) == 0
    assert (out_dir / "LIDC-IDRI-0001_slab_lung.nii.gz").is_file()


def test_the_batch_op_records_the_refusal_as_a_failed_case(slab, tmp_path):
    path, _, point = slab
    rows = [{"id": f"lung-{force}", "op": "segment", "inputs": {"ct": str(path)},
             "params": {"point": [float(v) for v in point], **({"force": True} if force else {})},
             "outputs": {"mask": f"out/lung-{force}.nii.gz"}} for force in (False, True)]
    summary = run_manifest(write_manifest(tmp_path / "manifest.jsonl", rows), executor="inline")
    assert summary.failed == ["lung-False"] and summary.ran == ["lung-True"]
    failed = [json.loads(line) for line in (tmp_path / "out" / "failed.jsonl").read_text().splitlines()]
    assert "no nodule at this point" in failed[0]["error"] and "HU" in failed[0]["error"]
    assert not (tmp_path / "out" / "lung-False.nii.gz").exists() and (tmp_path / "out" / "lung-True.nii.gz").is_file()
