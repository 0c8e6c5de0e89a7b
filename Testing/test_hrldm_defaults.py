"""HR-LDM as published: DDPM-1000 by default (DDIM-N the fast option, its background re-noised with one
fixed noise), a real LIDC nodule's histogram as the default target, mask channels derived the same way
in training and inference, and the x4 mask downsampling by interpolation."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import shared_path  # noqa: E402
from nodsynth.cli.main import main  # noqa: E402
from nodsynth.engines.hrldm import build_scheduler, save_hrldm_checkpoint  # noqa: E402
from nodsynth.engines.maisi import save_autoencoder  # noqa: E402
from nodsynth.histogram import jensen_shannon  # noqa: E402
from nodsynth.presets import nodule_histogram, preset_histogram, read_voi_table  # noqa: E402
from nodsynth.io.volume_files import read_volume
from test_hrldm import one_thread, slab_case, tiny  # noqa: E402,F401  (fixtures)


# ---------------------------------------------------------------- the LIDC histogram library
def test_library_holds_the_real_lidc_histograms():
    from nodsynth.histogram_library import load_library

    library = load_library()
    entries = library["nodules"]
    assert len(entries) == 736
    counts = {s: sum(e["subtype"] == s for e in entries) for s in ("solid", "part-solid", "ground-glass")}
    assert counts == {"solid": 653, "part-solid": 17, "ground-glass": 66}  # LIDC Texture_value 5+4, 3, 2+1
    assert "CC BY 3.0" in library["licence"] and "Armato" in library["licence"]
    vois = shared_path("lidc_vois")
    by_id = {e["id"]: e for e in entries}
    for nodule in read_voi_table(vois)[::150]:  # recompute a few from the CT crops and reader masks
        entry = by_id[nodule.image.name.split(".nii")[0]]
        expected = nodule_histogram(read_volume(nodule.image), read_volume(nodule.mask))
        stored = np.zeros(40)
        stored[entry["first_bin"]:entry["first_bin"] + len(entry["counts"])] = entry["counts"]
        assert np.allclose(stored / stored.sum(), expected, atol=1e-12) and entry["subtype"] == nodule.subtype


def test_default_target_is_a_real_nodule_of_the_subtype_and_size():
    from nodsynth.histogram_library import library_histogram, load_library

    entries = load_library()["nodules"]
    drawn = [library_histogram("ground-glass", 8.0, seed=s) for s in range(6)]
    ggo = sorted((e for e in entries if e["subtype"] == "ground-glass"), key=lambda e: abs(np.log(e["diameter_mm"] / 8.0)))
    near = {e["id"] for e in ggo[:8]}
    assert all(entry["id"] in near for _, entry in drawn)
    assert len({entry["id"] for _, entry in drawn}) > 1  # seeds draw different nodules
    histogram, entry = drawn[0]
    assert jensen_shannon(histogram, preset_histogram("ground-glass")) > 0.01  # not the smooth subtype mean
    again, _ = library_histogram("ground-glass", 8.0, seed=0)
    assert np.array_equal(histogram, again)


# ---------------------------------------------------------------- defaults through the CLI and engines
@pytest.fixture(scope="module")
def tiny_folder(tiny, tmp_path_factory):
    config, network, autoencoder = tiny
    folder = tmp_path_factory.mktemp("hrldm_weights")
    save_hrldm_checkpoint(folder / "hrldm.pt", network, {**config, "roi": {"margin_latent": 0}}, scale_factor=1.0)
    save_autoencoder(autoencoder, folder / "autoencoder.pt")
    return folder


def test_inpaint_defaults_to_ddpm_1000_with_a_library_histogram(tiny_folder, slab_case, tmp_path, monkeypatch):
    import hashlib

    from nodsynth.io.volume_files import write_volume

    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    ct, mask = slab_case
    ct_path, mask_path = write_volume(ct, tmp_path / "ct.nrrd"), write_volume(mask, tmp_path / "mask.nrrd")
    summary = tmp_path / "info.json"
    assert main(["inpaint", "--ct", str(ct_path), "--mask", str(mask_path), "--subtype", "part-solid",
                 "--engine", "hrldm", "--weights", str(tiny_folder), "--device", "cpu", "--seed", "2",
                 "--out", str(tmp_path / "out.nrrd"), "--json", str(summary)]) == 0
    info = json.loads(summary.read_text())
    assert info["sampler"] == "ddpm" and info["steps"] == 1000
    from nodsynth.histogram_library import library_histogram

    diameter = (6.0 * int((mask.array > 0).sum()) * ct.voxel_volume_mm3 / np.pi) ** (1 / 3)
    expected, entry = library_histogram("part-solid", diameter, seed=2)
    assert info["histogram_source"] == f"library:{entry['id']}"
    assert info["target_histogram"] == pytest.approx(expected.tolist(), abs=1e-12)
    assert info["checkpoints"]["hrldm"]["sha256"] == hashlib.sha256((tiny_folder / "hrldm.pt").read_bytes()).hexdigest()


def test_ddim_reanchors_the_background_with_one_fixed_noise(tiny, slab_case):
    from nodsynth.engines.hrldm.inference import sample_latent

    config, network, _ = tiny
    scheduler = build_scheduler(config, "ddim")
    scheduler.set_timesteps(5)
    z0 = torch.randn(1, 4, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    region = torch.zeros(1, 1, 8, 8, 8)
    region[..., 2:6, 2:6, 2:6] = 1.0
    inputs = []
    handle = network.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    try:
        sample_latent(network, scheduler, z0, region.repeat(1, 2, 1, 1, 1), region, 0, np.full(40, 1 / 40),
                      torch.Generator().manual_seed(4))
    finally:
        handle.remove()
    alphas = scheduler.alphas_cumprod
    background = region[0, 0] == 0
    implied = []  # the noise each step's background was re-noised with: (x_t - sqrt(a) z0) / sqrt(1 - a)
    stride = scheduler.num_train_timesteps // scheduler.num_inference_steps  # MONAI's DDIM steps t -> t - T/N
    for x, t in zip(inputs[1:], scheduler.timesteps[:-1]):
        a = alphas[int(t) - stride]
        implied.append(((x - a.sqrt() * z0) / (1 - a).sqrt())[0][:, background])
    assert len(implied) == 4
    assert all(torch.allclose(e, implied[0], atol=1e-4) for e in implied[1:])
    initial = inputs[0][0][:, background]  # the starting noise x_T is that same noise
    assert torch.allclose(implied[0], initial, atol=1e-4)


# ---------------------------------------------------------------- mask channels
def _lidc_nodule(index: int):
    nodule = read_voi_table(shared_path("lidc_vois"))[index]
    return read_volume(nodule.image), read_volume(nodule.mask), nodule.subtype


def test_mask_channels_are_derived_the_same_way_in_training_and_inference(tiny):
    from nodsynth.engines.hrldm.inference import mask_channels, solid_core
    from nodsynth.engines.maisi.orientation import NetworkAxes
    from nodsynth.train.hrldm import make_sample, nodule_patch

    config, _, autoencoder = tiny
    for index in (0, 7, 30):
        ct, mask, subtype = _lidc_nodule(index)
        sample = make_sample(ct, mask, subtype, autoencoder, config)
        _, mask_patch = nodule_patch(ct, mask, config["training"]["patch_size"])
        spacing = NetworkAxes.of(ct).spacing_xyz(ct)
        inference = mask_channels(mask_patch.astype(np.int16), nodule_histogram(ct, mask), spacing, config)
        assert np.array_equal(sample.mask_latent.numpy(), inference)
        # the solid-core channel holds the nodule's share of voxels at or above -300 HU, deepest first
        hu = ct.array[mask.array > 0]
        core = solid_core(mask_patch.astype(np.int16), nodule_histogram(ct, mask), spacing)
        assert int(core.sum()) == round(float((hu >= -300).mean()) * int(mask_patch.sum()))
        assert core.any() and not np.any(core & ~mask_patch)


def test_x4_mask_downsampling_is_trilinear_interpolation(tiny):
    import torch.nn.functional as F

    from nodsynth.engines.hrldm.inference import mask_channels

    config = tiny[0]
    ct, mask, _ = _lidc_nodule(7)
    from nodsynth.train.hrldm import nodule_patch

    _, mask_patch = nodule_patch(ct, mask, config["training"]["patch_size"])
    channels = mask_channels(mask_patch.astype(np.int16), preset_histogram("solid"), (0.7, 0.7, 1.25), config)
    expected = F.interpolate(torch.as_tensor(mask_patch, dtype=torch.float32)[None, None], scale_factor=0.25,
                             mode="trilinear", align_corners=False)[0, 0].numpy()
    assert np.allclose(channels[0], expected, atol=1e-6)
    assert 0.0 < channels[0][(channels[0] > 0)].min() < 1.0  # soft edges, not a max-pooled block mask


def test_histograms_library_verb_rebuilds_the_shipped_entries(tmp_path):
    from nodsynth.histogram_library import load_library

    vois = shared_path("lidc_vois")
    lines = (vois / "nodules.csv").read_text().splitlines()
    table = tmp_path / "three.csv"
    table.write_text("\n".join([lines[0], lines[1], lines[100], lines[500]]) + "\n")
    out = tmp_path / "library.json"
    assert main(["histograms", "library", "--vois", str(vois), "--csv", str(table), "--out", str(out)]) == 0
    rebuilt = load_library(out)["nodules"]
    shipped = {e["id"]: e for e in load_library()["nodules"]}
    assert len(rebuilt) == 3 and all(e == shipped[e["id"]] for e in rebuilt)
