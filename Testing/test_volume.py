"""Volume geometry against SimpleITK's own physical-point maths, and the Slicer RAS bridge."""
import numpy as np
import pytest
import SimpleITK as sitk

from nodsynth import GeometryError, InputError, Volume, read_volume, require_same_grid, same_grid, write_volume
from nodsynth.volume import lps_to_ras


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@pytest.fixture
def oblique_image():
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.integers(-1000, 400, size=(7, 9, 11)).astype(np.int16))
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-120.5, 33.25, -310.0))
    image.SetDirection(tuple(_rotation([1, 2, 0.5], 23).reshape(-1)))
    return image


def test_index_to_world_matches_sitk_on_oblique_anisotropic_grid(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    for ijk in [(0, 0, 0), (10, 8, 6), (3.25, 1.5, 4.75)]:
        expected = oblique_image.TransformContinuousIndexToPhysicalPoint(ijk)
        np.testing.assert_allclose(vol.index_to_world(ijk), expected, atol=1e-9)
        np.testing.assert_allclose(vol.world_to_index(expected), ijk, atol=1e-9)


def test_array_is_kji_like_sitk(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    assert vol.size_ijk == oblique_image.GetSize()
    assert vol.array[6, 8, 10] == oblique_image.GetPixel(10, 8, 6)


def test_slicer_bridge_round_trip_and_ras_flip(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    array, ijk_to_ras = vol.to_slicer()
    for ijk in [(0, 0, 0), (10, 8, 6), (2.5, 7.0, 1.25)]:
        lps = np.asarray(oblique_image.TransformContinuousIndexToPhysicalPoint(ijk))
        ras = ijk_to_ras @ np.r_[ijk, 1.0]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-9)
    back = Volume.from_slicer(array, ijk_to_ras)
    assert same_grid(vol, back)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-12)


def test_from_slicer_with_typical_slicer_matrix():
    # Slicer's default for a DICOM axial series: i -> -R (L), j -> -A (P)
    ijk_to_ras = np.array([[-0.7, 0, 0, 150.0], [0, -0.7, 0, 170.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])
    vol = Volume.from_slicer(np.zeros((4, 5, 6)), ijk_to_ras)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(vol.spacing, [0.7, 0.7, 2.5])
    np.testing.assert_allclose(vol.origin, [-150.0, -170.0, -300.0])
    np.testing.assert_allclose(lps_to_ras(vol.index_to_world([1, 0, 0])), [149.3, 170.0, -300.0])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_write_read_round_trip(tmp_path, oblique_image, suffix):
    vol = Volume.from_sitk(oblique_image)
    path = write_volume(vol, tmp_path / f"v{suffix}")
    back = read_volume(path)
    assert same_grid(vol, back, tolerance_mm=1e-4)
    np.testing.assert_array_equal(back.array, vol.array)
    assert [p.name for p in tmp_path.iterdir()] == [f"v{suffix}"]  # no temporary left behind


def test_crop_moves_origin(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    sub = vol.crop((1, 2, 3), (5, 7, 9))
    assert sub.shape_kji == (4, 5, 6)
    np.testing.assert_allclose(sub.index_to_world([0, 0, 0]), vol.index_to_world([3, 2, 1]))
    assert sub.array[0, 0, 0] == vol.array[1, 2, 3]


def test_grid_mismatch_is_named(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    other = Volume(vol.array, vol.spacing * [1, 1, 2], vol.origin, vol.direction)
    with pytest.raises(GeometryError, match="spacing"):
        require_same_grid(vol, other, "CT", "label map")


def test_point_outside_volume_raises(oblique_image):
    vol = Volume.from_sitk(oblique_image)
    with pytest.raises(GeometryError, match="outside the volume"):
        vol.world_to_kji(vol.index_to_world([50, 0, 0]))


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="unsupported volume format"):
        read_volume(tmp_path / "x.txt")
    with pytest.raises(InputError, match="3-D"):
        Volume(np.zeros((3, 3)))
    with pytest.raises(InputError, match="positive"):
        Volume(np.zeros((2, 2, 2)), spacing=(1, 0, 1))


def test_reads_real_lidc_voi_geometry():
    from conftest import shared_path

    path = shared_path("lidc_vois", "image", "LIDC-IDRI-0001_R_1.nii.gz")
    vol = read_volume(path)
    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(vol.index_to_world([5, 6, 7]), image.TransformIndexToPhysicalPoint((5, 6, 7)))


def test_a_dicom_series_chosen_by_uid_is_named_after_its_folder_and_uid():
    """Issue 26: ``FOLDER::UID`` named outputs ``FOLDER::1.2`` (cut at the UID's last dot)."""
    from nodsynth.io.volume_files import volume_stem

    assert volume_stem("cts/case_01::1.2.840.99") == "case_01_1.2.840.99"
    assert volume_stem("cts/case_01") == "case_01" and volume_stem("cts/case_01.nii.gz") == "case_01"
