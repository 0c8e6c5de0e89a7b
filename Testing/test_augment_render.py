"""``nodsynth augment --render roi|twin``: the CT of every augmented label map, as a ROI edit of the
original CT (the default) or as a whole new twin of the augmented map (the NodMAISI paper's way)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nodsynth.cli.main import main
from nodsynth.labelmap import load_labelmap
from nodsynth.phantom import make_demo_patient
from nodsynth.io.volume_files import read_volume, write_volume


@pytest.fixture(scope="module")
def patient():
    return make_demo_patient(0)


@pytest.fixture
def files(tmp_path, patient):
    return (write_volume(patient.labelmap, tmp_path / "case.nii.gz"), write_volume(patient.ct, tmp_path / "ct.nii.gz"))


def test_render_defaults_to_a_roi_edit_of_the_original_ct(tmp_path, files, patient):
    label, ct = files
    out = tmp_path / "out"
    assert main(["augment", str(label), "--percent", "50", "--nodule", "1", "--out", str(out),
                 "--ct", str(ct), "--render"]) == 0
    edited = load_labelmap(out / "case_p50.nii.gz").array
    rendered = read_volume(out / "case_p50_ct.nii.gz")
    assert rendered.shape_kji == patient.ct.shape_kji and np.allclose(rendered.spacing, patient.ct.spacing)
    changed = edited != patient.labelmap.array
    assert changed.any() and np.any(rendered.array[changed] != patient.ct.array[changed])
    far = ndimage.distance_transform_edt(~changed, sampling=patient.ct.spacing[::-1]) > 3.0
    assert np.array_equal(rendered.array[far], patient.ct.array[far])  # a ROI edit keeps the real CT


def test_render_twin_is_a_whole_new_ct_of_the_augmented_map(tmp_path, files, patient, monkeypatch):
    from nodsynth.engines import TwinRequest, get_engine
    from test_nodmaisi_engine import tiny_weights_folder

    pytest.importorskip("monai")
    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    weights = tiny_weights_folder(tmp_path / "weights")
    label, ct = files
    out = tmp_path / "out"
    assert main(["augment", str(label), "--percent", "50", "--nodule", "1", "--out", str(out), "--ct", str(ct),
                 "--render", "twin", "--engine", "nodmaisi", "--weights", str(weights), "--device", "cpu",
                 "--config", "maisi_tiny", "--steps", "1", "--seed", "3"]) == 0
    edited = load_labelmap(out / "case_p50.nii.gz")
    rendered = read_volume(out / "case_p50_ct.nii.gz")
    engine = get_engine("nodmaisi", weights_dir=str(weights), device="cpu", config="maisi_tiny")
    twin = engine.twin(TwinRequest(edited, steps=1, seed=3)).ct
    assert np.array_equal(rendered.array, twin.array)
    body = patient.labelmap.array != 0
    assert np.mean(rendered.array[body] != patient.ct.array[body]) > 0.9  # every body voxel is synthetic


def test_render_twin_with_the_model_free_engine_is_refused_before_writing(tmp_path, files, capsys):
    label, ct = files
    out = tmp_path / "out"
    assert main(["augment", str(label), "--percent", "50", "--out", str(out), "--render", "twin"]) == 2
    assert "twin" in capsys.readouterr().err and not out.exists()
    assert main(["augment", str(label), "--percent", "50", "--out", str(out), "--render", "roi"]) == 2
    assert "--ct" in capsys.readouterr().err and not out.exists()
