"""HR-LDM: soft histogram and JSD, gradient path of the histogram loss, and inference (tiny
configuration, random weights) on a real LIDC slab: ROI locality, seeds, DDPM-1000, DDIM, cancel."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import shared_path  # noqa: E402
from nodsynth.engines import InpaintRequest, get_engine  # noqa: E402
from nodsynth.engines.hrldm import (HRLDMEngine, HRLDMNet, feature_histograms, js_divergence,  # noqa: E402
                                    load_hrldm_checkpoint, load_hrldm_config, save_hrldm_checkpoint,
                                    soft_histogram)
from nodsynth.engines.maisi import build_autoencoder  # noqa: E402
from nodsynth.errors import Cancelled, InputError, WeightsError  # noqa: E402
from nodsynth.histogram import jensen_shannon  # noqa: E402
from nodsynth.progress import CancelToken  # noqa: E402
from nodsynth.train.hrldm import HRLDMTrainer  # noqa: E402
from nodsynth.io.volume_files import read_volume


@pytest.fixture(autouse=True)
def one_thread():
    """The CI machine has 2 shared cores: tiny networks run fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- soft histogram and JSD
def _cdf_gap(values: np.ndarray, width: float) -> float:
    """sup |CDF_soft - CDF_hard| on bins of ``width`` over [-4, 4]."""
    bins = int(round(8.0 / width))
    centers = -4.0 + width * (np.arange(bins) + 0.5)
    soft = soft_histogram(torch.as_tensor(values)[None], float(centers[0]), width, bins)[0].numpy()
    hard, _ = np.histogram(values, bins=bins, range=(-4.0, 4.0))
    return float(np.abs(np.cumsum(soft) - np.cumsum(hard / hard.sum())).max())


def test_soft_histogram_approaches_hard_histogram():
    values = np.clip(np.random.default_rng(0).normal(size=20000), -3.9, 3.9)
    gaps = [_cdf_gap(values, w) for w in (0.8, 0.4, 0.1, 0.02)]
    print("sup |CDF soft - CDF hard| for bin widths 0.8, 0.4, 0.1, 0.02:", np.round(gaps, 4).tolist())
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 0.01
    # the triangular kernel keeps the mean exactly (values away from the ends)
    soft = soft_histogram(torch.as_tensor(values)[None], -3.95, 0.1, 80)[0].numpy()
    assert abs(np.dot(soft, -3.95 + 0.1 * np.arange(80)) - values.mean()) < 1e-6


def test_jsd_properties():
    rng = np.random.default_rng(1)
    p, q = rng.random((2, 64, 40))
    p, q = torch.as_tensor(p / p.sum(-1, keepdims=True)), torch.as_tensor(q / q.sum(-1, keepdims=True))
    assert torch.allclose(js_divergence(p, p), torch.zeros(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(js_divergence(p, q), js_divergence(q, p), atol=1e-12)
    disjoint_p, disjoint_q = torch.zeros(40, dtype=torch.float64), torch.zeros(40, dtype=torch.float64)
    disjoint_p[:10], disjoint_q[30:] = 0.1, 0.1
    top = float(js_divergence(disjoint_p, disjoint_q))
    print(f"JSD of disjoint histograms {top:.6f} vs ln 2 = {math.log(2):.6f}")
    assert top <= math.log(2) and abs(top - math.log(2)) < 1e-5
    assert float(js_divergence(p, q).max()) <= math.log(2)
    assert np.allclose(js_divergence(p[:3], q[:3]).numpy(), [jensen_shannon(a, b) for a, b in zip(p[:3], q[:3])], atol=1e-6)


# ---------------------------------------------------------------- networks
@pytest.fixture(scope="module")
def tiny():
    config = load_hrldm_config("hrldm_tiny")
    torch.manual_seed(0)
    network = HRLDMNet(config).eval()
    autoencoder = build_autoencoder(config["autoencoder_config"], "cpu")
    # MONAI zero-initialises the U-Net's output convolution and attention projections; give them
    # small weights, as after some training, so that every input (histogram context included) matters
    with torch.no_grad():
        for parameter in network.parameters():
            if parameter.ndim > 1 and not parameter.any():
                parameter.normal_(0.0, 0.05)
    return config, network, autoencoder


def test_config_validation():
    config = load_hrldm_config("hrldm")
    assert config["unet"]["in_channels"] == 4 + config["mask_channels"]
    assert config["unet"]["num_class_embeds"] == 3
    bad = dict(load_hrldm_config("hrldm_tiny"))
    bad["unet"] = {**bad["unet"], "in_channels": 5}
    with pytest.raises(InputError, match="in_channels must be 6"):
        load_hrldm_config(bad)
    with pytest.raises(InputError, match="unknown HR-LDM"):
        load_hrldm_config("nope")


def test_histogram_loss_gradients_reach_the_unet(tiny):
    config, network, autoencoder = tiny
    trainer = HRLDMTrainer(network, autoencoder, config, scale_factor=1.0, lambda_hist=1.0, learning_rate=1e-4,
                           total_steps=10, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    mask_image = torch.zeros(2, 1, 32, 32, 32)
    mask_image[:, :, 10:22, 10:22, 8:20] = 1.0
    mask_latent = torch.nn.functional.max_pool3d(mask_image, 4).repeat(1, 2, 1, 1, 1)
    batch = {"latent": torch.randn(2, 4, 8, 8, 8, generator=generator), "mask_latent": mask_latent,
             "region_latent": mask_latent[:, :1],
             "mask_image": mask_image, "subtype": torch.tensor([0, 2]), "histogram": torch.full((2, 40), 1 / 40)}
    parts = trainer.losses(batch, torch.tensor([100, 400]), torch.randn(2, 4, 8, 8, 8, generator=generator))
    network.zero_grad()
    parts["hist"].backward()
    grads = {name: p.grad for name, p in network.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    print(f"histogram loss {float(parts['hist'].detach()):.4f}; parameters with a gradient from it: {len(grads)}")
    assert float(parts["hist"].detach()) > 0
    assert any(name.startswith("unet.down_blocks") for name in grads)
    assert any(name.startswith("unet.out") for name in grads)
    assert any(name.startswith("histogram_mlp") for name in grads)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in trainer.decoder.parameters())
    network.zero_grad()
    network.eval()


def test_feature_histograms_equal_for_equal_features():
    features = torch.randn(1, 3, 8, 8, 8)
    mask = torch.ones(1, 1, 16, 16, 16)
    fake, real = feature_histograms(features, features, mask, 40, 8.0)
    assert fake.shape == (1, 3, 40) and torch.allclose(fake, real)
    assert float(js_divergence(fake, real).max()) == 0.0


# ---------------------------------------------------------------- inference
@pytest.fixture(scope="module")
def slab_case():
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    from nodsynth.place import lung_from_ct, placement_regions, sample_centroids
    from nodsynth.shapes import place_shape, procedural_shape

    existing = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    regions = placement_regions(lung_from_ct(ct), 8.0, nodules=existing, clearance_mm=5.0)
    centre = sample_centroids(regions, "inner", 1, seed=3)[0]
    return ct, place_shape(procedural_shape(1.2, 0.3, 0.0, seed=1), ct, centre, 8.0)


def _engine(tiny, margin_latent: int = 1) -> HRLDMEngine:
    config, network, autoencoder = tiny
    config = {**config, "roi": {"margin_latent": margin_latent}}
    return HRLDMEngine.from_networks(network, autoencoder, config, scale_factor=1.0)


def _changed_outside_roi(ct, out, info) -> int:
    from nodsynth.engines.maisi.orientation import NetworkAxes

    axes = NetworkAxes.of(ct)
    changed = axes.to_network(out.array != ct.array)
    start, size = np.array(info["roi_start_xyz"]), np.array(info["roi_size_xyz"])
    inside = np.zeros(changed.shape, bool)
    inside[tuple(slice(max(a, 0), a + n) for a, n in zip(start, size))] = True
    return int(changed[~inside].sum()), int(changed[inside].sum())


def test_ddim_inpaint_roi_and_seeds(tiny, slab_case):
    ct, mask = slab_case
    engine = _engine(tiny)
    request = InpaintRequest(ct, mask, "part-solid", steps=10, sampler="ddim", seed=5)
    fractions = []
    first = engine.inpaint(request, progress=lambda f, m: fractions.append(f))
    outside, inside = _changed_outside_roi(ct, first.ct, first.info)
    print(f"DDIM-10: latent ROI {first.info['latent_roi_size']}, {inside} voxels changed inside the ROI, "
          f"{outside} outside, {first.seconds:.2f} s")
    assert outside == 0 and inside > 0
    assert first.ct.array.dtype == ct.array.dtype
    assert np.array_equal(engine.inpaint(request).ct.array, first.ct.array)
    request.seed = 6
    assert not np.array_equal(engine.inpaint(request).ct.array, first.ct.array)
    assert fractions[-1] == pytest.approx(1.0) and all(a <= b + 1e-9 for a, b in zip(fractions, fractions[1:]))


def test_ddpm_1000_runs(tiny, slab_case):
    ct, mask = slab_case
    engine = _engine(tiny, margin_latent=0)
    result = engine.inpaint(InpaintRequest(ct, mask, "solid", steps=1000, sampler="ddpm", seed=0))
    outside, inside = _changed_outside_roi(ct, result.ct, result.info)
    print(f"DDPM-1000 on a {result.info['latent_roi_size']} latent ROI: {result.seconds:.1f} s")
    assert result.info["steps"] == 1000 and outside == 0 and inside > 0


def test_cancel_is_honoured(tiny, slab_case):
    ct, mask = slab_case
    engine = _engine(tiny)
    token = CancelToken()
    steps_seen = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("denoising"):
            steps_seen.append(message)
            if len(steps_seen) == 3:
                token.cancel()

    with pytest.raises(Cancelled):
        engine.inpaint(InpaintRequest(ct, mask, "solid", steps=50, sampler="ddim"), progress=progress, cancel=token)
    assert len(steps_seen) == 3


def test_checkpoint_round_trip_and_missing_weights(tiny, tmp_path, slab_case):
    config, network, autoencoder = tiny
    path = save_hrldm_checkpoint(tmp_path / "hrldm.pt", network, config, scale_factor=0.7, step=3)
    loaded, loaded_config, scale, raw = load_hrldm_checkpoint(path)
    assert scale == pytest.approx(0.7) and raw["step"] == 3 and loaded_config["name"] == "hrldm_tiny"
    for (name, a), (_, b) in zip(network.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not an HR-LDM checkpoint"):
        load_hrldm_checkpoint(tmp_path / "other.pt")
    ct, mask = slab_case
    with pytest.raises(WeightsError, match="missing weights"):
        get_engine("hrldm", weights_dir=str(tmp_path / "empty"), device="cpu").inpaint(InpaintRequest(ct, mask))


def test_bad_requests(tiny, slab_case):
    ct, mask = slab_case
    engine = _engine(tiny)
    with pytest.raises(InputError, match="empty"):
        engine.inpaint(InpaintRequest(ct, mask.with_array(np.zeros_like(mask.array)), steps=2, sampler="ddim"))
    with pytest.raises(InputError, match="sampler"):
        engine.inpaint(InpaintRequest(ct, mask, steps=2, sampler="euler"))
    with pytest.raises(InputError, match="steps"):
        engine.inpaint(InpaintRequest(ct, mask, steps=0, sampler="ddim"))


def test_changes_stay_at_the_nodule_on_a_flipped_grid(tiny, slab_case):
    """Axis order and flips between the [k, j, i] array and the network's RAS axes are undone exactly."""
    from scipy import ndimage

    from nodsynth.volume import Volume

    ct, mask = slab_case
    flip = np.diag([1.0, -1.0, 1.0])
    ct_flipped = Volume(ct.array, ct.spacing, ct.origin, flip)
    mask_flipped = Volume(mask.array, mask.spacing, mask.origin, flip)
    result = _engine(tiny).inpaint(InpaintRequest(ct_flipped, mask_flipped, "ground-glass", steps=5, sampler="ddim"))
    changed = result.ct.array != ct.array
    feather_mm = tiny[0]["blend"]["feather_mm"]
    distance_mm = ndimage.distance_transform_edt(mask.array == 0, sampling=ct.spacing[::-1])
    print(f"flipped grid: {int(changed.sum())} voxels changed, farthest {distance_mm[changed].max():.2f} mm from the nodule")
    assert changed.any() and distance_mm[changed].max() < feather_mm


def test_a_lung_mask_keeps_the_blend_out_of_everything_else(tiny, slab_case):
    """Outside the nodule only lung voxels may change (the chest wall by a juxta-pleural nodule stays as it was)."""
    from nodsynth.volume import Volume

    ct, mask = slab_case
    nodule = mask.array > 0
    half = np.zeros(nodule.shape, bool)  # a "lung" that ends at the nodule's centre plane along i
    centre_i = int(round(np.argwhere(nodule)[:, 2].mean()))
    half[:, :, :centre_i] = True
    lung = Volume(half.astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    engine = _engine(tiny)
    free = engine.inpaint(InpaintRequest(ct, mask, "solid", steps=3, sampler="ddim", seed=1))
    kept = engine.inpaint(InpaintRequest(ct, mask, "solid", steps=3, sampler="ddim", seed=1, lung_mask=lung))
    outside = ~half & ~nodule
    assert (free.ct.array != ct.array)[outside].any(), "without the mask the feather reaches past the plane"
    assert not (kept.ct.array != ct.array)[outside].any()
    assert np.array_equal(kept.ct.array[half | nodule], free.ct.array[half | nodule])
