"""The Slicer modules' pure cores (``<Module>Lib/compute.py``, ``NodMAISICommon.labelmaps``) on the demo
patient and real LIDC data: what each module's Logic runs between reading and writing MRML nodes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slicer_fixtures import demo_patient, parenchyma_point

from conftest import DEMO_DICE_REQUIRED, shared_path
from NodMAISICommon.labelmaps import build_labelmap, organ_volume
from nodsynth.engines import UnsupportedOperation, get_engine
from nodsynth.errors import GeometryError, InputError
from nodsynth.histogram import histogram_mean_hu
from nodsynth.labels import BODY, NODULE
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume

REPO = Path(__file__).resolve().parent.parent
for module in ("PseudoNoduleSeg", "LesionAugment", "NodMAISI", "HRLDMInpaint"):
    if str(REPO / module) not in sys.path:
        sys.path.insert(0, str(REPO / module))

from HRLDMInpaintLib.compute import (ShapeOptions, inpaint, nodule_mask, sample_location,  # noqa: E402
                                     split_lung_input, target_histogram)
from LesionAugmentLib.compute import (nodule_at, nodule_table_rows, parse_percents, render_ct, resize,  # noqa: E402
                                      stats_rows)
from NodMAISILib.compute import SynthesisOptions, parse_size, parse_spacing, synthesize  # noqa: E402
from PseudoNoduleSegLib.compute import SegmentOptions, options_from_parameters, segment_points  # noqa: E402


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def patient():
    return demo_patient()


# ------------------------------------------------------------------------------------- PseudoNoduleSeg
def test_click_each_demo_nodule_dice_and_measurements(patient):
    pytest.importorskip("nodsynth.measure", reason="nodsynth.measure (Seg engineer) has not landed yet")
    points = [n.center_lps for n in patient.nodules]
    # as the module's self-test and `nodsynth demo`: restricted to the lungs of the label map
    outcomes = segment_points(patient.ct, points, SegmentOptions(restrict_to_lung=True), lung=patient.labelmap)
    assert [o.point_index for o in outcomes] == list(range(len(points)))
    for nodule, outcome in zip(patient.nodules, outcomes):
        score = dice(outcome.mask.array, nodule.mask.array)
        assert score >= DEMO_DICE_REQUIRED, f"{nodule.kind} nodule: Dice {score:.3f}"
        row = outcome.measurements
        assert row["nodule"] == f"Nodule {outcome.point_index + 1}" and row["method"] == "kmeans"
        assert row["lobe_id"] == nodule.lobe and row["subtype"] in ("solid", "part-solid", "ground-glass")
        voxels = int(np.count_nonzero(outcome.mask.array))
        volumes = [v for k, v in row.items() if k.endswith("_mm3")]
        assert volumes and volumes[0] == pytest.approx(voxels * patient.ct.voxel_volume_mm3, rel=1e-6)


def test_click_on_the_real_lidc_slab():
    pytest.importorskip("nodsynth.measure", reason="nodsynth.measure (Seg engineer) has not landed yet")
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    truth = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    kji = np.argwhere(truth.array > 0).mean(axis=0)
    centre_lps = truth.index_to_world(kji[::-1])
    (outcome,) = segment_points(ct, [centre_lps], SegmentOptions(), point_indices=[4])
    score = dice(outcome.mask.array, truth.array)
    print(f"LIDC-IDRI-0001 slab, click at the 2-of-4 mask centroid: Dice {score:.3f}")
    assert score >= 0.7 and outcome.measurements["nodule"] == "Nodule 5"


def test_a_click_on_parenchyma_is_refused_unless_kept():
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    point = parenchyma_point(ct)
    with pytest.raises(InputError, match="no nodule at this point .* HU denser .*Keep low-contrast masks"):
        segment_points(ct, [point])
    (outcome,) = segment_points(ct, [point], SegmentOptions(keep_low_contrast=True))
    assert outcome.mask.array.any()


def test_segment_options_checked(patient):
    class Params:  # the attribute names of the module's parameter node wrapper
        method, boxSizeMm, expandMm, fillHoles, restrictToLung, keepLowContrast = "gmm", 20.0, 1.5, False, True, True

    assert options_from_parameters(Params()) == SegmentOptions("gmm", 20.0, 1.5, False, True, True)
    for bad in (SegmentOptions(method="watershed"), SegmentOptions(box_size_mm=-1), SegmentOptions(expand_mm=np.nan)):
        with pytest.raises(InputError):
            bad.checked()
    with pytest.raises(GeometryError, match="outside"):
        segment_points(patient.ct, [[5000.0, 0.0, 0.0]])
    with pytest.raises(InputError, match="indices"):
        segment_points(patient.ct, [[0.0, 0.0, 0.0]], point_indices=[0, 1])


# -------------------------------------------------------------------------------------- label maps
def test_organ_volume_from_maisi_and_totalsegmentator_names(patient):
    lobes = patient.labelmap.with_array((patient.labelmap.array == 28).astype(np.uint8))
    trachea = patient.labelmap.with_array((patient.labelmap.array == 57).astype(np.uint8))
    organs = organ_volume({"Left Lung Upper Lobe": lobes, "trachea": trachea})
    assert set(np.unique(organs.array)) == {0, 28, 57}
    assert np.array_equal(organs.array == 28, lobes.array > 0)
    same = organ_volume({"lung_upper_lobe_left": lobes})  # TotalSegmentator class name
    assert np.array_equal(same.array == 28, lobes.array > 0)
    with pytest.raises(InputError, match="Tumour blob"):
        organ_volume({"Tumour blob": lobes})


def test_build_labelmap_puts_nodules_on_top_and_body_from_the_ct(patient):
    lobes = patient.labelmap.with_array(np.isin(patient.labelmap.array, (28, 29)).astype(np.uint8))
    nodule = patient.nodules[0].mask
    labelmap = build_labelmap({"left lung upper lobe": lobes}, [nodule], patient.ct)
    assert np.all(labelmap.array[nodule.array > 0] == NODULE)
    assert (labelmap.array == BODY).sum() > 0.1 * labelmap.array.size


# ------------------------------------------------------------------------------------- LesionAugment
def test_parse_percents():
    assert parse_percents("100, 90;80 70") == [100.0, 90.0, 80.0, 70.0]
    for bad in ("", "50,abc", "0", "301"):
        with pytest.raises(InputError):
            parse_percents(bad)


@pytest.mark.parametrize("name, voxels", [("DLCS_0001_seg_sh.nii.gz", [662, 1346]), ("DLCS_0002_seg_sh.nii.gz", [1188])])
def test_nodule_table_of_real_dlcs_label_maps(name, voxels):
    """DATA.md: DLCS_0001 has two nodules (662 and 1346 voxels), DLCS_0002 one (1188 voxels)."""
    from nodsynth.labelmap import load_labelmap

    labelmap = load_labelmap(shared_path("dlcs_labelmaps", name))
    rows = nodule_table_rows(labelmap)
    assert sorted(r["voxels"] for r in rows) == voxels
    assert [r["nodule_id"] for r in rows] == list(range(1, len(voxels) + 1))
    for row in rows:
        assert row["volume_mm3"] == pytest.approx(row["voxels"] * 0.703125 * 0.703125 * 1.25, rel=1e-3)
        assert row["equivalent_diameter_mm"] == pytest.approx((6 * row["volume_mm3"] / np.pi) ** (1 / 3))
        assert row["longest_diameter_mm"] >= row["equivalent_diameter_mm"]
        assert nodule_at(labelmap, row["centroid_lps"]) == row["nodule_id"]
        kji = labelmap.world_to_kji(row["centroid_lps"])
        assert np.isin(labelmap.array[max(kji[0] - 3, 0):kji[0] + 4, max(kji[1] - 3, 0):kji[1] + 4,
                                      max(kji[2] - 3, 0):kji[2] + 4], NODULE).any()


def test_a_click_far_from_any_nodule_picks_none(patient):
    lobe_voxel = np.argwhere(patient.labelmap.array == 30)[0]
    with pytest.raises(InputError, match="no nodule"):
        nodule_at(patient.labelmap, patient.labelmap.index_to_world(lobe_voxel[::-1].astype(float)))


def test_resize_series_and_model_free_render(patient):
    results = resize(patient.labelmap, 1, [75.0, 50.0])
    rows = stats_rows(results)
    assert [r["step_percent"] for r in rows] == [75.0, 50.0]
    assert all(abs(r["achieved_percent"] - r["step_percent"]) <= 1.0 for r in rows)
    edited = results[-1].labelmap
    ct = render_ct(get_engine("classic"), patient.ct, patient.labelmap, edited)
    changed = np.argwhere(ct.array != patient.ct.array)
    assert changed.size, "the render changed nothing"
    removed = np.argwhere((patient.labelmap.array == NODULE) & (edited.array != NODULE))
    spread_mm = (np.abs(changed[:, None, :] - removed[None, ::50, :]) * patient.ct.spacing[::-1]).max(axis=2).min(axis=1)
    assert spread_mm.max() <= 20.0, "voxels far from the edited nodule changed"


# ---------------------------------------------------------------------------------------------- NodMAISI
def test_size_and_spacing_fields():
    assert parse_size("") is None and parse_size("512, 512,256") == (512, 512, 256)
    assert parse_spacing(" ") is None and parse_spacing("0.7,0.7,1.25") == (0.7, 0.7, 1.25)
    for bad in ("512,512", "512,512,0", "1.5,2,3"):
        with pytest.raises(InputError):
            parse_size(bad)
    with pytest.raises(InputError):
        parse_spacing("1,-1,1")


def test_synthesize_routes_roi_edits_and_twins(patient):
    engine = get_engine("classic")
    edited = resize(patient.labelmap, 1, [50.0])[-1].labelmap
    ct = synthesize(engine, edited, SynthesisOptions(roi_only=True), patient.ct, patient.labelmap)
    assert ct.shape_kji == patient.ct.shape_kji and np.any(ct.array != patient.ct.array)
    with pytest.raises(InputError, match="original CT"):
        synthesize(engine, edited, SynthesisOptions(roi_only=True))
    with pytest.raises(UnsupportedOperation):
        synthesize(engine, edited, SynthesisOptions())


# ----------------------------------------------------------------------------------------- HRLDMInpaint
def test_lung_input_kind(patient):
    labelmap, mask = split_lung_input(patient.labelmap)
    assert labelmap is patient.labelmap and mask is None
    labelmap, mask = split_lung_input(patient.lung_mask())
    assert labelmap is None and mask is not None
    assert split_lung_input(None) == (None, None)


def test_sampled_location_mask_histogram_and_model_free_inpaint(patient):
    centre = sample_location(patient.ct, patient.labelmap, 10.0, "inner", seed=3)
    mask = nodule_mask(patient.ct, centre, ShapeOptions(diameter_mm=10.0, lobulation=0.3, seed=3))
    inside = mask.array > 0
    assert inside.any() and np.all(patient.lung_mask().array[inside] > 0), "the nodule leaves the lung"
    extent_mm = (np.ptp(np.argwhere(inside), axis=0) + 1) * patient.ct.spacing[::-1]
    assert 5.0 <= extent_mm.max() <= 12.5
    histogram = target_histogram("preset", "solid", shift_hu=50.0)
    assert histogram.shape == (40,) and histogram.sum() == pytest.approx(1.0)
    assert histogram_mean_hu(histogram) == pytest.approx(histogram_mean_hu(target_histogram("preset", "solid")) + 50.0,
                                                         abs=20.0)
    ct = inpaint(get_engine("classic"), patient.ct, mask, "solid", histogram, patient.labelmap, seed=3)
    assert ct.array[inside].mean() > patient.ct.array[inside].mean() + 300.0
    changed = np.argwhere(ct.array != patient.ct.array)
    box_lo, box_hi = np.argwhere(inside).min(axis=0), np.argwhere(inside).max(axis=0)
    outside_mm = np.maximum(np.maximum(box_lo - changed, changed - box_hi), 0) * patient.ct.spacing[::-1]
    assert outside_mm.max() <= 10.0, "voxels far from the inserted nodule changed"


def test_shape_and_histogram_sources_need_their_inputs(patient):
    centre = patient.nodules[0].center_lps
    with pytest.raises(InputError, match="library"):
        nodule_mask(patient.ct, centre, ShapeOptions(source="library"))
    with pytest.raises(InputError, match="segmentation"):
        nodule_mask(patient.ct, centre, ShapeOptions(source="segment"))
    with pytest.raises(InputError, match="unknown shape source"):
        nodule_mask(patient.ct, centre, ShapeOptions(source="blob"))
    with pytest.raises(InputError, match="needs the CT"):
        target_histogram("segment", "solid")
    from_nodule = target_histogram("segment", "solid", ct=patient.ct, segment_mask=patient.nodules[0].mask)
    shaped = nodule_mask(patient.ct, centre, ShapeOptions(source="segment", diameter_mm=8.0),
                         segment_mask=patient.nodules[0].mask)
    assert from_nodule.sum() == pytest.approx(1.0) and shaped.array.any()
    assert isinstance(shaped, Volume)
