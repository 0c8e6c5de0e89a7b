"""The ``pins`` method reproduces the PiNS seed protocol; checked on a case predicted by hand."""
from __future__ import annotations

import numpy as np

from nodsynth.segment import segment_nodule
from nodsynth.segment.pins import pins_box_voxels_kji, pins_voi_slices
from nodsynth.volume import Volume

SPACING = (0.8, 0.8, 2.0)  # i, j, k


def build_case():
    """Lung at -850 HU with, around the box centre (k, j, i) = (10, 40, 40):

    * cube A (6^3 voxels) and cube B (4^3) inside the VOI -> both kept (PiNS keeps every bright blob);
    * a lone bright voxel inside the VOI -> removed by the 2x2x2 opening;
    * cube C (6^3) outside the VOI -> never looked at.
    """
    array = np.full((20, 80, 80), -850, dtype=np.int16)
    expected = np.zeros(array.shape, dtype=bool)
    a = (slice(8, 14), slice(37, 43), slice(37, 43))
    b = (slice(7, 11), slice(45, 49), slice(30, 34))
    c = (slice(8, 14), slice(5, 11), slice(5, 11))
    for sl, kept in ((a, True), (b, True), (c, False)):
        array[sl] = 40
        expected[sl] = kept
    array[12, 32, 47] = 60  # lone voxel
    return Volume(array, SPACING, (0, 0, 0)), expected


def test_box_conversion_truncates_like_pins():
    # w, h, d = 12.7, 10, 9.9 mm on 0.8, 0.8, 2.0 mm voxels -> int(15.9)=15, int(12.5)=12, int(4.95)=4
    assert pins_box_voxels_kji((12.7, 10.0, 9.9), SPACING) == (4, 12, 15)
    # VOI = centre -/+ (n // 2 + 5) voxels, clipped to the array
    assert pins_voi_slices((10, 40, 3), (4, 12, 15), (20, 80, 80)) == (slice(3, 17), slice(29, 51), slice(0, 15))


def test_pins_keeps_every_bright_blob_in_the_voi_and_nothing_outside():
    ct, expected = build_case()
    centre_lps = ct.index_to_world((40, 40, 10))
    box_mm = (20 * 0.8, 20 * 0.8, 2 * 2.0)  # 20 x 20 x 2 voxels -> VOI i,j 25..55, k 4..16
    result = segment_nodule(ct, centre_lps, box_size_mm=box_mm, method="pins")
    assert result.voi.start_kji == (4, 25, 25) and result.voi.stop_kji == (16, 55, 55)
    mask = result.mask.array.astype(bool)
    assert np.array_equal(mask, expected)


def test_pins_is_deterministic():
    ct, _ = build_case()
    centre_lps = ct.index_to_world((40, 40, 10))
    first = segment_nodule(ct, centre_lps, box_size_mm=(16, 16, 4), method="pins").mask.array
    second = segment_nodule(ct, centre_lps, box_size_mm=(16, 16, 4), method="pins").mask.array
    assert np.array_equal(first, second)
