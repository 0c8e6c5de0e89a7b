"""nodsynth.render.edit (ClassicEngine.edit): model-free CT re-render after a nodule shrink or grow."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import shared_path
from nodsynth.augment import resize_nodule
from nodsynth.engines.base import EditRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.errors import GeometryError, InputError
from nodsynth.labelmap import assemble_labelmap, body_mask_from_ct
from nodsynth.labels import NODULE
from nodsynth.phantom import make_demo_patient
from nodsynth.render.edit import LEFT_LUNG_IDS, RIGHT_LUNG_IDS
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

MARGIN_MM = 3.0


@lru_cache(maxsize=1)
def demo():
    return make_demo_patient(0)


def solid_nodule(patient):
    return next(n for n in patient.nodules if n.kind == "solid")


@lru_cache(maxsize=None)
def demo_edit(percent: float, seed: int = 7):
    patient = demo()
    edited = resize_nodule(patient.labelmap, solid_nodule(patient).center_lps, percent).labelmap
    result = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, seed=seed, margin_mm=MARGIN_MM))
    return patient, edited, result


def far_from_change(before: np.ndarray, after: np.ndarray, spacing_xyz, margin_mm: float) -> np.ndarray:
    changed = before != after
    return ndi.distance_transform_edt(~changed, sampling=np.asarray(spacing_xyz)[::-1]) > margin_mm


def lung_parenchyma_median(ct: np.ndarray, labels: np.ndarray, refill_ids: np.ndarray) -> float:
    lung = LEFT_LUNG_IDS if np.isin(refill_ids, LEFT_LUNG_IDS).mean() >= 0.5 else RIGHT_LUNG_IDS
    return float(np.median(ct[np.isin(labels, lung)]))


def test_shrink_render_keeps_everything_outside_the_margin():
    patient, edited, result = demo_edit(50.0)
    out = result.ct.array
    assert out.dtype == patient.ct.array.dtype and out.shape == patient.ct.array.shape
    far = far_from_change(patient.labelmap.array, edited.array, patient.ct.spacing, MARGIN_MM)
    assert np.array_equal(out[far], patient.ct.array[far])
    assert np.any(out[~far] != patient.ct.array[~far])
    assert result.engine == "classic"


def test_removed_region_looks_like_this_lungs_parenchyma():
    patient, edited, result = demo_edit(50.0)
    removed = (patient.labelmap.array == NODULE) & (edited.array != NODULE)
    assert removed.sum() > 50
    before_median = float(np.median(patient.ct.array[removed]))
    after_median = float(np.median(result.ct.array[removed]))
    lung_median = lung_parenchyma_median(patient.ct.array, patient.labelmap.array, edited.array[removed])
    assert abs(after_median - lung_median) <= 100, (after_median, lung_median)
    assert before_median > lung_median + 300, "the removed voxels were nodule tissue before"
    kept = edited.array == NODULE
    assert np.median(result.ct.array[kept]) > lung_median + 300, "the kept nodule stays dense"


def test_render_is_deterministic_for_a_seed():
    patient, edited, first = demo_edit(50.0)
    again = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, seed=7, margin_mm=MARGIN_MM))
    other = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, seed=8, margin_mm=MARGIN_MM))
    assert np.array_equal(first.ct.array, again.ct.array)
    assert not np.array_equal(first.ct.array, other.ct.array)


def test_grow_render_uses_the_nodules_own_intensities():
    patient, edited, result = demo_edit(200.0)
    original = patient.labelmap.array == NODULE
    joined = (edited.array == NODULE) & ~original
    assert joined.sum() > 50
    nodule_voxels = solid_nodule(patient).mask.array > 0
    inner = ndi.binary_erosion(nodule_voxels)
    low, high = np.percentile(patient.ct.array[inner], [5, 95])
    core = ndi.binary_erosion(edited.array == NODULE, iterations=1) & joined
    assert low - 50 <= np.median(result.ct.array[core]) <= high + 50
    far = far_from_change(patient.labelmap.array, edited.array, patient.ct.spacing, MARGIN_MM)
    assert np.array_equal(result.ct.array[far], patient.ct.array[far])


def test_real_ct_shrink_render():
    """A real LIDC slab: label map from the CT's own body and lung air, the 2-of-4 reader nodule mask."""
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    nodule = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    body = body_mask_from_ct(ct)
    lung = body & (ct.array < -500)
    x_lps = ct.index_to_world(np.column_stack([np.arange(ct.size_ijk[0]), np.zeros((ct.size_ijk[0], 2))]))[:, 0]
    patient_left = (x_lps > np.median(x_lps[body.any(axis=(0, 1))]))[None, None, :]
    organs = np.where(lung & patient_left, 28, np.where(lung, 30, 0)).astype(np.uint8)
    labelmap = assemble_labelmap(ct.with_array(organs), ct=ct, nodule_masks=[nodule])
    edited = resize_nodule(labelmap, "all", 50).labelmap
    result = ClassicEngine().edit(EditRequest(ct, labelmap, edited, seed=1, margin_mm=MARGIN_MM))
    removed = (labelmap.array == NODULE) & (edited.array != NODULE)
    lung_median = lung_parenchyma_median(ct.array, labelmap.array, edited.array[removed])
    assert abs(np.median(result.ct.array[removed]) - lung_median) <= 100
    far = far_from_change(labelmap.array, edited.array, ct.spacing, MARGIN_MM)
    assert np.array_equal(result.ct.array[far], ct.array[far])


def test_no_change_returns_the_ct():
    patient = demo()
    result = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, patient.labelmap.copy()))
    assert np.array_equal(result.ct.array, patient.ct.array)
    assert not np.shares_memory(result.ct.array, patient.ct.array)


def test_bad_inputs_are_refused():
    patient = demo()
    edited = demo_edit(50.0)[1]
    moved = Volume(patient.labelmap.array, patient.labelmap.spacing, patient.labelmap.origin + 2.0)
    with pytest.raises(GeometryError, match="not on the same voxel grid"):
        ClassicEngine().edit(EditRequest(patient.ct, moved, edited))
    with pytest.raises(GeometryError, match="edited label map"):
        ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, Volume(edited.array, spacing=(1, 1, 1))))
    with pytest.raises(InputError, match="margin_mm"):
        ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, margin_mm=-1))
    fractional = patient.labelmap.array.astype(np.float32)
    fractional[0, 0, 0] = 0.25
    with pytest.raises(InputError, match="non-integer"):
        ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap.with_array(fractional), edited))


def test_quantiles_of_matches_numpy_quantile():
    from nodsynth.render.edit import quantiles_of

    rng = np.random.default_rng(4)
    for size in (1, 2, 9, 5000):
        samples = rng.normal(-800.0, 60.0, size)
        fractions = rng.uniform(size=(3, 7, 5))
        expected = np.quantile(samples, fractions.ravel()).reshape(fractions.shape)
        assert np.allclose(quantiles_of(samples, fractions), expected, rtol=0, atol=1e-9)


def test_nodules_resized_together_each_take_parenchyma_from_their_own_lung():
    patient = demo()
    edited = resize_nodule(patient.labelmap, "all", 50.0).labelmap
    result = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, seed=3, margin_mm=MARGIN_MM))
    groups = result.info["texture_groups"]
    assert len(groups) == len(patient.nodules)
    assert result.info["texture"] == "patch" and all(g["texture"] == "patch" for g in groups)
    before, after = patient.labelmap.array, edited.array
    removed = (before == NODULE) & (after != NODULE)
    components, count = ndi.label(removed, structure=ndi.generate_binary_structure(3, 3))
    for number in range(1, count + 1):  # each removed region reads like the parenchyma of its own lung
        region = components == number
        if region.sum() < 30:
            continue
        lung_median = lung_parenchyma_median(patient.ct.array, before, after[region])
        assert abs(float(np.median(result.ct.array[region])) - lung_median) <= 100
