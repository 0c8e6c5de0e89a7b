"""nodsynth.labelmap: body mask, label-map assembly (MAISI ids and TotalSegmentator names), validation."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import shared_path
from nodsynth.errors import GeometryError, InputError
from nodsynth.labelmap import (as_integer_labelmap, assemble_labelmap, body_mask_from_ct, load_labelmap,
                               organs_from_totalsegmentator, read_totalsegmentator_folder,
                               totalsegmentator_to_maisi, validate_labelmap)
from nodsynth.labels import BODY, LOBE_IDS, NODULE, label_dict
from nodsynth.phantom import make_demo_patient
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume


@lru_cache(maxsize=1)
def demo():
    return make_demo_patient(0)


def test_body_mask_of_a_real_slab_holds_the_lungs_and_not_the_air():
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    body = body_mask_from_ct(ct)
    hu = ct.array
    assert ndi.label(body)[1] == 1
    assert not body[:, 0, 0].any() and not body[:, -1, -1].any(), "the air around the patient is not body"
    lung_air = (hu < -600) & body
    assert lung_air.sum() > 0.1 * body.sum(), "the lungs (holes of the body) are filled in"
    assert body[hu > 0].mean() > 0.9, "soft tissue and bone are body (the scanner table may not be)"


def test_body_mask_matches_the_demo_label_map():
    patient = demo()
    body = body_mask_from_ct(patient.ct)
    truth = patient.labelmap.array != 0
    dice = 2 * np.count_nonzero(body & truth) / (body.sum() + truth.sum())
    assert dice > 0.97


def test_body_mask_rejects_a_non_ct():
    with pytest.raises(InputError, match="Hounsfield"):
        body_mask_from_ct(Volume(np.full((4, 4, 4), -1000, dtype=np.int16)))


def test_assemble_labelmap_priorities():
    patient = demo()
    truth = patient.labelmap.array
    organs = np.where(np.isin(truth, [BODY, NODULE]), 0, truth).astype(np.uint8)
    masks = [n.mask for n in patient.nodules]
    built = assemble_labelmap(patient.labelmap.with_array(organs), ct=patient.ct, nodule_masks=masks).array
    any_nodule = np.any([m.array > 0 for m in masks], axis=0)
    assert np.array_equal(built == NODULE, any_nodule), "nodules are painted on top"
    organ = (organs > 0) & ~any_nodule
    assert np.array_equal(built[organ], organs[organ]), "organ ids are kept"
    body = body_mask_from_ct(patient.ct)
    assert np.array_equal(built == BODY, body & (organs == 0) & ~any_nodule), "200 = body without organ"
    assert set(np.unique(built[~body & (organs == 0) & ~any_nodule])) <= {0}


def test_assemble_rejects_other_grids_and_unknown_ids():
    patient = demo()
    shifted = Volume(patient.labelmap.array, patient.labelmap.spacing, patient.labelmap.origin + 5.0)
    with pytest.raises(GeometryError, match="not on the same voxel grid"):
        assemble_labelmap(shifted, ct=patient.ct)
    bad = patient.labelmap.with_array(np.where(patient.labelmap.array == 1, 250, patient.labelmap.array))
    with pytest.raises(InputError, match="outside the MAISI label space"):
        assemble_labelmap(bad)


def test_totalsegmentator_table_covers_the_thorax():
    table = totalsegmentator_to_maisi()
    maisi = label_dict()
    required = (["lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
                 "lung_middle_lobe_right", "lung_lower_lobe_right", "trachea", "heart", "aorta", "esophagus"]
                + [f"vertebrae_T{i}" for i in range(1, 13)] + [f"rib_{s}_{i}" for s in ("left", "right")
                                                               for i in range(1, 13)])
    assert set(required) <= set(table)
    assert {table[n] for n in required[:5]} == set(LOBE_IDS)
    assert set(table.values()) <= set(maisi.values())
    assert table["heart"] == maisi["heart"] and table["rib_left_3"] == maisi["left rib 3"]


def test_totalsegmentator_folder_round_trip(tmp_path):
    patient = demo()
    table = totalsegmentator_to_maisi()
    inverse = {v: k for k, v in table.items()}
    truth = patient.labelmap.array
    present = [int(i) for i in np.unique(truth) if int(i) in inverse]
    for maisi_id in present:
        write_volume(patient.labelmap.with_array((truth == maisi_id).astype(np.uint8)),
                     tmp_path / f"{inverse[maisi_id]}.nii.gz")
    (tmp_path / "notes.txt").write_text("not a mask")
    masks = read_totalsegmentator_folder(tmp_path)
    assert len(masks) == len(present)
    organs = organs_from_totalsegmentator(masks).array
    covered = np.isin(truth, present)
    assert np.array_equal(organs[covered], truth[covered])
    assert not organs[~covered].any()
    with pytest.raises(InputError, match="unknown TotalSegmentator classes"):
        organs_from_totalsegmentator({"not_an_organ": next(iter(masks.values()))})


def test_dlcs_float_maps_are_cast_and_valid():
    path = shared_path("dlcs_labelmaps", "DLCS_0002_seg_sh.nii.gz")
    raw = read_volume(path)
    assert raw.array.dtype == np.float32
    labelmap = load_labelmap(path)
    assert labelmap.array.dtype == np.uint8
    assert np.array_equal(labelmap.array, raw.array)
    assert validate_labelmap(labelmap) is labelmap


def test_integer_cast_rejects_fractions_and_negatives():
    floats = np.zeros((3, 3, 3), dtype=np.float32)
    floats[1, 1, 1] = 23.5
    with pytest.raises(InputError, match="non-integer"):
        as_integer_labelmap(Volume(floats))
    with pytest.raises(InputError, match="negative"):
        as_integer_labelmap(Volume(np.full((2, 2, 2), -1, dtype=np.int16)))


def test_validate_labelmap_checks():
    patient = demo()
    assert validate_labelmap(patient.labelmap, ct=patient.ct) is patient.labelmap
    unknown = patient.labelmap.array.copy()
    unknown[0, 0, 0] = 201
    with pytest.raises(InputError, match=r"\[201\]"):
        validate_labelmap(patient.labelmap.with_array(unknown))
    outside = patient.labelmap.array.copy()
    outside[1, 1, 1] = NODULE
    with pytest.raises(InputError, match="outside the body"):
        validate_labelmap(patient.labelmap.with_array(outside))
    with pytest.raises(InputError, match="outside the body"):
        validate_labelmap(patient.labelmap.with_array(outside), ct=patient.ct)
    other = Volume(patient.ct.array, spacing=patient.ct.spacing * 1.1, origin=patient.ct.origin)
    with pytest.raises(GeometryError):
        validate_labelmap(patient.labelmap, ct=other)
