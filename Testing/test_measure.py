"""nodsynth.measure against analytic shapes on anisotropic, oblique grids, and on one real nodule."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.errors import GeometryError, InputError
from nodsynth.histogram import hu_histogram
from nodsynth.measure import estimate_subtype, measure_nodule, solid_fraction, split_nodules
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

SPACING = np.array([0.7, 0.8, 2.5])  # i, j, k (mm)
ORIGIN = np.array([-30.0, 12.0, -150.0])
SHAPE_KJI = (24, 60, 70)


def grid(direction=np.eye(3)):
    """World LPS coordinates (x, y, z) of each voxel centre for the test grid."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in SHAPE_KJI], indexing="ij")
    ijk = np.stack([i, j, k], axis=-1) * SPACING
    world = ijk @ np.asarray(direction).T + ORIGIN
    return world[..., 0], world[..., 1], world[..., 2]


def ellipsoid_case(semi_axes=(8.0, 6.0, 10.0), direction=np.eye(3)):
    """Ellipsoid with semi-axes along the grid's i, j, k axes, centred in the volume."""
    volume = Volume(np.zeros(SHAPE_KJI, np.int16), SPACING, ORIGIN, direction)
    centre = volume.index_to_world((np.asarray(SHAPE_KJI[::-1]) - 1) / 2 + 0.3)
    k, j, i = np.meshgrid(*[np.arange(n) for n in SHAPE_KJI], indexing="ij")
    centre_ijk = volume.world_to_index(centre)
    rel = [(i - centre_ijk[0]) * SPACING[0], (j - centre_ijk[1]) * SPACING[1], (k - centre_ijk[2]) * SPACING[2]]
    inside = sum((r / a) ** 2 for r, a in zip(rel, semi_axes)) <= 1.0
    ct = volume.with_array(np.where(inside, 30, -850).astype(np.int16))
    return ct, ct.with_array(inside.astype(np.uint8)), centre


@pytest.mark.parametrize("oblique", [False, True])
def test_ellipsoid_size_diameters_and_centroid(oblique):
    c, s = np.cos(0.4), np.sin(0.4)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) if oblique else np.eye(3)
    a, b, z = 8.0, 6.0, 10.0
    ct, mask, centre = ellipsoid_case((a, b, z), direction)
    m = measure_nodule(ct, mask)
    true_volume = 4.0 / 3.0 * np.pi * a * b * z
    assert m.volume_mm3 == pytest.approx(true_volume, rel=0.04)
    assert m.equivalent_diameter_mm == pytest.approx(2 * (a * b * z) ** (1 / 3), rel=0.02)
    assert m.longest_diameter_mm == pytest.approx(2 * z, abs=SPACING[2])  # voxelisation: one slice
    assert m.axial_long_axis_mm == pytest.approx(2 * a, abs=2 * SPACING[0])
    assert m.axial_short_axis_mm == pytest.approx(2 * b, abs=2 * SPACING[1])
    assert np.allclose(m.centroid_lps_mm, centre, atol=0.15)
    assert np.allclose(m.centroid_ras_mm, centre * [-1, -1, 1], atol=0.15)
    assert m.voxel_count == int(mask.array.sum())
    assert m.lobe_id is None and m.pleural_distance_mm is None


def test_intensity_statistics_histogram_and_subtype():
    ct, mask, _ = ellipsoid_case()
    inside = mask.array > 0
    values = np.where(np.arange(inside.sum()) % 2 == 0, 0, -600)
    array = ct.array.copy()
    array[inside] = values
    m = measure_nodule(ct.with_array(array), mask)
    assert m.mean_hu == pytest.approx(values.mean(), abs=1e-6)
    assert m.std_hu == pytest.approx(values.std(), abs=1e-6)
    assert np.allclose(m.histogram, hu_histogram(values)) and sum(m.histogram) == pytest.approx(1.0)
    assert m.solid_fraction == pytest.approx(0.5, abs=0.01) and m.subtype == "solid"
    json_ready = m.to_dict()
    assert json_ready["volume_mm3"] == m.volume_mm3 and len(json_ready["histogram"]) == 40


@pytest.mark.parametrize("solid_share, expected", [(0.0, "ground-glass"), (0.05, "ground-glass"),
                                                    (0.2, "part-solid"), (0.6, "solid"), (1.0, "solid")])
def test_estimate_subtype_from_values_and_from_a_40_bin_histogram(solid_share, expected):
    rng = np.random.default_rng(1)
    n = 2000
    solid = rng.normal(20, 40, int(n * solid_share))
    glass = rng.normal(-620, 60, n - solid.size)
    values = np.concatenate([solid, glass])
    assert estimate_subtype(values) == expected
    assert estimate_subtype(hu_histogram(values)) == expected
    assert estimate_subtype(list(hu_histogram(values))) == expected
    assert solid_fraction(hu_histogram(values)) == pytest.approx(np.mean(values >= -300), abs=0.02)


def test_pleural_distance_to_a_known_plane_and_lobe():
    ct, mask, centre = ellipsoid_case((5.0, 5.0, 5.0))
    x, _, _ = grid()
    plane_x = centre[0] - 12.0  # sphere surface lies 12 - 5 = 7 mm from the plane
    lung = (x > plane_x).astype(np.uint8)
    by_mask = measure_nodule(ct, mask, lung_mask=ct.with_array(lung))
    assert by_mask.pleural_distance_mm == pytest.approx(7.0, abs=SPACING[0])
    labels = np.where(lung > 0, 30, 0).astype(np.int16)
    labels[mask.array > 0] = 23
    by_labels = measure_nodule(ct, mask, labelmap=ct.with_array(labels))
    assert by_labels.lobe_id == 30 and by_labels.lobe_name == "right lung upper lobe"
    assert by_labels.pleural_distance_mm == pytest.approx(by_mask.pleural_distance_mm)
    touching = (x > centre[0] - 5.0 - 0.5 * SPACING[0]).astype(np.uint8)
    assert measure_nodule(ct, mask, lung_mask=ct.with_array(touching)).pleural_distance_mm == pytest.approx(0.0, abs=0.8)


def test_bad_inputs():
    ct, mask, _ = ellipsoid_case()
    with pytest.raises(InputError, match="empty"):
        measure_nodule(ct, mask.with_array(np.zeros_like(mask.array)))
    with pytest.raises(GeometryError, match="same voxel grid"):
        measure_nodule(ct, Volume(mask.array, (1, 1, 1), ORIGIN))
    with pytest.raises(GeometryError):
        measure_nodule(ct, mask, lung_mask=Volume(mask.array[:-1], SPACING, ORIGIN))


def test_split_nodules_by_component_and_by_label():
    array = np.zeros((10, 20, 20), np.uint8)
    array[2:4, 2:5, 2:5] = 1
    array[6:8, 12:15, 12:15] = 1
    mask = Volume(array, SPACING, ORIGIN)
    assert [int(m.array.sum()) for m in split_nodules(mask)] == [18, 18]
    array2 = array.copy()
    array2[6:8, 12:15, 12:15] = 2
    array2[2:8, 8, 8] = 2  # label 2 is not connected but is one nodule
    parts = split_nodules(mask.with_array(array2))
    assert [int(m.array.sum()) for m in parts] == [18, 24]


def test_real_nodule_matches_the_reader_diameter():
    folder = shared_path("lidc_vois")
    with open(folder / "nodules.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["file"] == "LIDC-IDRI-0001_R_1.nii.gz")
    ct = read_volume(folder / "image" / row["file"])
    mask = read_volume(folder / "nodule_mask" / row["file"])
    m = measure_nodule(ct, mask)
    assert m.equivalent_diameter_mm == pytest.approx(float(row["diameter_mm"]), rel=0.25)
    assert m.longest_diameter_mm >= m.equivalent_diameter_mm
    centre = [float(row[f"coord{a}"]) for a in "XYZ"]
    assert np.linalg.norm(np.asarray(m.centroid_lps_mm) - centre) < 3.0
    assert m.subtype == "solid"  # the readers rated it Solid



def test_stored_histogram_with_rounding_error_is_still_read_as_a_histogram():
    rng = np.random.default_rng(3)
    stored = hu_histogram(rng.normal(-650, 60, 5000))
    stored[np.argmax(stored)] += 5e-5  # 40 bins rounded to 6 decimals drift by up to ~2e-5
    assert estimate_subtype(stored) == "ground-glass"
