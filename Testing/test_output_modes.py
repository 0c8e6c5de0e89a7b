"""Issue 20 item 6: output files follow the umask (0644 under 022, 0640 under 027), so the group sharing
study cases and batch outputs can read them; the server's job files stay owner-only (0600)."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io.atomic import write_csv_atomic
from nodsynth.cli.main import main
from nodsynth.server.jobs import JOB_FILE, REQUEST_FILE, JobStore
from nodsynth.io.volume_files import read_volume, write_volume

CASE = "LIDC-IDRI-0001_R_1.nii.gz"


@pytest.fixture
def umask():
    """Set a umask for the test; the previous one is restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask_bits,expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_segment_and_measure_outputs_follow_the_umask(umask, tmp_path, mask_bits, expected):
    ct_path, mask_path = shared_path("lidc_vois", "image", CASE), shared_path("lidc_vois", "nodule_mask", CASE)
    mask = read_volume(mask_path)
    centre = mask.index_to_world(np.argwhere(mask.array > 0).mean(axis=0)[::-1])
    umask(mask_bits)
    out, info, measured = tmp_path / "mask.nii.gz", tmp_path / "seg.json", tmp_path / "measure.json"
    assert main(["segment", "--ct", str(ct_path), "--point=" + ",".join(f"{v:.2f}" for v in centre),
                 "--out", str(out), "--json", str(info)]) == 0
    assert main(["measure", "--ct", str(ct_path), "--mask", str(out), "--json", str(measured)]) == 0
    copy = tmp_path / "copy.nrrd"
    write_volume(mask, copy)
    table = write_csv_atomic(tmp_path / "rows.csv", [{"a": 1}])
    assert {p.name: oct(mode(p)) for p in (out, info, measured, copy, table)} == \
        {p.name: oct(expected) for p in (out, info, measured, copy, table)}


def test_server_job_files_stay_owner_only(umask, tmp_path):
    umask(0o022)
    store = JobStore(tmp_path / "jobs")
    job = store.submit([b"request bytes"], "generate", "tiny")
    folder = tmp_path / "jobs" / job.id
    assert oct(mode(folder / REQUEST_FILE)) == oct(0o600) and oct(mode(folder / JOB_FILE)) == oct(0o600)


def test_turing_study_files_are_group_readable(umask, tmp_path):
    vois = shared_path("lidc_vois")
    rows = {truth: f"{vois}/image/{name},{vois}/nodule_mask/{name},solid,7.5"
            for truth, name in (("real", "LIDC-IDRI-0068_R_3.nii.gz"), ("synthetic", "LIDC-IDRI-0091_R_3.nii.gz"))}
    for truth, row in rows.items():
        (tmp_path / f"{truth}.csv").write_text(f"ct,mask,subtype,diameter_mm\n{row}\n")
    umask(0o022)
    study = tmp_path / "study"
    assert main(["turing", "build", "--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "synthetic.csv"),
                 "--out", str(study), "--n-real", "1", "--n-synthetic", "1", "--phases", "cropped",
                 "--cube-mm", "16"]) == 0
    files = [p for p in study.rglob("*") if p.is_file()]
    assert len(files) >= 5 and {oct(mode(p)) for p in files} == {oct(0o644)}
