"""PNG overlays (nodsynth.overlay) on real CT: LIDC-IDRI slab with its 2-of-4 reader nodule mask."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from nodsynth.errors import GeometryError, InputError
from nodsynth.overlay import (DEFAULT_WINDOW_HU, axial_panel, axial_pixel_size_mm, contour, save_panels,
                              window_to_grey)
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume


@pytest.fixture(scope="module")
def slab():
    folder = shared_path("lidc_slabs")
    return (read_volume(folder / "LIDC-IDRI-0001_slab.nrrd"),
            read_volume(folder / "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))


def test_window_maps_the_lung_window_to_grey_levels():
    grey = window_to_grey(np.array([[-2000, -1350, -600, 150, 3000]]))
    assert grey.dtype == np.uint8
    assert grey.tolist() == [[0, 0, 128, 255, 255]]
    with pytest.raises(InputError, match="low < high"):
        window_to_grey(np.zeros((2, 2)), (100, -100))


def test_contour_is_the_inner_boundary():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    ring = contour(mask)
    assert ring.sum() == 16 and not ring[2:5, 2:5].any() and ring[1, 1]


def test_save_panels_draws_titled_panels_with_contours(tmp_path):
    slice_hu = np.full((40, 60), -850.0)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 20:35] = 1
    slice_hu[mask > 0] = 30.0
    path = save_panels(tmp_path / "two.png", [("before", slice_hu, [mask]), ("after", slice_hu, [(mask, (0, 0, 255))])],
                       scale=2)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[1] > 2 * 2 * 60 and image.shape[0] > 2 * 40
    rows, cols = 2 * 10, 2 * 15  # the 10 x 15 pixel mask enlarged twice
    assert np.all(image == (0, 0, 255), axis=2).sum() == 2 * (rows + cols) - 4, "a one-pixel contour"
    assert [p.name for p in tmp_path.iterdir()] == ["two.png"]


def test_bad_input_raises_and_writes_nothing(tmp_path):
    slice_hu = np.zeros((10, 10))
    with pytest.raises(InputError, match=".png"):
        save_panels(tmp_path / "x.jpg", [("t", slice_hu, [])])
    with pytest.raises(InputError, match="shape"):
        save_panels(tmp_path / "x.png", [("t", slice_hu, [np.zeros((5, 5))])])
    with pytest.raises(InputError, match="no panels"):
        save_panels(tmp_path / "x.png", [])
    with pytest.raises(InputError, match="2-D"):
        save_panels(tmp_path / "x.png", [("t", np.zeros(5), [])])
    assert list(tmp_path.iterdir()) == []


def test_axial_panel_on_real_ct_through_the_nodule(slab, tmp_path):
    ct, mask = slab
    kji = np.argwhere(mask.array > 0)
    centre_lps = ct.index_to_world(kji.mean(axis=0)[::-1])
    title, plane, masks = axial_panel("LIDC-IDRI-0001", ct, centre_lps, [mask], half_width_mm=25.0)
    k, j, i = ct.world_to_kji(centre_lps)
    half = int(np.ceil(25.0 / ct.spacing[0]))
    np.testing.assert_array_equal(plane, ct.array[k, j - half:j + half + 1, i - half:i + half + 1])
    np.testing.assert_array_equal(masks[0], mask.array[k, j - half:j + half + 1, i - half:i + half + 1])
    assert masks[0].sum() > 0, "the slice through the nodule centre holds nodule pixels"
    path = save_panels(tmp_path / "lidc.png", [(title, plane, masks)], pixel_size_mm=axial_pixel_size_mm(ct))
    assert Image.open(path).size[0] >= plane.shape[1] * 2
    nodule_hu = np.median(plane[masks[0] > 0])
    assert window_to_grey(np.array([nodule_hu]), DEFAULT_WINDOW_HU)[0] > 150, "nodule shows bright in the lung window"


def test_axial_panel_checks_grids_and_points(slab):
    ct, mask = slab
    shifted = Volume(mask.array, mask.spacing, mask.origin + 5.0, mask.direction)
    centre = ct.index_to_world(np.array(ct.size_ijk) / 2.0)
    with pytest.raises(GeometryError, match="not on the same voxel grid"):
        axial_panel("t", ct, centre, [shifted])
    with pytest.raises(GeometryError, match="outside the volume"):
        axial_panel("t", ct, centre + 1e4, [mask])
    with pytest.raises(InputError, match="positive"):
        axial_panel("t", ct, centre, [mask], half_width_mm=0.0)
