"""Placement on a real DLCS label map: inner nodules lie wholly in the lung, sub-pleural ones
touch the pleura, none overlaps an existing nodule; plus the CT-threshold fallback."""
from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.errors import GeometryError, InputError
from nodsynth.labels import LOBE_IDS, NODULE
from nodsynth.place import (lung_from_ct, placement_regions, resolve_lung,
                            sample_centroids)
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

DIAMETER_MM = 10.0
CLEARANCE_MM = 2.0


@pytest.fixture(scope="module")
def dlcs():
    path = shared_path("dlcs_labelmaps", "DLCS_0001_seg_sh.nii.gz")
    volume = read_volume(path)
    return volume.with_array(np.rint(volume.array).astype(np.int16))


def _ball_offsets_kji(spacing_ijk: np.ndarray, radius_mm: float) -> np.ndarray:
    """Integer (k, j, i) offsets of every voxel centre within radius_mm of the origin."""
    spacing_kji = np.asarray(spacing_ijk)[::-1]
    half = np.ceil(radius_mm / spacing_kji).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), axis=-1).reshape(-1, 3)
    return grid[np.linalg.norm(grid * spacing_kji, axis=1) <= radius_mm]


def _ball_values(array: np.ndarray, centres_kji: np.ndarray, offsets: np.ndarray, outside) -> np.ndarray:
    """array values in each ball, shape (n_centres, n_offsets); 'outside' where a ball leaves the array."""
    points = centres_kji[:, None, :] + offsets[None, :, :]
    inside = np.all((points >= 0) & (points < np.array(array.shape)), axis=2)
    clipped = np.clip(points, 0, np.array(array.shape) - 1)
    values = array[clipped[..., 0], clipped[..., 1], clipped[..., 2]]
    return np.where(inside, values, outside)


def _to_kji(volume: Volume, points_lps: np.ndarray) -> np.ndarray:
    ijk = volume.world_to_index(points_lps)
    assert np.allclose(ijk, np.rint(ijk), atol=1e-6), "centroids should be voxel centres"
    return np.rint(ijk[:, ::-1]).astype(int)


def test_thousand_centroids_on_dlcs(dlcs):
    labels = dlcs.array
    lung = np.isin(labels, LOBE_IDS + (NODULE,))
    nodules = labels == NODULE
    assert nodules.sum() > 0
    start = time.perf_counter()
    lung_volume, nodule_volume = resolve_lung(labelmap=dlcs)
    regions = placement_regions(lung_volume, DIAMETER_MM, nodules=nodule_volume, clearance_mm=CLEARANCE_MM)
    inner = sample_centroids(regions, "inner", 1000, seed=1)
    sub = sample_centroids(regions, "subpleural", 1000, seed=1)
    seconds = time.perf_counter() - start
    print(f"placement regions + 2x1000 centroids on 512x512x256: {seconds:.1f} s; "
          f"inner {int(regions.inner.array.sum())} voxels, sub-pleural {int(regions.subpleural.array.sum())} voxels")

    ball = _ball_offsets_kji(dlcs.spacing, DIAMETER_MM / 2)
    clear_ball = _ball_offsets_kji(dlcs.spacing, DIAMETER_MM / 2 + CLEARANCE_MM)
    inner_kji, sub_kji = _to_kji(dlcs, inner), _to_kji(dlcs, sub)
    assert len(np.unique(inner_kji, axis=0)) == 1000
    # every inner nodule lies wholly in the lung
    assert _ball_values(lung, inner_kji, ball, False).all()
    # every sub-pleural centroid is in the lung and its nodule reaches the lung boundary (pleura)
    assert lung[tuple(sub_kji.T)].all()
    assert (~_ball_values(lung, sub_kji, ball, False)).any(axis=1).all()
    # no nodule (plus clearance) overlaps an existing nodule
    for centres in (inner_kji, sub_kji):
        assert not _ball_values(nodules, centres, clear_ball, False).any()
    assert seconds < 60


def test_seeded_and_errors():
    ball = np.zeros((20, 30, 30), bool)
    kk, jj, ii = np.indices(ball.shape)
    ball[(kk - 10) ** 2 * 4 + (jj - 15) ** 2 + (ii - 15) ** 2 <= 144] = True  # 24 mm sphere, 1x1x2 mm
    lung_volume = Volume(ball, spacing=(1.0, 1.0, 2.0), origin=(-10.0, 5.0, 3.0))
    nodule = np.zeros_like(ball)
    nodule[10, 15, 15] = True
    nodule_volume = lung_volume.with_array(nodule)
    regions = placement_regions(lung_volume, 6.0, nodules=nodule_volume, clearance_mm=1.0)
    a = sample_centroids(regions, "inner", 5, seed=7)
    assert np.array_equal(a, sample_centroids(regions, "inner", 5, seed=7))
    assert not np.array_equal(a, sample_centroids(regions, "inner", 5, seed=8))
    assert np.all(np.linalg.norm(a - lung_volume.index_to_world([15, 15, 10]), axis=1) > 4.0)
    with pytest.raises(InputError, match="no room"):
        sample_centroids(placement_regions(lung_volume, 30.0), "inner", 1)
    with pytest.raises(InputError, match="unknown placement"):
        sample_centroids(regions, "middle", 1)
    with pytest.raises(InputError, match="diameter"):
        placement_regions(lung_volume, -1.0)
    shifted = Volume(nodule, lung_volume.spacing, lung_volume.origin + 5.0)
    with pytest.raises(GeometryError):
        placement_regions(lung_volume, 10.0, nodules=shifted)


def test_ct_threshold_fallback_on_real_slab():
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    lung = lung_from_ct(ct)
    fraction = lung.array.mean()
    values = ct.array[lung.array]
    print(f"CT-threshold lung: {fraction:.1%} of the slab, median {np.median(values):.0f} HU")
    assert 0.1 < fraction < 0.6
    assert np.median(values) < -600
    # the body outline and the outside air are not lung
    assert not lung.array[:, 0, :].any() and not lung.array[:, :, 0].any()
    regions = placement_regions(lung, 8.0)
    point = sample_centroids(regions, "inner", 1, seed=0)[0]
    assert lung.array[ct.world_to_kji(point)]
