"""Weights configuration: --weights / NODSYNTH_WEIGHTS / user config file, names, messages, the verb."""
from __future__ import annotations

import hashlib
import json

import pytest

from nodsynth.cli.main import main
from nodsynth.errors import WeightsError
from nodsynth.weights import find_weights, search_places, user_config_path, weights_report


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    monkeypatch.setenv("NODSYNTH_CONFIG", str(tmp_path / "absent-config.json"))
    return monkeypatch


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_missing_weights_name_the_files_and_every_place_searched(clean_env, tmp_path):
    folder = tmp_path / "w"
    _touch(folder / "autoencoder.pt")
    with pytest.raises(WeightsError) as info:
        find_weights("nodmaisi", folder)
    text = str(info.value)
    assert "diffusion_unet (diffusion_unet.pt or diff_unet_3d_rflow-ct.pt)" in text
    assert ("controlnet (Experiments_NoMAISI_512xy_256z_771p25m_finetune_500epoch_best.pt or *NoMAISI*.pt or "
            "*NodMAISI*.pt or controlnet*.pt or *controlnet*.pt)") in text
    assert "autoencoder (" not in text
    assert f"{folder / 'nodmaisi'} (--weights)" in text and f"{folder} (--weights)" in text
    with pytest.raises(WeightsError) as info:
        find_weights("nodmaisi")
    text = str(info.value)
    assert "NODSYNTH_WEIGHTS is not set" in text and "absent-config.json" in text


def test_release_and_nomaisi_names_env_var_and_config_file(clean_env, tmp_path):
    env_dir, cfg_dir = tmp_path / "env", tmp_path / "cfg"
    _touch(env_dir / "nodmaisi" / "autoencoder_v1.pt")
    _touch(env_dir / "diff_unet_3d_rflow-ct.pt")
    _touch(cfg_dir / "controlnet_epoch40.pt")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"weights_dir": "cfg"}))
    clean_env.setenv("NODSYNTH_WEIGHTS", str(env_dir))
    clean_env.setenv("NODSYNTH_CONFIG", str(config))
    assert user_config_path() == config
    found = find_weights("nodmaisi")
    assert found == {"autoencoder": env_dir / "nodmaisi" / "autoencoder_v1.pt",
                     "diffusion_unet": env_dir / "diff_unet_3d_rflow-ct.pt",
                     "controlnet": cfg_dir / "controlnet_epoch40.pt"}
    # --weights replaces the other places
    assert [p.source for p in search_places("nodmaisi", tmp_path)] == ["--weights", "--weights"]


def test_weights_verb_lists_sizes_and_sha256(clean_env, tmp_path, capsys):
    payload = b"not really a checkpoint"
    for name in ("autoencoder.pt", "diffusion_unet.pt", "controlnet_a.pt", "controlnet_b.pt"):
        _touch(tmp_path / name, payload)
    assert main(["weights", "--engine", "nodmaisi", "--weights", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "nodmaisi: complete" in text and hashlib.sha256(payload).hexdigest() in text
    assert f"also  {tmp_path / 'controlnet_b.pt'} (not used)" in text
    report = weights_report("nodmaisi", tmp_path)
    assert [f["size_bytes"] for f in report["files"]] == [len(payload)] * 3
    (tmp_path / "diffusion_unet.pt").unlink()
    assert main(["weights", "--engine", "nodmaisi", "--weights", str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data[0]["complete"] is False and data[0]["files"][1]["found"] is None


# ---------------------------------------------------------------- issue 15: the right ControlNet
BASELINE = "controlnet_3d_rflow-ct.pt"
RELEASE = "Experiments_NoMAISI_512xy_256z_771p25m_finetune_500epoch_best.pt"  # NoMAISI's inference config


def _nodmaisi_folder(folder, controlnets):
    for name in ("autoencoder.pt", "diffusion_unet.pt", *controlnets):
        _touch(folder / name, name.encode())
    return folder


def test_only_the_baseline_controlnet_is_refused_with_the_reason(clean_env, tmp_path):
    folder = _nodmaisi_folder(tmp_path / "w", [BASELINE])
    with pytest.raises(WeightsError) as info:
        find_weights("nodmaisi", folder)
    text = str(info.value)
    assert str(folder / BASELINE) in text and "--allow-baseline-controlnet" in text
    assert "2/43" in text and "30/43" in text  # why: NodMAISI's detection of sub-centimetre nodules
    assert find_weights("nodmaisi", folder, allow_fallback=True)["controlnet"] == folder / BASELINE


def test_the_nodmaisi_controlnet_is_taken_before_the_baseline(clean_env, tmp_path):
    folder = _nodmaisi_folder(tmp_path / "w", [BASELINE, RELEASE])
    assert find_weights("nodmaisi", folder)["controlnet"] == folder / RELEASE
    report = weights_report("nodmaisi", folder, with_hash=False)
    controlnet = report["files"][2]
    assert controlnet["found"] == str(folder / RELEASE) and str(folder / BASELINE) not in controlnet["alternatives"]


def test_controlnet_name_patterns_from_the_config_file_come_first(clean_env, tmp_path):
    folder = _nodmaisi_folder(tmp_path / "w", [BASELINE, RELEASE, "finetuned_epoch40.pt"])
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"controlnet_names": ["finetuned_*.pt"]}))
    clean_env.setenv("NODSYNTH_CONFIG", str(config))
    assert find_weights("nodmaisi", folder)["controlnet"] == folder / "finetuned_epoch40.pt"
    assert "finetuned_*.pt" in weights_report("nodmaisi", folder, with_hash=False)["files"][2]["looks_for"]


def test_checkpoint_sha256_survive_a_write_and_read_in_nrrd_mha_and_nifti(clean_env, tmp_path):
    import numpy as np
    import SimpleITK as sitk

    from nodsynth.engines.base import SynthesisResult
    from nodsynth.volume import Volume
    from nodsynth.io.volume_files import write_volume
    from nodsynth.weights import checkpoint_records

    folder = _nodmaisi_folder(tmp_path / "w", [RELEASE])
    files = find_weights("nodmaisi", folder)
    records = checkpoint_records("nodmaisi", files)
    digests = {role: hashlib.sha256(path.read_bytes()).hexdigest() for role, path in files.items()}
    assert {role: r["sha256"] for role, r in records.items()} == digests
    result = SynthesisResult({"ct": Volume(np.zeros((4, 5, 6), np.int16))}, "nodmaisi", info={"checkpoints": records})
    for suffix in (".nrrd", ".mha"):
        image = sitk.ReadImage(str(write_volume(result.ct, tmp_path / f"ct{suffix}", metadata=result.file_metadata())))
        assert {role: image.GetMetaData(f"nodsynth_{role}_sha256") for role in digests} == digests
    image = sitk.ReadImage(str(write_volume(result.ct, tmp_path / "ct.nii.gz", metadata=result.file_metadata())))
    assert image.GetMetaData("ITK_FileNotes") == f"controlnet:{digests['controlnet']}"  # NIfTI descrip, 80 chars
