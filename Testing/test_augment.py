"""nodsynth.augment: exact-volume nodule shrink/grow on the real DLCS label maps and on synthetic maps."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import shared_path
from nodsynth.augment import resize_nodule, resize_series
from nodsynth.errors import GeometryError, InputError
from nodsynth.labelmap import load_labelmap
from nodsynth.labels import BODY, LOBE_IDS, NODULE
from nodsynth.volume import Volume

SIX = ndi.generate_binary_structure(3, 1)
DLCS = ("DLCS_0001", "DLCS_0002")


@lru_cache(maxsize=None)
def dlcs_map(name: str) -> Volume:
    """A real DLCS label map, read once per test session (reading takes seconds)."""
    return load_labelmap(shared_path("dlcs_labelmaps", f"{name}_seg_sh.nii.gz"))


@pytest.fixture(params=DLCS)
def dlcs(request) -> Volume:
    return dlcs_map(request.param)


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    return ndi.label(mask, structure=SIX)


def expected_count(voxels: int, percent: float) -> int:
    return max(1, math.floor(voxels * percent / 100 + 0.5))


def synthetic_map(spacing=(0.7, 0.7, 1.25), radius_mm=6.0, shape=(40, 64, 64)) -> Volume:
    """A right-lung lobe block inside a body, with a physical-sphere nodule in its middle."""
    labels = np.full(shape, BODY, dtype=np.uint8)
    labels[4:-4, 6:-6, 6:32] = 30
    labels[4:-4, 6:-6, 32:-6] = 32
    k, j, i = np.indices(shape)
    centre = np.array(shape) / 2
    sp = np.asarray(spacing)[::-1]
    r2 = ((k - centre[0]) * sp[0]) ** 2 + ((j - centre[1]) * sp[1]) ** 2 + ((i - centre[2]) * sp[2]) ** 2
    labels[r2 <= radius_mm ** 2] = NODULE
    return Volume(labels, spacing=spacing, origin=(-20.0, 10.0, -100.0))


# --------------------------------------------------------------- shrink
@pytest.mark.parametrize("percent", [75, 50, 25])
def test_shrink_invariants_on_dlcs(dlcs, percent):
    before = dlcs.array
    result = resize_nodule(dlcs, "all", percent)
    after = result.labelmap.array
    changed = before != after
    assert np.all(before[changed] == NODULE), "only nodule voxels may change when shrinking"
    assert np.all(np.isin(after[changed], LOBE_IDS)), "removed voxels must be refilled with lobes"
    assert not np.any((after == NODULE) & (before != NODULE)), "a shrunk nodule lies inside the original"
    labelled, count = components(before == NODULE)
    assert len(result.nodules) == count
    for stats in result.nodules:
        original = labelled == stats.nodule_id
        kept = original & (after == NODULE)
        assert abs(int(kept.sum()) - expected_count(int(original.sum()), percent)) <= 1
        assert stats.voxels_after == int(kept.sum())
        assert abs(stats.achieved_percent - percent) <= 100.0 / original.sum() + 1e-9
        assert components(kept)[1] == 1, "the kept voxels form one connected component"
        assert stats.centroid_shift_mm < 1.0
        assert stats.longest_diameter_after_mm < stats.longest_diameter_before_mm
    assert not np.shares_memory(after, before)


def test_refill_uses_the_nearest_lobe(dlcs):
    before = dlcs.array
    after = resize_nodule(dlcs, "all", 25).labelmap.array
    first_nodule = components(before == NODULE)[0] == 1
    removed = np.argwhere(first_nodule & (after != NODULE))
    spacing_kji = dlcs.spacing[::-1]
    lo, hi = removed.min(axis=0) - 12, removed.max(axis=0) + 13
    box = tuple(slice(max(a, 0), b) for a, b in zip(lo, hi))
    lobes = np.argwhere(np.isin(before[box], LOBE_IDS)) + [s.start for s in box]
    lobe_ids = before[tuple(lobes.T)]
    for voxel in removed[:: max(1, len(removed) // 150)]:
        distance = np.linalg.norm((lobes - voxel) * spacing_kji, axis=1)
        nearest = distance.min()
        assigned = after[tuple(voxel)]
        assert nearest < 12 * spacing_kji.min()
        assert np.isclose(distance[lobe_ids == assigned].min(), nearest), "refill must take the nearest lobe id"


def test_series_is_nested_and_100_percent_is_identity(dlcs):
    percents = [100, 90, 80, 70, 60, 50]
    results = resize_series(dlcs, 1, percents)
    assert np.array_equal(results[0].labelmap.array, dlcs.array)
    masks = [r.labelmap.array == NODULE for r in results]
    for larger, smaller in zip(masks, masks[1:]):
        assert np.all(larger[smaller]), "each mask of a series lies inside the previous one"
        assert smaller.sum() < larger.sum()


def test_grow_only_into_lobes(dlcs):
    before = dlcs.array
    for percent in (150, 300):
        result = resize_nodule(dlcs, "all", percent)
        after = result.labelmap.array
        changed = before != after
        assert np.all(np.isin(before[changed], LOBE_IDS)), "grown voxels must have been lobe voxels"
        assert np.all(after[changed] == NODULE)
        labelled, count = components(after == NODULE)
        assert count == len(result.nodules), "grown nodules stay separate components"
        for stats in result.nodules:
            assert abs(stats.voxels_after - expected_count(stats.voxels_before, percent)) <= 1


def test_point_selects_one_nodule():
    labelmap = dlcs_map("DLCS_0001")
    labelled, count = components(labelmap.array == NODULE)
    assert count == 2
    centre_kji = np.argwhere(labelled == 2).mean(axis=0)
    point_lps = labelmap.index_to_world(centre_kji[::-1])
    result = resize_nodule(labelmap, point_lps, 50)
    after = result.labelmap.array
    assert [s.nodule_id for s in result.nodules] == [2]
    assert np.array_equal(after[labelled == 1], labelmap.array[labelled == 1])
    assert (after[labelled == 2] == NODULE).sum() == expected_count(int((labelled == 2).sum()), 50)


def test_reference_erosion_misses_targets_that_distance_meets():
    labelmap = dlcs_map("DLCS_0002")
    reference = resize_nodule(labelmap, "all", 75, method="erosion").nodules[0]
    exact = resize_nodule(labelmap, "all", 75).nodules[0]
    # one erosion of this nodule already removes more than a quarter, so the reference keeps it whole
    once = ndi.binary_erosion(labelmap.array == NODULE, structure=SIX).sum()
    assert once < 0.75 * exact.voxels_before
    assert reference.achieved_percent == 100.0
    assert abs(exact.achieved_percent - 75.0) <= 100.0 / exact.voxels_before


# --------------------------------------------------------------- synthetic geometry
def test_anisotropic_sphere_shrinks_to_a_sphere():
    labelmap = synthetic_map()
    result = resize_nodule(labelmap, 1, 40)
    stats = result.nodules[0]
    assert stats.voxels_after == expected_count(stats.voxels_before, 40)
    # a physical sphere stays round: the longest diameter stays close to the equivalent diameter
    assert stats.longest_diameter_after_mm < 1.3 * stats.equivalent_diameter_after_mm
    assert stats.equivalent_diameter_after_mm == pytest.approx(stats.equivalent_diameter_before_mm * 0.4 ** (1 / 3), rel=0.02)
    assert stats.centroid_shift_mm < 0.5


def test_dumbbell_keeps_one_component():
    labels = np.full((30, 40, 60), 30, dtype=np.uint8)
    k, j, i = np.indices(labels.shape)
    lobe_a = (k - 15) ** 2 + (j - 20) ** 2 + (i - 18) ** 2 <= 36
    lobe_b = (k - 15) ** 2 + (j - 20) ** 2 + (i - 42) ** 2 <= 36
    bar = (abs(k - 15) <= 1) & (abs(j - 20) <= 1) & (i >= 18) & (i <= 42)
    labels[lobe_a | lobe_b | bar] = NODULE
    result = resize_nodule(Volume(labels), 1, 30)
    kept = result.labelmap.array == NODULE
    assert components(kept)[1] == 1
    assert kept.sum() == expected_count(int((labels == NODULE).sum()), 30)


def test_grow_refuses_when_the_lung_cannot_host_it():
    labels = np.full((20, 20, 20), BODY, dtype=np.uint8)
    labels[9:11, 9:11, 8:12] = 31
    labels[9:11, 9:11, 9:11] = NODULE  # 8 voxels; the lobe holds 8 more
    with pytest.raises(InputError, match="cannot host"):
        resize_nodule(Volume(labels), 1, 300)
    grown = resize_nodule(Volume(labels), 1, 200).labelmap.array
    assert (grown == NODULE).sum() == 16
    assert np.array_equal(grown[labels == BODY], labels[labels == BODY])


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("percent", [0, -5, 300.5, float("nan"), "abc"])
def test_bad_percent(percent):
    with pytest.raises(InputError, match="percent"):
        resize_nodule(synthetic_map(), 1, percent)


def test_non_integer_labelmap():
    labelmap = synthetic_map()
    floats = labelmap.array.astype(np.float32)
    floats[0, 0, 0] = 0.5
    with pytest.raises(InputError, match="non-integer"):
        resize_nodule(labelmap.with_array(floats), 1, 50)


def test_integer_valued_float_map_is_accepted():
    labelmap = synthetic_map()
    as_float = resize_nodule(labelmap.with_array(labelmap.array.astype(np.float32)), 1, 50).labelmap.array
    assert np.array_equal(as_float, resize_nodule(labelmap, 1, 50).labelmap.array)


def test_no_nodule_unknown_id_and_far_point():
    labelmap = synthetic_map()
    with pytest.raises(InputError, match="no nodule"):
        resize_nodule(labelmap.with_array(np.where(labelmap.array == NODULE, 30, labelmap.array)), "all", 50)
    with pytest.raises(InputError, match="unknown nodule id 2"):
        resize_nodule(labelmap, 2, 50)
    with pytest.raises(InputError, match="no nodule at"):
        resize_nodule(labelmap, labelmap.index_to_world([8, 8, 8]), 50)
    with pytest.raises(GeometryError):
        resize_nodule(labelmap, (1e4, 0, 0), 50)
    with pytest.raises(InputError, match="method"):
        resize_nodule(labelmap, 1, 50, method="dilate")


# ---------------------------------------------------------------- issue 15: Algorithm 1's closest-mask rule
def _closest_iterate(labels: np.ndarray, percent: float) -> np.ndarray:
    """Written out: erode (shrink) or dilate into the lobes (grow) one 6-connected step at a time and keep
    the iterate whose voxel count is closest to the target (the first of equally close ones)."""
    from scipy import ndimage

    from nodsynth.labels import LOBE_IDS

    nodule = labels == NODULE
    target = int(np.floor(nodule.sum() * percent / 100.0 + 0.5))
    lung = np.isin(labels, LOBE_IDS) | nodule
    cross = ndimage.generate_binary_structure(3, 1)
    iterates, current = [nodule], nodule
    while True:
        step = ndimage.binary_erosion(current, cross) if percent < 100 else ndimage.binary_dilation(current, cross) & lung
        if not step.any() or np.array_equal(step, current):
            break
        iterates.append(step)
        current = step
        if (percent < 100 and step.sum() < target) or (percent > 100 and step.sum() > target):
            break
    return iterates[int(np.argmin([abs(int(m.sum()) - target) for m in iterates]))]


@pytest.mark.parametrize("percent", [50, 150])
def test_paper_method_keeps_the_closest_erosion_or_dilation(percent):
    from conftest import shared_path
    from nodsynth.labelmap import load_labelmap

    labelmap = load_labelmap(shared_path("dlcs_labelmaps", "DLCS_0002_seg_sh.nii.gz"))
    coords = np.argwhere(labelmap.array == NODULE)
    lo, hi = coords.min(axis=0) - 12, coords.max(axis=0) + 13
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    result = resize_nodule(labelmap, "all", percent, method="paper")
    expected = _closest_iterate(labelmap.array[box], percent)
    assert np.array_equal(result.labelmap.array[box] == NODULE, expected)
    assert np.count_nonzero(result.labelmap.array == NODULE) == int(expected.sum())
    stats = result.nodules[0]
    print(f"paper method {percent} %: {stats.voxels_before} -> {stats.voxels_after} voxels "
          f"({stats.achieved_percent:.1f} %)")
    removed = (labelmap.array == NODULE) & (result.labelmap.array != NODULE)
    assert np.all(np.isin(result.labelmap.array[removed], LOBE_IDS))
