"""``nodsynth inpaint`` on a real LIDC slab: sampled, clicked and given-mask insertion; errors write nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.volume import lps_to_ras
from nodsynth.io.volume_files import read_volume


@pytest.fixture(scope="module")
def slab():
    return shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd")


def test_sampled_inner_insertion(slab, tmp_path):
    out, mask_out, info = tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz", tmp_path / "info.json"
    assert main(["inpaint", "--ct", str(slab), "--sample", "inner", "--diameter-mm", "12", "--subtype", "ground-glass",
                 "--lobulation", "0.4", "--out", str(out), "--out-mask", str(mask_out), "--json", str(info)]) == 0
    ct, result, mask = read_volume(slab), read_volume(out), read_volume(mask_out)
    summary = json.loads(info.read_text())
    print("inpaint --sample inner:", summary)
    assert summary["engine"] == "classic" and summary["jsd"] <= 0.05
    changed = result.array != ct.array
    assert changed.any() and mask.array.sum() == summary["nodule_voxels"]
    # --diameter-mm is the equivalent-sphere diameter of what is inserted
    inserted_mm = (6.0 * mask.array.sum() * ct.voxel_volume_mm3 / np.pi) ** (1.0 / 3.0)
    assert inserted_mm == pytest.approx(12.0, abs=1.0) and summary["equivalent_diameter_mm"] == pytest.approx(inserted_mm, abs=0.01)
    # changes stay at the nodule (within its 1 mm partial-volume edge: one voxel in-plane here)
    from scipy import ndimage
    near = ndimage.binary_dilation(mask.array > 0, iterations=2)
    assert not changed[~near].any()
    assert np.median(ct.array[mask.array > 0]) < -600  # it was placed in aerated lung


def test_point_in_ras_and_preset_cluster(slab, tmp_path):
    ct = read_volume(slab)
    existing = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    kji = np.argwhere(existing.array > 0).mean(axis=0).round().astype(int)
    centre_lps = ct.index_to_world(kji[::-1].astype(float)) + np.array([-60.0, 0.0, 0.0])
    ras = lps_to_ras(centre_lps)
    out = tmp_path / "p.nrrd"
    assert main(["inpaint", "--ct", str(slab), "--point", ",".join(f"{v:.2f}" for v in ras), "--ras",
                 "--diameter-mm", "8", "--subtype", "solid", "--histogram", "preset:2", "--out", str(out)]) == 0
    changed = np.argwhere(read_volume(out).array != ct.array)
    centre_of_change = ct.index_to_world(changed.mean(axis=0)[::-1])
    assert np.linalg.norm(centre_of_change - centre_lps) < 3.0


def test_errors_write_nothing(slab, tmp_path, capsys):
    out = tmp_path / "x.nii.gz"
    assert main(["inpaint", "--ct", str(slab), "--point", "1000,1000,1000", "--out", str(out)]) == 2
    assert "outside the volume" in capsys.readouterr().err
    assert main(["inpaint", "--ct", str(slab), "--sample", "inner", "--out", str(slab)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main(["inpaint", "--ct", str(slab), "--sample", "inner", "--histogram", "preset:x", "--out", str(out)]) == 2
    middle = read_volume(slab).index_to_world([256, 256, 8])
    assert main(["inpaint", "--ct", str(slab), "--point", ",".join(map(str, middle)), "--engine", "hrldm", "--weights",
                 str(tmp_path / "no_weights"), "--device", "cpu", "--out", str(out)]) == 2
    assert "missing weights" in capsys.readouterr().err
    assert not out.exists()
