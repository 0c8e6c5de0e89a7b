"""Model-free nodule insertion into a real LIDC slab and into the demo patient."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from conftest import shared_path
from nodsynth.engines import InpaintRequest, SUBTYPES, get_engine
from nodsynth.errors import GeometryError, InputError
from nodsynth.histogram import histogram_mean_hu, hu_histogram, jensen_shannon
from nodsynth.place import lung_from_ct, placement_regions, resolve_lung, sample_centroids
from nodsynth.presets import preset_histogram
from nodsynth.render.insert import EDGE_MM, histogram_quantiles_hu
from nodsynth.shapes import place_shape, procedural_shape
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

JSD_LIMIT = 0.05


def _check_insertion(ct: Volume, mask: Volume, subtype: str, lung: Volume | None = None) -> dict:
    target = preset_histogram(subtype)
    engine = get_engine("classic")
    request = InpaintRequest(ct=ct, nodule_mask=mask, subtype=subtype, histogram=target, lung_mask=lung, seed=11)
    result = engine.inpaint(request)
    out, inside = result.ct.array, mask.array > 0
    inserted = hu_histogram(out[inside])
    jsd = jensen_shannon(target, inserted)
    # every voxel farther than the edge margin from the nodule is bit-identical
    box = tuple(slice(max(a.start - 4, 0), a.stop + 4) for a in ndimage.find_objects(inside.astype(np.uint8))[0])
    far = np.ones(inside.shape, bool)
    far[box] = ndimage.distance_transform_edt(~inside[box], sampling=ct.spacing[::-1]) > EDGE_MM
    assert out.dtype == ct.array.dtype
    assert np.array_equal(out[far], ct.array[far])
    assert not np.array_equal(out[inside], ct.array[inside])
    # deterministic per seed, different with another seed
    assert np.array_equal(engine.inpaint(request).ct.array, out)
    request.seed = 12
    assert not np.array_equal(engine.inpaint(request).ct.array, out)
    return {"jsd": jsd, "mean_hu": histogram_mean_hu(inserted), "voxels": int(inside.sum()), "out": out}


def _core_vs_rim_hu(out: np.ndarray, mask: np.ndarray, spacing_ijk) -> tuple[float, float]:
    depth = ndimage.distance_transform_edt(mask, sampling=np.asarray(spacing_ijk)[::-1])
    deep = depth >= np.percentile(depth[mask], 75)
    rim = mask & (depth <= np.percentile(depth[mask], 25))
    return float(out[mask & deep].mean()), float(out[rim].mean())


@pytest.fixture(scope="module")
def slab():
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    existing = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    lung = lung_from_ct(ct)
    return ct, existing, lung, placement_regions(lung, 14.0, nodules=existing, clearance_mm=5.0)


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_insert_into_lidc_slab(slab, subtype):
    ct, existing, lung, regions = slab
    centre = sample_centroids(regions, "inner", 1, seed=SUBTYPES.index(subtype))[0]
    mask = place_shape(procedural_shape(1.3, 0.4, 0.2, seed=2), ct, centre, 14.0)
    assert not (mask.array.astype(bool) & (existing.array > 0)).any()
    assert lung.array[mask.array > 0].all()
    figures = _check_insertion(ct, mask, subtype, lung)
    core, rim = _core_vs_rim_hu(figures["out"], mask.array > 0, ct.spacing)
    print(f"LIDC-IDRI-0001 slab, {subtype}: JSD {figures['jsd']:.4f}, mean {figures['mean_hu']:.0f} HU, "
          f"{figures['voxels']} voxels, core {core:.0f} / rim {rim:.0f} HU")
    assert figures["jsd"] <= JSD_LIMIT
    assert core > rim


@pytest.fixture(scope="module")
def demo():
    from nodsynth.phantom import make_demo_patient

    patient = make_demo_patient(0)
    lung, existing = resolve_lung(labelmap=patient.labelmap)
    return patient, placement_regions(lung, 12.0, nodules=existing, clearance_mm=3.0)


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_insert_into_demo_patient(demo, subtype):
    demo_patient, regions = demo
    centre = sample_centroids(regions, "inner", 1, seed=4 + SUBTYPES.index(subtype))[0]
    mask = place_shape(procedural_shape(1.0, 0.5, 0.0, seed=3), demo_patient.ct, centre, 12.0)
    figures = _check_insertion(demo_patient.ct, mask, subtype)
    print(f"demo patient, {subtype}: JSD {figures['jsd']:.4f}, mean {figures['mean_hu']:.0f} HU, {figures['voxels']} voxels")
    assert figures["jsd"] <= JSD_LIMIT


def test_part_solid_core_is_solid():
    ct = Volume(np.full((30, 60, 60), -850, np.int16), spacing=(0.7, 0.7, 0.7))
    mask = place_shape(procedural_shape(), ct, ct.index_to_world([30, 30, 15]), 16.0)
    out = get_engine("classic").inpaint(InpaintRequest(ct, mask, "part-solid", seed=0)).ct.array
    core, rim = _core_vs_rim_hu(out, mask.array > 0, ct.spacing)
    print(f"part-solid: core {core:.0f} HU, rim {rim:.0f} HU")
    assert core > -300 > rim  # a solid core inside a ground-glass halo
    labelled = mask.array.copy()
    labelled[14:17, 28:33, 28:33] *= 2  # explicit solid core label 2
    out2 = get_engine("classic").inpaint(InpaintRequest(ct, mask.with_array(labelled), "part-solid", seed=0)).ct.array
    assert out2[labelled == 2].min() >= np.percentile(out2[labelled == 1], 90)


def test_quantiles_and_errors():
    hist = preset_histogram("solid")
    values = histogram_quantiles_hu(hist, 20000)
    assert np.all(np.diff(values) >= 0)
    assert jensen_shannon(hist, hu_histogram(values)) < 1e-4
    ct = Volume(np.zeros((8, 8, 8), np.int16))
    engine = get_engine("classic")
    with pytest.raises(InputError, match="empty"):
        engine.inpaint(InpaintRequest(ct, ct.with_array(np.zeros((8, 8, 8), np.uint8))))
    with pytest.raises(GeometryError):
        engine.inpaint(InpaintRequest(ct, Volume(np.ones((8, 8, 8), np.uint8), spacing=(2, 2, 2))))
    with pytest.raises(InputError, match="40 bins"):
        engine.inpaint(InpaintRequest(ct, ct.with_array(np.ones((8, 8, 8), np.uint8)), histogram=np.ones(5)))
