"""The embedded demo patient: deterministic, valid MAISI labels, nodules where and what they claim."""
from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from scipy import ndimage

from nodsynth import labels
from nodsynth.phantom import (GRID_SIZE_IJK, NODULE_KINDS, SPACING_MM, SUBTYPE_OF_KIND, make_demo_patient,
                              write_demo_patient)
from nodsynth.volume import lps_to_ras
from nodsynth.io.volume_files import read_volume

LUNG_IDS = list(labels.LOBE_IDS)
RIB_IDS = list(range(63, 87))
GENERATION_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def timed_patient():
    start = time.process_time()  # CPU time: robust to other work sharing the machine
    patient = make_demo_patient(0)
    return patient, time.process_time() - start


@pytest.fixture(scope="module")
def patient(timed_patient):
    return timed_patient[0]


def _around(mask: np.ndarray, margin: int = 6) -> tuple[slice, ...]:
    """Bounding box of a mask grown by ``margin`` voxels (tests look only near a nodule)."""
    kji = np.argwhere(mask)
    lo, hi = np.maximum(kji.min(axis=0) - margin, 0), kji.max(axis=0) + margin + 1
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _shell(mask: np.ndarray, voxels: int = 1) -> np.ndarray:
    """Voxels within ``voxels`` 26-connected steps outside ``mask`` (``mask`` must be off the border)."""
    grown = ndimage.binary_dilation(mask, ndimage.generate_binary_structure(3, 3), iterations=voxels)
    return grown & ~mask


def _gap_mm(mask: np.ndarray, target: np.ndarray) -> float:
    """Smallest physical distance (mm) from the mask to a ``target`` voxel, looking 6 voxels around."""
    box = _around(mask)
    if not target[box].any():
        return float("inf")
    distance = ndimage.distance_transform_edt(~target[box], sampling=np.asarray(SPACING_MM)[::-1])
    return float(distance[mask[box]].min())


def test_generation_is_fast(timed_patient):
    assert timed_patient[1] < GENERATION_LIMIT_S, f"demo patient took {timed_patient[1]:.1f} s of CPU"


def test_grid_is_the_documented_maisi_grid(patient):
    for volume in (patient.ct, patient.labelmap, patient.vessels, *(n.mask for n in patient.nodules)):
        assert volume.size_ijk == GRID_SIZE_IJK == (256, 256, 128)
        np.testing.assert_allclose(volume.spacing, SPACING_MM)
        np.testing.assert_allclose(volume.direction, np.eye(3))
        np.testing.assert_allclose(volume.origin, patient.ct.origin)
    assert patient.ct.array.dtype == np.int16
    assert patient.labelmap.array.dtype == np.uint8
    lo, hi = patient.ct.world_bounds_lps()
    np.testing.assert_allclose(hi - lo + SPACING_MM, [320.0, 320.0, 256.0])
    body = np.argwhere(patient.labelmap.array > 0)
    centre_lps = patient.ct.index_to_world(body.mean(axis=0)[::-1])
    assert np.all(np.abs(centre_lps[:2]) < 5.0), f"body centred in the axial plane, centroid {centre_lps}"


def test_same_seed_gives_identical_arrays_and_other_seed_differs(patient):
    again = make_demo_patient(0)
    np.testing.assert_array_equal(again.ct.array, patient.ct.array)
    np.testing.assert_array_equal(again.labelmap.array, patient.labelmap.array)
    for a, b in zip(again.nodules, patient.nodules):
        assert (a.name, a.kind, a.diameter_mm) == (b.name, b.kind, b.diameter_mm)
        np.testing.assert_array_equal(a.center_lps, b.center_lps)
        np.testing.assert_array_equal(a.mask.array, b.mask.array)
    other = make_demo_patient(1)
    assert not np.array_equal(other.ct.array, patient.ct.array)
    assert sorted(n.kind for n in other.nodules) == sorted(NODULE_KINDS)


def test_label_ids_are_known_maisi_ids_with_the_expected_organs(patient):
    present = set(np.unique(patient.labelmap.array).tolist())
    assert present <= labels.known_label_ids(), present - labels.known_label_ids()
    expected = set(LUNG_IDS) | {labels.NODULE, labels.AIRWAY, labels.TRACHEA, labels.BODY, labels.BACKGROUND}
    assert expected <= present
    assert present & set(RIB_IDS), "ribs are labelled with MAISI rib ids"
    names = labels.label_dict()
    assert {names["heart"], names["aorta"], names["sternum"]} <= present


def test_lobes_lie_where_anatomy_puts_them(patient):
    lab = patient.labelmap.array
    centroid = {lobe: patient.ct.index_to_world(np.argwhere(lab == lobe).mean(axis=0)[::-1]) for lobe in LUNG_IDS}
    for lobe in (28, 29):  # left lung: patient's left is +x in LPS
        assert centroid[lobe][0] > 30
    for lobe in (30, 31, 32):
        assert centroid[lobe][0] < -30
    assert centroid[28][2] > centroid[29][2] and centroid[30][2] > centroid[32][2]
    assert centroid[31][1] < centroid[32][1], "right middle lobe is anterior to the lower lobe"
    assert centroid[30][2] > centroid[31][2], "right upper lobe is above the middle lobe"


def test_every_kind_once_with_its_subtype_and_true_mask(patient):
    assert sorted(n.kind for n in patient.nodules) == sorted(NODULE_KINDS)
    assert len({n.name for n in patient.nodules}) == len(patient.nodules)
    union = np.zeros(patient.ct.shape_kji, bool)
    for n in patient.nodules:
        mask = n.mask.array
        assert mask.dtype == np.uint8 and set(np.unique(mask).tolist()) == {0, 1}
        assert n.subtype == SUBTYPE_OF_KIND[n.kind] in ("solid", "part-solid", "ground-glass")
        assert 6.0 <= n.diameter_mm <= 20.0
        assert mask[patient.ct.world_to_kji(n.center_lps)] == 1, f"{n.name}: a click at the centre hits it"
        equivalent_mm = 2.0 * (3.0 * mask.sum() * patient.ct.voxel_volume_mm3 / (4.0 * np.pi)) ** (1 / 3)
        low = 0.6 if n.kind == "juxta-pleural" else 0.85  # the chest wall cuts a juxta-pleural nodule
        assert low * n.diameter_mm <= equivalent_mm <= 1.15 * n.diameter_mm, (n.name, equivalent_mm)
        assert not (union & (mask > 0)).any(), "nodules do not overlap"
        union |= mask > 0
    np.testing.assert_array_equal(patient.labelmap.array == labels.NODULE, union)


def test_each_nodule_sits_in_its_lobe(patient):
    lab = patient.labelmap.array
    for n in patient.nodules:
        assert n.lobe in LUNG_IDS
        box = _around(n.mask.array > 0)
        ring = lab[box][_shell(n.mask.array[box] > 0, 2)]
        if n.kind != "juxta-pleural":
            assert np.isin(ring, LUNG_IDS).all(), f"{n.name} is surrounded by lung"
        lung_ring = ring[np.isin(ring, LUNG_IDS)]
        assert np.mean(lung_ring == n.lobe) > 0.95, f"{n.name} lies in lobe {n.lobe}"


def test_juxta_pleural_touches_the_chest_wall_and_the_others_do_not(patient):
    lab = patient.labelmap.array
    non_lung = ~np.isin(lab, LUNG_IDS + [labels.NODULE])
    for n in patient.nodules:
        mask = n.mask.array > 0
        gap_mm = _gap_mm(mask, non_lung)
        if n.kind == "juxta-pleural":
            box = _around(mask)
            touching = lab[box][_shell(mask[box])]
            assert np.isin(touching, [labels.BODY] + RIB_IDS).any(), "juxta-pleural touches chest wall tissue"
            assert gap_mm <= 1.25 + 1e-6
        else:
            assert gap_mm >= 3.0, f"{n.name} is free-standing, {gap_mm:.1f} mm from the pleura"


def test_juxta_vascular_touches_a_vessel_and_the_others_are_clear(patient):
    vessels = patient.vessels.array > 0
    assert vessels.sum() > 10_000, "the lungs hold a vessel tree"
    for n in patient.nodules:
        mask = n.mask.array > 0
        assert not (mask & vessels).any()
        if n.kind == "juxta-vascular":
            box = _around(mask)
            assert (_shell(mask[box]) & vessels[box]).sum() >= 5, "juxta-vascular nodule abuts a vessel"
        else:
            assert _gap_mm(mask, vessels) >= 2.0, f"{n.name} is clear of vessels"


def _median_hu(patient, where: np.ndarray) -> float:
    assert where.any()
    return float(np.median(patient.ct.array[where]))


def test_hounsfield_units_per_tissue(patient):
    lab, ct = patient.labelmap.array, patient.ct.array
    names = labels.label_dict()
    parenchyma = ndimage.binary_erosion(np.isin(lab, LUNG_IDS) & (patient.vessels.array == 0), iterations=2)
    assert -900 <= _median_hu(patient, parenchyma) <= -780
    assert ct[parenchyma].std() > 10, "lung parenchyma has texture and noise"
    assert _median_hu(patient, lab == 0) < -950, "air outside the body"
    assert 400 <= _median_hu(patient, np.isin(lab, RIB_IDS)) <= 1000
    for organ in ("heart", "aorta", "liver"):
        assert 20 <= _median_hu(patient, ndimage.binary_erosion(lab == names[organ], iterations=2)) <= 80
    assert _median_hu(patient, ndimage.binary_erosion(np.isin(lab, [labels.TRACHEA]), iterations=1)) < -300
    for n in patient.nodules:
        core = ndimage.binary_erosion(n.mask.array > 0, iterations=2)
        values = ct[core]
        if n.subtype == "solid":
            assert -60 <= np.median(values) <= 100, n.name
        elif n.subtype == "ground-glass":
            assert -650 <= np.median(values) <= -400, n.name
        else:
            assert (values > -150).sum() >= 10 and (values < -400).sum() >= 10, "part-solid: core and halo"


def test_lung_mask_holds_lobes_and_nodules(patient):
    lungs = patient.lung_mask()
    expected = np.isin(patient.labelmap.array, LUNG_IDS + [labels.NODULE])
    np.testing.assert_array_equal(lungs.array > 0, expected)
    assert lungs.array.dtype == np.uint8


def test_write_demo_patient_round_trips(patient, tmp_path):
    written = write_demo_patient(patient, tmp_path / "patient")
    folder = tmp_path / "patient"
    assert {p.name for p in folder.iterdir()} == {"ct.nii.gz", "labelmap.nii.gz", "vessels.nii.gz", "nodules",
                                                   "points.csv", "annotations.csv"}
    assert all(path.exists() for path in written.values())
    ct = read_volume(folder / "ct.nii.gz")
    np.testing.assert_array_equal(ct.array, patient.ct.array)
    np.testing.assert_allclose(ct.origin, patient.ct.origin)
    np.testing.assert_array_equal(read_volume(folder / "labelmap.nii.gz").array, patient.labelmap.array)
    with open(folder / "points.csv", newline="") as handle:
        points = {row["name"]: row for row in csv.DictReader(handle)}
    with open(folder / "annotations.csv", newline="") as handle:
        boxes = {row["nodule_id"]: row for row in csv.DictReader(handle)}
    for n in patient.nodules:
        row = points[n.name]
        lps = np.array([float(row[k]) for k in ("x_lps", "y_lps", "z_lps")])
        ras = np.array([float(row[k]) for k in ("x_ras", "y_ras", "z_ras")])
        np.testing.assert_allclose(lps, n.center_lps, atol=1e-3)
        np.testing.assert_allclose(ras, lps_to_ras(n.center_lps), atol=1e-3)
        assert (row["kind"], row["subtype"], int(row["lobe"])) == (n.kind, n.subtype, n.lobe)
        np.testing.assert_array_equal(read_volume(folder / row["mask_file"]).array, n.mask.array)
        box = boxes[n.name]
        centre = np.array([float(box[k]) for k in ("coordX", "coordY", "coordZ")])
        size = np.array([float(box[k]) for k in ("w", "h", "d")])
        assert box["ct_nifti_file"] == "ct.nii.gz"
        assert np.all(np.abs(n.center_lps - centre) <= size / 2 + 1e-6), "the box holds the centre"
        assert np.all(size <= n.diameter_mm * 1.3 + 2.5)
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name], "no temporary files left"
