"""The click segmenter's shortcuts (issue 16) give what the plain computations give: each is checked
against numpy's / scipy's own routine, or a plain loop, on random masks and values with
anisotropic voxels (thick slices included)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nodsynth.segment.clustering import boundary_level_hu, kmeans_threshold_hu, sorted_percentile
from nodsynth.segment.mm_morphology import (bounding_slices, face_dilation, largest_depth_bound_mm, opening_mm,
                                            reach_voxels)
from nodsynth.segment.postprocess import fill_holes

SPACINGS_KJI = ((2.5, 0.703125, 0.703125), (1.25, 0.68, 0.68), (1.8, 0.9765625, 0.9765625), (0.75, 0.75, 0.75))
RADII_MM = (1.5, 2.25, 3.4, 5.0)


def blobs(rng: np.random.Generator, shape, fraction: float, grow: int) -> np.ndarray:
    """Random seeds grown into blobs (face-connected growth)."""
    mask = rng.random(shape) < fraction
    return ndimage.binary_dilation(mask, iterations=grow) if grow else mask


def wall_and_blobs(rng: np.random.Generator) -> np.ndarray:
    """Blobs plus, at random, a slab filling one array face (a wall the crop cuts)."""
    shape = tuple(int(n) for n in rng.integers((3, 8, 8), (12, 30, 30)))
    mask = blobs(rng, shape, 0.02, int(rng.integers(1, 4)))
    axis, depth = int(rng.integers(0, 3)), int(rng.integers(1, 6))
    index = [slice(None)] * 3
    index[axis] = slice(0, depth) if rng.random() < 0.5 else slice(-depth, None)
    if rng.random() < 0.7:
        mask[tuple(index)] = True
    mask.flat[rng.integers(0, mask.size)] = False  # never all mask
    return mask


def reference_opening(mask, radius_mm, spacing_kji, continued_faces):
    """Opening of the mask extended by repeating every continued face (wider than any ball reaches),
    by scipy's distance transforms on the whole extension."""
    margin = np.ceil(radius_mm / np.asarray(spacing_kji)).astype(int) + 2
    widths = [(int(m) if before else 0, int(m) if after else 0) for m, (before, after) in zip(margin, continued_faces)]
    extended = np.pad(mask, widths, mode="edge")
    centres = ndimage.distance_transform_edt(extended, sampling=spacing_kji) > radius_mm
    if not centres.any():
        return np.zeros_like(mask)
    opened = (ndimage.distance_transform_edt(~centres, sampling=spacing_kji) <= radius_mm) & extended
    return opened[tuple(slice(w[0], w[0] + n) for w, n in zip(widths, mask.shape))]


def test_opening_with_continued_faces_matches_the_whole_extension():
    rng = np.random.default_rng(16)
    extended_somewhere = 0
    for case in range(150):
        mask = wall_and_blobs(rng)
        spacing = SPACINGS_KJI[case % len(SPACINGS_KJI)]
        radius = RADII_MM[(case // len(SPACINGS_KJI)) % len(RADII_MM)]
        faces = tuple((bool(rng.random() < 0.7), bool(rng.random() < 0.7)) for _ in range(3))
        expected = reference_opening(mask, radius, spacing, faces)
        assert np.array_equal(opening_mm(mask, radius, spacing, faces), expected), (case, spacing, radius, faces)
        unextended = reference_opening(mask, radius, spacing, ((False, False),) * 3)
        extended_somewhere += not np.array_equal(expected, unextended)
    assert extended_somewhere > 20, "the cases must exercise the face extension"


def test_reach_is_the_most_whole_steps_within_the_distance():
    assert reach_voxels(2.25, (2.5, 0.7, 0.75)).tolist() == [0, 3, 3]
    assert reach_voxels(5.0, (2.5, 1.25, 0.7)).tolist() == [2, 4, 7]


def test_fill_holes_matches_binary_fill_holes():
    rng = np.random.default_rng(3)
    for _ in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 14, 3))
        mask = blobs(rng, shape, float(rng.random()) * 0.4, int(rng.integers(0, 3)))
        assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_bounding_slices_match_the_voxel_extremes():
    rng = np.random.default_rng(4)
    for _ in range(300):
        ndim = int(rng.integers(1, 5))
        mask = rng.random(tuple(int(n) for n in rng.integers(1, 9, ndim))) < 0.1
        if not mask.any():
            continue
        margin = int(rng.integers(0, 3))
        where = np.argwhere(mask)
        expected = tuple(slice(max(int(lo) - margin, 0), min(int(hi) + margin + 1, n))
                         for lo, hi, n in zip(where.min(axis=0), where.max(axis=0), mask.shape))
        assert bounding_slices(mask, margin) == expected
    with pytest.raises(ValueError):
        bounding_slices(np.zeros((3, 3), dtype=bool))


def test_depth_bound_holds_and_is_reached_by_a_box():
    rng = np.random.default_rng(5)
    for case in range(200):
        spacing = SPACINGS_KJI[case % len(SPACINGS_KJI)]
        mask = wall_and_blobs(rng)
        deepest = float(ndimage.distance_transform_edt(mask, sampling=spacing).max())
        assert deepest <= largest_depth_bound_mm(mask, spacing)
    box = np.zeros((9, 30, 30), dtype=bool)
    box[2:7, 5:20, 8:27] = True  # 5 x 15 x 19 voxels, inside the array
    spacing = (2.5, 0.7, 0.7)
    assert largest_depth_bound_mm(box, spacing) == float(ndimage.distance_transform_edt(box, sampling=spacing).max())


def test_face_dilation_matches_the_cross_dilation():
    rng = np.random.default_rng(6)
    for _ in range(200):
        ndim = int(rng.integers(1, 4))
        mask = rng.random(tuple(int(n) for n in rng.integers(1, 8, ndim))) < 0.2
        cross = ndimage.generate_binary_structure(ndim, 1)
        assert np.array_equal(face_dilation(mask), ndimage.binary_dilation(mask, structure=cross))


def test_sorted_percentile_is_numpys():
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 10, 101, 4096):
        values = np.sort(rng.normal(-600.0, 250.0, size))
        for q in (0.0, 10.0, 33.3, 50.0, 75.0, 85.0, 90.0, 100.0):
            assert sorted_percentile(values, q) == float(np.percentile(values, q))


def plain_kmeans_threshold(values: np.ndarray) -> float:
    """Lloyd iterations over the unsorted values, two masked means a step."""
    threshold = float(np.mean(np.percentile(values, [10, 90])))
    for _ in range(100):
        above = values >= threshold
        if above.all() or not above.any():
            return threshold
        new = 0.5 * (values[~above].mean() + values[above].mean())
        if abs(new - threshold) < 0.05:
            return float(new)
        threshold = new
    return threshold


def test_kmeans_and_class_boundary_match_the_plain_computation():
    rng = np.random.default_rng(8)
    for _ in range(50):
        values = np.concatenate([rng.normal(-820.0, 60.0, int(rng.integers(500, 5000))),
                                 rng.normal(float(rng.uniform(-600, 40)), 80.0, int(rng.integers(30, 800)))])
        rng.shuffle(values)
        threshold = kmeans_threshold_hu(values)
        assert threshold == pytest.approx(plain_kmeans_threshold(values), abs=1e-9)
        above = values >= threshold
        low = values[~above].mean()
        for percentile, high in ((None, values[above].mean()), (85.0, np.percentile(values[above], 85.0))):
            level = boundary_level_hu(values, threshold, 0.3, percentile)
            assert level == pytest.approx(low + 0.3 * (high - low), abs=1e-9)
