"""nodsynth.segment on constructed CTs whose answer is known: the nodule under the click, without
the wall and vessel it touches, ground glass, VOI growth, options, progress/cancel and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nodsynth.errors import Cancelled, GeometryError, InputError
from nodsynth.progress import CancelToken
from nodsynth.segment import METHODS, segment_nodule
from nodsynth.volume import Volume

SPACING = (0.7, 0.7, 1.5)  # mm along i, j, k: anisotropic like a clinical CT
ORIGIN = (-20.0, 30.0, -100.0)
LUNG_HU, WALL_HU = -850.0, 40.0


def dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def world_grid(shape_kji=(30, 80, 80), spacing=SPACING, origin=ORIGIN):
    """x, y, z (LPS mm) of every voxel centre (identity direction), each of shape ``shape_kji``."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape_kji], indexing="ij")
    return origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2]


def make_chest(nodule_hu=30.0, radius_mm=5.0, wall_gap_mm=-1.0, vessel=True, shape_kji=(30, 80, 80), seed=0):
    """A lung patch with a chest wall (x < wall_x), a spherical nodule ``wall_gap_mm`` from the wall
    (negative: it sinks into the wall) and a vessel of radius 1.2 mm touching it.

    Returns ``(ct, truth, centre_lps)``; the image is blurred by a 0.6 mm Gaussian (partial volume)
    and carries 15 HU noise.
    """
    x, y, z = world_grid(shape_kji)
    wall_x = ORIGIN[0] + 12.0
    centre = np.array([wall_x + radius_mm + wall_gap_mm, ORIGIN[1] + 28.0, ORIGIN[2] + 22.0])
    truth = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius_mm ** 2
    image = np.full(shape_kji, LUNG_HU)
    image[x < wall_x] = WALL_HU
    if vessel:  # along z, touching the nodule's far side
        tube = (x - (centre[0] + radius_mm + 0.8)) ** 2 + (y - centre[1]) ** 2 <= 1.2 ** 2
        image[tube] = 40.0
    image[truth] = nodule_hu
    image = ndimage.gaussian_filter(image, sigma=0.6 / np.array(SPACING[::-1]))
    image += np.random.default_rng(seed).normal(0, 15, image.shape)
    ct = Volume(np.rint(image).astype(np.int16), SPACING, ORIGIN)
    return ct, truth & (x >= wall_x), centre


def test_default_returns_the_juxtapleural_nodule_without_wall_and_vessel():
    ct, truth, centre = make_chest()
    result = segment_nodule(ct, centre)
    assert result.mask.array.dtype == np.uint8 and result.mask.shape_kji == ct.shape_kji
    assert set(np.unique(result.mask.array)) <= {0, 1}
    assert np.allclose(result.mask.origin, ct.origin) and np.allclose(result.mask.spacing, ct.spacing)
    assert result.method == "kmeans" and result.seconds > 0
    assert dice(result.mask.array, truth) > 0.78
    # nothing of the wall or the vessel far from the nodule
    x, y, z = world_grid(ct.shape_kji)
    far = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) > 5.0 + 3.0
    assert not (result.mask.array.astype(bool) & far).any()


def test_click_off_centre_still_finds_the_nodule():
    ct, truth, centre = make_chest(vessel=False)
    result = segment_nodule(ct, centre + np.array([2.5, -2.0, 1.5]))
    assert dice(result.mask.array, truth) > 0.8


def test_ground_glass_nodule_touching_the_wall():
    ct, truth, centre = make_chest(nodule_hu=-550.0, radius_mm=6.0)
    result = segment_nodule(ct, centre)
    assert dice(result.mask.array, truth) > 0.8
    assert result.threshold_hu is not None and -800 < result.threshold_hu < -550


def test_small_nodule_4mm():
    # without the vessel: a 2.4 mm vessel touching a 4 mm nodule is not cut (see the issue note)
    ct, truth, centre = make_chest(radius_mm=2.0, wall_gap_mm=4.0, vessel=False)
    assert dice(segment_nodule(ct, centre).mask.array, truth) > 0.7


@pytest.mark.parametrize("method", [m for m in METHODS if m != "pins"])
def test_every_clustering_method_segments_an_isolated_nodule(method):
    ct, truth, centre = make_chest(vessel=False, wall_gap_mm=5.0)
    result = segment_nodule(ct, centre, method=method)
    assert result.method == method
    assert dice(result.mask.array, truth) > 0.85


def test_voi_grows_for_a_large_nodule_and_reports_the_cap():
    ct, truth, centre = make_chest(radius_mm=17.0, wall_gap_mm=3.0, vessel=False, shape_kji=(40, 90, 110))
    result = segment_nodule(ct, centre)  # first VOI is 30 mm: smaller than the 34 mm nodule
    assert not result.voi_capped
    assert np.all(np.asarray(result.voi.shape_kji) * ct.spacing[::-1] > 30.0)
    assert dice(result.mask.array, truth) > 0.9
    capped = segment_nodule(ct, centre, max_voi_mm=20.0)
    assert capped.voi_capped
    assert np.all(np.asarray(capped.voi.shape_kji) * ct.spacing[::-1] <= 20.0 + 3 * ct.spacing[::-1])


def test_box_sizes_the_first_voi():
    ct, truth, centre = make_chest(vessel=False)
    result = segment_nodule(ct, centre, box_size_mm=(12, 12, 12))
    extent = np.asarray(result.voi.shape_kji) * ct.spacing[::-1]
    assert np.all(extent < 30.0)  # 12 mm box + 5 voxels each side, not the 30 mm default
    assert dice(result.mask.array, truth) > 0.8


def test_expand_mm_uses_physical_distance():
    ct, truth, centre = make_chest(vessel=False, wall_gap_mm=6.0)
    plain = segment_nodule(ct, centre).mask.array.astype(bool)
    grown = segment_nodule(ct, centre, expand_mm=2.0).mask.array.astype(bool)
    assert (grown >= plain).all()
    # independent check: every added voxel lies within 2 mm (physical) of the plain mask
    dist = ndimage.distance_transform_edt(~plain, sampling=ct.spacing[::-1])
    assert dist[grown].max() <= 2.0 + 1e-6
    assert np.array_equal(grown, dist <= 2.0)


def test_lung_mask_restricts_the_nodule():
    ct, truth, centre = make_chest(vessel=False)
    x, _, _ = world_grid(ct.shape_kji)
    lung = (x >= centre[0]).astype(np.uint8)  # half of the nodule lies outside this "lung"
    result = segment_nodule(ct, centre, lung_mask=ct.with_array(lung))
    assert result.voxel_count > 0
    assert not (result.mask.array.astype(bool) & (lung == 0)).any()
    with pytest.raises(GeometryError):
        segment_nodule(ct, centre, lung_mask=Volume(lung, (1, 1, 1), ORIGIN))


def test_fill_holes():
    ct, truth, centre = make_chest(vessel=False, wall_gap_mm=5.0)
    x, y, z = world_grid(ct.shape_kji)
    distance = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    array = ct.array.copy()
    array[distance <= 2.5] = -950
    cavity = distance <= 1.5  # the cavity's centre, clear of the blurred rim
    holed = ct.with_array(array)
    click = centre + np.array([3.8, 0, 0])  # in the nodule's solid shell
    filled = segment_nodule(holed, click).mask.array.astype(bool)
    kept = segment_nodule(holed, click, fill_holes=False).mask.array.astype(bool)
    assert filled[cavity].all() and not kept[cavity].any()


def test_progress_and_cancel():
    ct, _, centre = make_chest()
    reports = []
    segment_nodule(ct, centre, progress=lambda f, m: reports.append(f))
    assert reports[-1] == 1.0 and reports == sorted(reports)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        segment_nodule(ct, centre, cancel=token)


# ----------------------------------------------------------------------------- bad input
def test_click_outside_the_volume():
    ct, _, _ = make_chest()
    with pytest.raises(GeometryError, match="outside the volume"):
        segment_nodule(ct, (500.0, 0.0, 0.0))


def test_click_in_air():
    ct, _, centre = make_chest()
    array = ct.array.copy()
    array[:] = np.minimum(array, -1000)
    array[:, :, :10] = 40  # keep a wall so the image is still a CT
    with pytest.raises(InputError, match="in air"):
        segment_nodule(ct.with_array(array), centre)


def test_image_not_in_hounsfield_units():
    ct, _, centre = make_chest()
    as_8bit = ((ct.array.astype(float) + 1024) / 2000 * 255).clip(0, 255).astype(np.uint8)
    with pytest.raises(InputError, match="not a CT in Hounsfield"):
        segment_nodule(ct.with_array(as_8bit), centre)
    raw = (ct.array.astype(np.int32) + 1024).astype(np.uint16)  # stored values without the rescale
    with pytest.raises(InputError, match="Hounsfield"):
        segment_nodule(ct.with_array(raw), centre)


def test_box_larger_than_the_volume():
    ct, _, centre = make_chest()
    with pytest.raises(GeometryError, match="larger than the volume"):
        segment_nodule(ct, centre, box_size_mm=(20, 20, 200))
    with pytest.raises(InputError):
        segment_nodule(ct, centre, box_size_mm=(20, -1, 20))


def test_unknown_method():
    ct, _, centre = make_chest()
    with pytest.raises(InputError, match="unknown segmentation method"):
        segment_nodule(ct, centre, method="magic")


def test_negative_expansion_is_refused():
    ct, _, centre = make_chest()
    with pytest.raises(InputError, match="expand_mm"):
        segment_nodule(ct, centre, expand_mm=-1.0)


def test_missing_file_is_a_clear_error(tmp_path):
    from nodsynth.io.volume_files import read_volume

    with pytest.raises(InputError, match="not found"):
        read_volume(tmp_path / "missing.nii.gz")


def test_maisi_label_map_restricts_like_a_lung_mask():
    ct, _, centre = make_chest(vessel=False)
    x, _, _ = world_grid(ct.shape_kji)
    lung = x >= centre[0]
    labels = np.where(lung, 30, 200).astype(np.int16)  # right upper lobe inside, body outside
    by_labels = segment_nodule(ct, centre, lung_mask=ct.with_array(labels)).mask.array
    by_mask = segment_nodule(ct, centre, lung_mask=ct.with_array(lung.astype(np.uint8))).mask.array
    assert np.array_equal(by_labels, by_mask) and by_labels.any()
