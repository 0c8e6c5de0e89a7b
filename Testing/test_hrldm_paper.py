"""HR-LDM ``--mode paper`` (tiny configuration ``hrldm_paper_tiny``, random weights, CPU) on 64^3 crops of
the demo patient: the paper's histogram formula, Algorithm 2's re-noising step by step, the decoded
background, the mask channels, training and inference from the command line, and mode mismatches refused."""
from __future__ import annotations

import argparse
import csv
import json
import math
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.engines import InpaintRequest  # noqa: E402
from nodsynth.engines.hrldm import (HRLDMEngine, HRLDMNet, TruncatedDecoder, load_hrldm_checkpoint,  # noqa: E402
                                    load_hrldm_config, save_hrldm_checkpoint)
from nodsynth.engines.hrldm.paper_inference import inpaint_whole  # noqa: E402
from nodsynth.engines.hrldm.paper_masks import paper_channels_image  # noqa: E402
from nodsynth.engines.hrldm.softhist import lesion_histograms  # noqa: E402
from nodsynth.engines.maisi import build_autoencoder, hu_to_unit  # noqa: E402
from nodsynth.engines.maisi.orientation import NetworkAxes  # noqa: E402
from nodsynth.errors import InputError, WeightsError  # noqa: E402
from nodsynth.presets import preset_histogram  # noqa: E402
from nodsynth.train import hrldm as train_hrldm  # noqa: E402
from nodsynth.io.volume_files import read_volume, write_volume
from test_hrldm import one_thread  # noqa: E402,F401  (autouse: one torch thread)

CROP = 64  # voxels per axis: a multiple of maisi_tiny's 32, so the published resize keeps the crop's size


@pytest.fixture(scope="module")
def paper_tiny():
    config = load_hrldm_config("hrldm_paper_tiny")
    torch.manual_seed(0)
    network = HRLDMNet(config).eval()
    with torch.no_grad():  # MONAI zero-initialises output and attention projections: make every input matter
        for parameter in network.parameters():
            if parameter.ndim > 1 and not parameter.any():
                parameter.normal_(0.0, 0.05)
    autoencoder = build_autoencoder(config["autoencoder_config"], "cpu").eval()
    return network, autoencoder, config


@pytest.fixture(scope="module")
def patient():
    from nodsynth.phantom import make_demo_patient

    return make_demo_patient(0)


def _crop_case(patient, seed: int):
    """A 64^3 crop of the demo patient around a placed 10 mm nodule: ``(ct, mask)``."""
    from nodsynth.place import placement_regions, resolve_lung, sample_centroids
    from nodsynth.shapes import place_shape, procedural_shape

    lung, existing = resolve_lung(labelmap=patient.labelmap)
    centre = sample_centroids(placement_regions(lung, 10.0, nodules=existing), "inner", 1, seed=seed)[0]
    mask = place_shape(procedural_shape(1.2, 0.3, 0.4, seed=seed), patient.ct, centre, 10.0)
    kji = np.array(patient.ct.world_to_kji(centre))
    start = np.clip(kji - CROP // 2, 0, np.array(patient.ct.shape_kji) - CROP)
    return patient.ct.crop(start, start + CROP), mask.crop(start, start + CROP)


@pytest.fixture(scope="module")
def crop_case(patient):
    return _crop_case(patient, 0)


# ---------------------------------------------------------------- the paper's histogram (Eq. 7, bins over [min, max])
def _paper_histogram(values: np.ndarray, weights: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Direct formula: centres c_b = lo + b (hi - lo) / (B - 1), width w = (hi - lo) / (B - 1),
    h_b = sum_i m_i max(0, 1 - |x_i - c_b| / w), normalised to sum 1."""
    width = (hi - lo) / (bins - 1)
    counts = np.array([np.sum(weights * np.maximum(0.0, 1.0 - np.abs(values - (lo + b * width)) / width))
                       for b in range(bins)])
    return counts / counts.sum()


def test_the_histogram_loss_bins_are_the_papers_formula(paper_tiny, crop_case):
    network, autoencoder, config = paper_tiny
    ct, mask = crop_case
    axes = NetworkAxes.of(ct)
    unit = hu_to_unit(torch.as_tensor(axes.to_network(ct.array).astype(np.float32)))[None, None]
    with torch.no_grad():
        latent = autoencoder.encode(unit)[0]
        real = TruncatedDecoder(autoencoder)(latent).float()
        fake = TruncatedDecoder(autoencoder)(latent + 0.3 * torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))).float()
    factor = CROP // real.shape[2]
    nodule = torch.as_tensor(axes.to_network(mask.array) > 0)[None, None].float()
    lesion = torch.nn.functional.max_pool3d(nodule, factor)  # already on the feature grid: no resampling inside
    got_fake, got_real = lesion_histograms(config, fake, real, lesion)
    bins = int(config["feature_histogram"]["bins"])
    assert got_fake.shape == (1, real.shape[1], bins)
    inside = lesion[0, 0].numpy().ravel() > 0
    gaps = []
    for channel in range(real.shape[1]):
        x = fake[0, channel].numpy().ravel().astype(np.float64)[inside]
        r = real[0, channel].numpy().ravel().astype(np.float64)[inside]
        lo, hi = min(x.min(), r.min()), max(x.max(), r.max())
        ones = np.ones_like(x)
        gaps.append(max(np.abs(got_fake[0, channel].numpy() - _paper_histogram(x, ones, lo, hi, bins)).max(),
                        np.abs(got_real[0, channel].numpy() - _paper_histogram(r, ones, lo, hi, bins)).max()))
    print(f"paper histogram vs the direct formula, {real.shape[1]} channels, {bins} bins, "
          f"{int(inside.sum())} lesion voxels: max |diff| {max(gaps):.2e}")
    assert max(gaps) <= 1e-6
    roi_config = load_hrldm_config("hrldm_tiny")  # ROI mode still squashes: its bins are not these
    roi_fake, _ = lesion_histograms(roi_config, fake, real, lesion)
    assert not torch.allclose(roi_fake, got_fake, atol=1e-3)


# ---------------------------------------------------------------- Algorithm 2 on the whole-CT latent
def _alphas_cumprod(config) -> np.ndarray:
    """The scaled-linear schedule from the configuration's betas, computed here."""
    s = config["scheduler"]
    betas = np.linspace(math.sqrt(s["beta_start"]), math.sqrt(s["beta_end"]), s["num_train_timesteps"]) ** 2
    return np.cumprod(1.0 - betas)


def _group_stats(module, inputs):
    x = inputs[0]
    n, c = x.shape[:2]
    grouped = x.view(n, module.num_groups, c // module.num_groups, *x.shape[2:]).float()
    mean = grouped.mean([2, 3, 4, 5], keepdim=True)
    return mean, grouped.var([2, 3, 4, 5], unbiased=False, keepdim=True).add(module.eps).sqrt()


def _normalise_with(module, stats, x):
    """MAISI's group norm with given statistics (float16 rounding and affine as MaisiGroupNorm3D)."""
    n, c = x.shape[:2]
    mean, std = stats
    y = (x.view(n, module.num_groups, c // module.num_groups, *x.shape[2:]).float() - mean) / std
    y = (y.half() if module.norm_float16 else y).view(x.shape)
    return y.mul_(module.weight.view(1, c, 1, 1, 1)).add_(module.bias.view(1, c, 1, 1, 1))


@contextmanager
def frozen_norms(autoencoder, reference_latent):
    """Decode with every group norm's statistics taken from decoding ``reference_latent``: the decoder
    then reaches only as far as its convolutions (MAISI's group norms span the whole tile)."""
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import MaisiGroupNorm3D

    norms = [m for m in autoencoder.decoder.modules() if isinstance(m, MaisiGroupNorm3D)]
    stats = {}
    hooks = [m.register_forward_pre_hook(lambda m, i: stats.__setitem__(m, _group_stats(m, i))) for m in norms]
    with torch.no_grad():
        autoencoder.decode(reference_latent)
    for hook in hooks:
        hook.remove()
    for m in norms:
        m.forward = partial(_normalise_with, m, stats[m])
    try:
        yield
    finally:
        for m in norms:
            del m.forward


def _decode_hu(autoencoder, latent) -> np.ndarray:
    with torch.no_grad():
        return (autoencoder.decode(latent).float()[0, 0].clamp(0, 1) * 2000.0 - 1000.0).numpy()


def test_algorithm_2_renoises_the_background_at_every_step_and_decodes_the_input_outside(paper_tiny, crop_case):
    network, autoencoder, config = paper_tiny
    ct, mask = crop_case
    axes = NetworkAxes.of(ct)
    scale = 0.7
    steps = []
    out, info = inpaint_whole(ct, mask, "part-solid", preset_histogram("part-solid"), network, autoencoder, config,
                              scale, sampler="ddpm", steps=10, seed=4,
                              trace=lambda t, x, noise: steps.append((t, x.clone(), noise)))
    assert info["prepared_size_xyz"] == [CROP] * 3 and info["mode"] == "paper"
    unit = hu_to_unit(torch.as_tensor(axes.to_network(ct.array).astype(np.float32)))[None, None]
    with torch.no_grad():
        z0 = autoencoder.encode(unit)[0] * scale
    nodule = torch.as_tensor(axes.to_network(mask.array) > 0)[None, None].float()
    outside = torch.nn.functional.max_pool3d(nodule, 4) == 0  # latent voxels whose 4^3 block holds no nodule
    assert 0 < int((~outside).sum()) < outside.numel()
    alphas = _alphas_cumprod(config)
    timesteps = np.linspace(999, 0, 10).round().astype(int)  # MONAI's DDPM-10 timesteps
    assert [t for t, _, _ in steps] == (timesteps - 1).tolist()  # t-1: the level MONAI's DDPM step goes to
    gaps = []
    for t, x, noise in steps:
        expected = z0 if noise is None else math.sqrt(alphas[t]) * z0 + math.sqrt(1.0 - alphas[t]) * noise
        gaps.append(float((x - expected)[outside.expand_as(x)].abs().max()))
        assert not torch.equal(x[~outside.expand_as(x)], expected[~outside.expand_as(x)])  # generated inside
    print("re-noising |latent - forward-noised input| outside the mask, per step:", [f"{g:.1e}" for g in gaps])
    assert max(gaps) <= 1e-5 and gaps[-1] == 0.0

    final = steps[-1][1]
    region_image = np.kron((~outside)[0, 0].numpy(), np.ones((4, 4, 4), bool))
    reconstruction = _decode_hu(autoencoder, z0 / scale)
    result = axes.to_network(out.array)
    with frozen_norms(autoencoder, z0 / scale):
        probe = z0.clone() / scale
        probe[0, :, 8, 8, 8] += 1.0
        spread = np.argwhere(_decode_hu(autoencoder, probe) != reconstruction)
        reach = int(np.abs(spread - np.array([33.5] * 3)).max() - 1.5)  # image voxels beyond the 4^3 block
        frozen = _decode_hu(autoencoder, final / scale)
    assert np.array_equal(result, np.clip(np.rint(frozen), -32768, 32767).astype(out.array.dtype))
    far = ~_dilate(region_image, reach)
    rounded = np.clip(np.rint(reconstruction), -32768, 32767).astype(out.array.dtype)
    unfrozen = float(np.abs(_decode_hu(autoencoder, final / scale) - reconstruction)[far].max())
    print(f"decoder reach (convolutions) {reach} voxels; outside the nodule region dilated by it ({int(far.sum())} "
          f"voxels) the result equals the VAE reconstruction: {np.array_equal(result[far], rounded[far])}; a plain "
          f"decode (statistics of its own tile, MAISI's group norms span it) would differ by up to {unfrozen:.2f} HU")
    assert reach > 0 and far.any() and np.array_equal(result[far], rounded[far])
    assert not np.array_equal(result[~far], rounded[~far])  # the nodule is generated


def test_decoder_checkpointing_gives_the_same_features_and_gradients(paper_tiny):
    """Paper mode recomputes the truncated decoder's activations in the backward pass (memory of a
    whole-CT step): features and the gradient reaching the latent are those of keeping them."""
    _, autoencoder, config = paper_tiny
    assert config["training"]["decoder_checkpointing"] is True
    latent = torch.randn((1, 4, 8, 8, 8), generator=torch.Generator().manual_seed(3))
    results = []
    for checkpointing in (False, True):
        x = latent.clone().requires_grad_(True)
        features = TruncatedDecoder(autoencoder, checkpointing)(x)
        weights = torch.rand(features.shape, generator=torch.Generator().manual_seed(4))
        (features * weights).sum().backward()
        results.append((features.detach(), x.grad))
    (plain, plain_grad), (recomputed, recomputed_grad) = results
    assert plain_grad.abs().sum() > 0
    assert torch.equal(plain, recomputed) and torch.allclose(plain_grad, recomputed_grad, rtol=0, atol=1e-6)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` voxels (a cube: chessboard distance)."""
    from scipy import ndimage

    return ndimage.distance_transform_cdt(~mask, metric="chessboard") <= radius


def test_paper_mask_channels_are_core_ground_glass_and_spiculation(crop_case):
    ct, mask = crop_case
    labels = (np.asarray(NetworkAxes.of(ct).to_network(mask.array)) > 0).astype(np.int16)
    spacing = NetworkAxes.of(ct).spacing_xyz(ct)
    core, glass, spicules = paper_channels_image(labels, preset_histogram("part-solid"), spacing)
    assert core.any() and glass.any() and not spicules.any()  # no spiculation labelled: zeros
    assert not (core & glass).any() and np.array_equal(core | glass, labels > 0)
    labelled = labels.copy()
    rim = (labels > 0) & ~core & (np.indices(labels.shape)[0] % 3 == 0)
    labelled[rim] = 3
    _, _, spicules = paper_channels_image(labelled, preset_histogram("part-solid"), spacing)
    assert np.array_equal(spicules, rim)


# ---------------------------------------------------------------- command line, checkpoints and modes
@pytest.fixture(scope="module")
def manifest(tmp_path_factory, patient):
    folder = tmp_path_factory.mktemp("paper_manifest")
    rows = []
    for seed, subtype in ((0, "solid"), (1, "ground-glass")):
        ct, mask = _crop_case(patient, seed)
        write_volume(ct, folder / f"ct{seed}.nii.gz")
        write_volume(mask, folder / f"mask{seed}.nii.gz")
        rows.append({"image": f"ct{seed}.nii.gz", "mask": f"mask{seed}.nii.gz", "subtype": subtype})
    with open(folder / "train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "subtype"])
        writer.writeheader()
        writer.writerows(rows)
    return folder / "train.csv"


def _train_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_hrldm.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_train_paper_mode_and_refusals(manifest, tmp_path):
    out = tmp_path / "paper"
    common = ["--manifest", str(manifest), "--random-autoencoder", "--device", "cpu"]
    assert train_hrldm.run(_train_args(*common, "--mode", "paper", "--config", "hrldm_paper_tiny", "--steps", "1",
                                       "--out", str(out), "--poly-power", "0.5")) == 0
    _, config, _, checkpoint = load_hrldm_checkpoint(out / "hrldm.pt", mode="paper")
    log = list(csv.DictReader(open(out / "train_log.csv")))
    print("paper-mode training log:", log)
    assert checkpoint["mode"] == "paper" and checkpoint["step"] == 1 and config["training"]["poly_power"] == 0.5
    assert all(np.isfinite(float(r["loss"])) and float(r["hist"]) > 0 for r in log)
    with pytest.raises(InputError, match="batch size 1"):
        train_hrldm.run(_train_args(*common, "--mode", "paper", "--config", "hrldm_paper_tiny", "--batch-size", "2",
                                    "--out", str(tmp_path / "b2")))
    with pytest.raises(InputError, match="paper mode, not --mode roi"):
        train_hrldm.run(_train_args(*common, "--config", "hrldm_paper_tiny", "--out", str(tmp_path / "mix")))
    with pytest.raises(WeightsError, match="paper-mode .* cannot run in roi mode"):
        train_hrldm.run(_train_args(*common, "--resume", str(out / "hrldm.pt"), "--steps", "3", "--out", str(out)))
    assert not (tmp_path / "b2").exists() and not (tmp_path / "mix").exists()


def test_inpaint_cli_paper_mode_and_mode_mismatch(manifest, tmp_path, capsys):
    from nodsynth.cli.main import main
    from tiny_weights import hrldm_tiny_weights

    paper = hrldm_tiny_weights(tmp_path / "paper", "hrldm_paper_tiny")
    roi = hrldm_tiny_weights(tmp_path / "roi")
    ct, mask = manifest.parent / "ct0.nii.gz", manifest.parent / "mask0.nii.gz"
    base = ["inpaint", "--engine", "hrldm", "--ct", str(ct), "--mask", str(mask), "--sampler", "ddim", "--steps", "3",
            "--histogram", "preset", "--device", "cpu"]
    assert main(base + ["--mode", "paper", "--weights", str(paper), "--out", str(tmp_path / "out.nii.gz"),
                        "--json", str(tmp_path / "out.json")]) == 0
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["mode"] == "paper" and summary["latent_size"] == [CROP // 4] * 3
    result, before = read_volume(tmp_path / "out.nii.gz"), read_volume(ct)
    assert result.shape_kji == before.shape_kji and not np.array_equal(result.array, before.array)
    for weights, wanted, found in ((roi, "paper", "roi"), (paper, "roi", "paper")):
        assert main(base + ["--mode", wanted, "--weights", str(weights), "--out", str(tmp_path / f"{wanted}.nii.gz")]) == 2
        assert f"{found}-mode HR-LDM checkpoint and cannot run in {wanted} mode" in capsys.readouterr().err
        assert not (tmp_path / f"{wanted}.nii.gz").exists()
    # a checkpoint written before modes existed has no "mode": it is roi
    old = torch.load(roi / "hrldm.pt", weights_only=True)
    del old["mode"]
    del old["config"]["mode"]
    torch.save(old, roi / "hrldm.pt")
    engine = HRLDMEngine(weights_dir=str(roi), device="cpu", mode="paper")
    with pytest.raises(WeightsError, match="roi-mode HR-LDM checkpoint and cannot run in paper mode"):
        engine.inpaint(InpaintRequest(read_volume(ct), read_volume(mask), "solid", steps=2, sampler="ddim"))
    assert load_hrldm_checkpoint(roi / "hrldm.pt", mode="roi")[3].get("mode") is None


def test_a_config_of_one_mode_is_refused_by_the_other(paper_tiny, tmp_path):
    network, _, config = paper_tiny
    save_hrldm_checkpoint(tmp_path / "hrldm.pt", network, config, 1.0)
    with pytest.raises(WeightsError, match="paper-mode HR-LDM checkpoint and cannot run in roi mode"):
        load_hrldm_checkpoint(tmp_path / "hrldm.pt", mode="roi")
    with pytest.raises(InputError, match="mask_channels must be 3 in paper mode"):
        load_hrldm_config({**config, "mask_channels": 2})


def test_paper_training_reads_nodsynth_encode_embeddings(manifest, tmp_path):
    from nodsynth.engines.maisi import save_autoencoder
    from nodsynth.train.encode import encode_cts
    from nodsynth.weights import sha256_of

    config = load_hrldm_config("hrldm_paper_tiny")
    torch.manual_seed(3)
    autoencoder = build_autoencoder(config["autoencoder_config"], "cpu").eval()
    vae = save_autoencoder(autoencoder, tmp_path / "autoencoder.pt")
    entries = train_hrldm.read_manifest(manifest)
    encoded = encode_cts([e["image"] for e in entries], tmp_path / "emb", vae, config="maisi_tiny", device="cpu")
    with_files = [{**e, "embedding": path} for e, (path, _) in zip(entries, encoded)]
    direct = train_hrldm.load_samples(entries, autoencoder, config)
    read = train_hrldm.load_samples(with_files, None, config, vae_sha256=sha256_of(vae))
    assert all(torch.equal(a.latent, b.latent) and torch.equal(a.mask_latent, b.mask_latent) for a, b in zip(direct, read))
    with pytest.raises(InputError, match="encoded with autoencoder SHA-256"):
        train_hrldm.load_samples(with_files, None, config, vae_sha256="0" * 64)
    with pytest.raises(InputError, match="--mode paper only"):
        train_hrldm.load_samples(with_files, None, load_hrldm_config("hrldm_tiny"), vae_sha256=sha256_of(vae))
    with pytest.raises(InputError, match="not --random-autoencoder"):
        train_hrldm.load_samples(with_files, None, config)
    table = tmp_path / "with_embeddings.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "subtype", "embedding"])
        writer.writeheader()
        writer.writerows({"image": e["image"], "mask": e["mask"], "subtype": e["subtype"], "embedding": e["embedding"]}
                         for e in with_files)
    out = tmp_path / "run"
    assert train_hrldm.run(_train_args("--manifest", str(table), "--autoencoder", str(vae), "--mode", "paper",
                                       "--config", "hrldm_paper_tiny", "--steps", "1", "--device", "cpu",
                                       "--out", str(out))) == 0
    assert load_hrldm_checkpoint(out / "hrldm.pt", mode="paper")[3]["step"] == 1


def test_the_slicer_panels_mode_reaches_the_engine(manifest, tmp_path):
    import sys
    from pathlib import Path

    from nodsynth.engines import get_engine
    from tiny_weights import hrldm_tiny_weights

    folder = str(Path(__file__).resolve().parent.parent / "HRLDMInpaint")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from HRLDMInpaintLib.compute import inpaint as panel_inpaint

    weights = hrldm_tiny_weights(tmp_path / "paper", "hrldm_paper_tiny")
    ct, mask = read_volume(manifest.parent / "ct0.nii.gz"), read_volume(manifest.parent / "mask0.nii.gz")
    histogram = preset_histogram("solid")
    engine = get_engine("hrldm", weights_dir=str(weights), device="cpu")  # roi, the default
    with pytest.raises(WeightsError, match="paper-mode HR-LDM checkpoint and cannot run in roi mode"):
        panel_inpaint(engine, ct, mask, "solid", histogram, steps=2, sampler="ddim", mode="roi")
    from_panel = panel_inpaint(engine, ct, mask, "solid", histogram, steps=2, sampler="ddim", mode="paper")
    direct = HRLDMEngine(weights_dir=str(weights), device="cpu", mode="paper").inpaint(
        InpaintRequest(ct, mask, "solid", histogram, steps=2, sampler="ddim")).ct
    assert np.array_equal(from_panel.array, direct.array) and not np.array_equal(from_panel.array, ct.array)
    remote = get_engine("remote", server_url="http://127.0.0.1:9", engine="hrldm")
    with pytest.raises(InputError, match="paper mode is chosen here for local runs only"):
        panel_inpaint(remote, ct, mask, "solid", histogram, steps=2, sampler="ddim", mode="paper")
