"""2.5D FID against the published NodMAISI script (``../shared/anchors/NoMAISI/scripts/compute_fid_2-5d_ct.py``).

The script is executed as a module (:mod:`nomaisi_anchor`: its ``torch.hub.load`` sits in ``main``
and never runs; ``fire``, used only under ``__main__``, is stubbed when not installed). Its own ``get_features_2p5d``
(with its ``radimagenet_intensity_normalisation``, ``spatial_average`` and ``drop_empty_slice``)
runs on volumes loaded by the transform chain its ``main`` builds (MONAI ``LoadImaged``,
``EnsureChannelFirstd``, ``Orientationd("RAS")``, ``Spacingd``, ``SpatialPadd(-1000)``,
``CenterSpatialCropd``, ``ScaleIntensityRanged(-1000..1000, clip)``), then MONAI ``FIDMetric`` per
plane. The project's pipeline reads the same files with SimpleITK and must give the same FID.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from nomaisi_anchor import FID_SCRIPT, load_fid_script

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

TARGET_XYZ = (48, 40, 20)
RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def anchor():
    module = load_fid_script()
    if module is None:
        pytest.skip(f"published NodMAISI script not available: {FID_SCRIPT} is missing")
    return module


def tiny_network():
    """A small random 2-D CNN (12 features) standing in for the RadImageNet ResNet-50."""
    torch.manual_seed(1234)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 12, 5, stride=2), torch.nn.ReLU(),
                               torch.nn.Conv2d(12, 12, 3, stride=2), torch.nn.Tanh()).eval()


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory):
    """Six real LIDC crops (HU); two of them rewritten with permuted / flipped voxel axes (same anatomy)."""
    import SimpleITK as sitk

    images = sorted(shared_path("lidc_vois", "image").glob("*.nii.gz"))
    chosen = [images[i] for i in (0, 1, 3, 6, 8, 11)]
    folder = tmp_path_factory.mktemp("reoriented")
    moved = []
    for path, how in ((chosen[1], "permute"), (chosen[4], "flip")):
        image = sitk.ReadImage(str(path))
        image = sitk.PermuteAxes(image, [1, 0, 2]) if how == "permute" else sitk.Flip(image, [True, False, True])
        out = folder / f"{how}_{path.name}"
        sitk.WriteImage(image, str(out))
        moved.append(out)
    real = [chosen[0], moved[0], chosen[2]]
    synthetic = [chosen[3], moved[1], chosen[5]]
    return real, synthetic


def reference_fid(anchor, real, synthetic, network, ratio, spacing=None, drop_empty=False):
    """FID per plane by the published functions on the script's own MONAI loading chain."""
    pytest.importorskip("nibabel", reason="MONAI LoadImaged reads NIfTI with nibabel (test-only dependency)")
    import monai.transforms as mt
    from monai.metrics.fid import FIDMetric

    chain = [mt.LoadImaged(keys=["image"]), mt.EnsureChannelFirstd(keys=["image"]),
             mt.Orientationd(keys=["image"], axcodes="RAS")]
    if spacing is not None:
        chain.append(mt.Spacingd(keys=["image"], pixdim=spacing, mode=["bilinear"]))
    chain += [mt.SpatialPadd(keys=["image"], spatial_size=TARGET_XYZ, mode="constant", value=-1000),
              mt.CenterSpatialCropd(keys=["image"], roi_size=TARGET_XYZ),
              mt.ScaleIntensityRanged(keys=["image"], a_min=-1000, a_max=1000, b_min=-1000, b_max=1000, clip=True)]
    transforms = mt.Compose(chain)

    def side(paths):
        planes = ([], [], [])
        for path in paths:
            image = transforms({"image": str(path)})["image"].as_tensor()[None]
            feats = anchor.get_features_2p5d(image, network, center_slices=ratio is not None,
                                             center_slices_ratio=ratio if ratio is not None else 1.0,
                                             xy_only=False, drop_empty=drop_empty)
            for stack, f in zip(planes, feats):
                stack.append(f)
        return [torch.vstack(s) for s in planes]

    real_f, synth_f = side(real), side(synthetic)
    fid = FIDMetric()
    values = [float(fid(s, r)) for s, r in zip(synth_f, real_f)]
    return dict(zip(("fid_xy", "fid_yz", "fid_zx"), values)), [len(r) for r in real_f]


@pytest.mark.parametrize("ratio, spacing, drop_empty", [
    (None, None, False),
    (0.5, None, False),
    (0.7, (1.0, 1.0, 2.0), True),
], ids=["all-slices", "central-ratio-0.5", "ratio-resampled-drop-empty"])
def test_fid_matches_published_script(anchor, ct_files, ratio, spacing, drop_empty):
    from nodsynth.evaluate.ct_fid import FidSettings, ct_fid
    from nodsynth.evaluate.ct_prep import PrepSettings
    from nodsynth.evaluate.features_2p5d import FeatureOptions

    real, synthetic = ct_files
    network = tiny_network()
    expected, n_real_slices = reference_fid(anchor, real, synthetic, network, ratio, spacing, drop_empty)
    settings = FidSettings(PrepSettings(TARGET_XYZ, spacing), ratio, FeatureOptions(drop_empty, batch_size=7))
    got = ct_fid(real, synthetic, network, "cpu", settings)
    assert got["n_real"] == 3 and got["n_synthetic"] == 3
    assert [got["n_slices_real"][p] for p in ("xy", "yz", "zx")] == n_real_slices
    for key, value in expected.items():
        assert value > 1e-4, "a vanishing FID would not test anything"
        assert abs(got[key] - value) <= RELATIVE_TOLERANCE * abs(value), (key, got[key], value)
    assert got["fid_avg"] == pytest.approx(np.mean(list(expected.values())), rel=RELATIVE_TOLERANCE)


def test_normalisation_matches_published_function(anchor):
    """The project's per-stack normalisation equals ``radimagenet_intensity_normalisation`` on the
    script's 3-channel, BGR-reordered stack, bit for bit."""
    from nodsynth.evaluate.normalisation import normalise_slices, stack_range

    rng = np.random.default_rng(5)
    stack = torch.from_numpy(rng.uniform(-1000, 1000, size=(9, 17, 13)).astype(np.float32))
    published = anchor.radimagenet_intensity_normalisation(stack[:, None].repeat(1, 3, 1, 1)[:, [2, 1, 0]])
    ours = normalise_slices(stack, *stack_range(stack))
    assert torch.equal(ours, published)
