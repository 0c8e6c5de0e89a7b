"""``nodsynth review compare``: per-nodule fidelity (JSD, re-segmented Dice, reproduced), lobe and body
HU statistics, ROI-edit numbers; on the demo patient and on real LIDC-IDRI nodules."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.augment import resize_nodule
from nodsynth.cli.main import main
from nodsynth.engines.base import EditRequest, InpaintRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.histogram import hu_histogram, jensen_shannon
from nodsynth.labels import LOBE_IDS, NODULE
from nodsynth.phantom import make_demo_patient
from nodsynth.presets import nodule_histogram, subtype_from_texture
from nodsynth.review.compare import compare_case, difference_volume
from nodsynth.review.edit_fidelity import COMPARE_RANGE_HU, edit_fidelity
from nodsynth.review.fidelity import MIN_CONTRAST_HU
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume


@pytest.fixture(scope="module")
def patient():
    return make_demo_patient(0)


@pytest.fixture(scope="module")
def twin(patient):
    """The demo CT with every nodule re-rendered model-free from its own histogram (a faithful twin)."""
    ct = patient.ct
    for number, nodule in enumerate(patient.nodules):
        ct = ClassicEngine().inpaint(InpaintRequest(ct, nodule.mask, nodule.subtype,
                                                    nodule_histogram(patient.ct, nodule.mask),
                                                    lung_mask=patient.lung_mask(), seed=10 + number)).ct
    return ct


@pytest.fixture(scope="module")
def missing_one(patient):
    """A synthetic CT that lost the solid nodule (MAISI-v2's failure): the nodule refilled with lung."""
    solid = next(n for n in patient.nodules if n.kind == "solid")
    labels = patient.labelmap.array.copy()
    labels[solid.mask.array > 0] = solid.lobe
    edited = patient.labelmap.with_array(labels)
    return ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, edited, seed=0)).ct, solid


def _by_centre(case, nodule):
    """The compared nodule whose conditioning mask is this phantom nodule's."""
    return next(n for n in case.nodules if np.array_equal(n.mask.array > 0, nodule.mask.array > 0))


def test_a_faithful_twin_reproduces_every_nodule(patient, twin):
    case = compare_case(patient.ct, twin, patient.labelmap)
    assert len(case.nodules) == len(patient.nodules)
    for nodule in patient.nodules:
        found = _by_centre(case, nodule)
        inside = nodule.mask.array > 0
        assert found.jsd == pytest.approx(jensen_shannon(hu_histogram(patient.ct.array[inside]),
                                                         hu_histogram(twin.array[inside])), abs=1e-12)
        assert found.jsd < 0.01 and found.reproduced and found.dice > 0.85, nodule.kind
        assert found.contrast_hu > 200
        assert found.mean_hu_real == pytest.approx(float(patient.ct.array[inside].mean()))
        assert found.volume_ratio == pytest.approx(found.resegmented_voxels / inside.sum())
    lobes = {r["label"]: r for r in case.regions}
    assert set(lobes) == set(LOBE_IDS) | {200}
    for label in LOBE_IDS:  # the lungs outside the nodules' 1 mm edge are untouched
        assert abs(lobes[label]["mean_difference_hu"]) < 1.0 and lobes[label]["jsd"] < 1e-3
        assert lobes[label]["voxels"] == int((patient.labelmap.array == label).sum())


def test_a_lost_nodule_is_not_reproduced_and_the_others_are(patient, missing_one):
    synthetic, solid = missing_one
    case = compare_case(patient.ct, synthetic, patient.labelmap)
    lost = _by_centre(case, solid)
    # the click segmenter still outlines a noise blob of about the nodule's size; it is not denser than the lung
    assert not lost.reproduced and lost.contrast_hu < MIN_CONTRAST_HU and "not a nodule" in lost.note
    assert lost.jsd > 0.3  # lung parenchyma where the nodule was
    assert lost.mean_hu_synthetic < -600
    others = [n for n in case.nodules if n is not lost]
    assert len(others) == len(patient.nodules) - 1 and all(n.reproduced for n in others)


def test_an_inserted_nodule_has_no_jsd_and_says_why(patient, tmp_path):
    """The real CT has lung where a nodule was inserted: real-vs-synthetic JSD is not defined (was always ln 2)."""
    solid = next(n for n in patient.nodules if n.kind == "solid")
    moved = solid.mask.with_array(np.roll(solid.mask.array, 12, axis=2))  # 15 mm away, in the lung
    inserted = ClassicEngine().inpaint(InpaintRequest(patient.ct, moved, "solid", nodule_histogram(patient.ct, solid.mask),
                                                      lung_mask=patient.lung_mask(), seed=0)).ct
    case = compare_case(patient.ct, inserted, patient.labelmap, mask=moved, changed=moved)
    (nodule,) = case.nodules
    assert nodule.jsd is None and "JSD n/a" in nodule.note and nodule.reproduced
    for name, volume in (("real", patient.ct), ("synthetic", inserted), ("labels", patient.labelmap),
                         ("mask", moved)):
        write_volume(volume, tmp_path / f"{name}.nii.gz")
    out = tmp_path / "review"
    assert main(["review", "compare", *[f"--{k}={tmp_path / v}" for k, v in (
        ("real", "real.nii.gz"), ("synthetic", "synthetic.nii.gz"), ("labelmap", "labels.nii.gz"),
        ("mask", "mask.nii.gz"), ("changed", "mask.nii.gz"))], "--out", str(out), "--no-images"]) == 0
    row = next(csv.DictReader(open(out / "nodules.csv", newline="")))
    assert row["jsd"] == "" and "JSD n/a" in row["note"]
    page = (out / "report.html").read_text()
    assert 'data-sort="n/a">n/a</td>' in page
    x = float(row["x_lps_mm"])
    assert f">{x:.1f}</td>" in page and f">{x:.4f}</td>" not in page  # mm to 0.1 in the page


def test_triplet_panels_are_240_px_with_their_window_and_a_10_mm_scale_bar(patient, twin):
    from nodsynth.overlay import TEXT_RGB
    from nodsynth.review.triplets import PANEL_PX, SCALE_BAR_MM, nodule_triplet, panel_scale

    case = compare_case(patient.ct, twin, patient.labelmap)
    image = np.asarray(nodule_triplet(patient.ct, twin, case.nodules[0]))
    assert image.shape[1] >= 3 * PANEL_PX
    bar_px = int(round(SCALE_BAR_MM * panel_scale(patient.ct) / min(patient.ct.spacing)))
    white = np.all(image[:, :PANEL_PX] == TEXT_RGB, axis=2)  # the first panel

    def longest_run(row):
        edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
        return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0))

    assert bar_px in {longest_run(row) for row in white}, f"no {bar_px} px ({SCALE_BAR_MM:g} mm) bar"


def test_roi_edit_numbers(patient):
    solid = next(n for n in patient.nodules if n.kind == "solid")
    resized = resize_nodule(patient.labelmap, solid.center_lps, 50.0).labelmap
    edited_ct = ClassicEngine().edit(EditRequest(patient.ct, patient.labelmap, resized, seed=0)).ct
    case = compare_case(patient.ct, edited_ct, patient.labelmap, edited_labelmap=resized)
    edit = case.edit
    assert edit["bit_identical_fraction_outside"] == 1.0  # the model-free edit keeps everything beyond 3 mm
    assert edit["changed_voxels"] == int((patient.labelmap.array != resized.array).sum())
    box = tuple(slice(a, b) for a, b in zip(edit["box_start_kji"], edit["box_stop_kji"]))
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    low, high = COMPARE_RANGE_HU
    real_box = np.clip(patient.ct.array[box], low, high).astype(float)
    edit_box = np.clip(edited_ct.array[box], low, high).astype(float)
    assert edit["psnr_db_box"] == pytest.approx(peak_signal_noise_ratio(real_box, edit_box, data_range=high - low))
    assert edit["ssim_box"] == pytest.approx(structural_similarity(real_box, edit_box, data_range=high - low))
    assert 0.0 < edit["ssim_box"] < 1.0
    # the shrunken nodule is the conditioning one, compared with the original nodule's HU
    (shrunk,) = [n for n in case.nodules if (n.mask.array > 0)[solid.mask.array > 0].any()]
    original = solid.mask.array > 0
    assert shrunk.voxels == int(((resized.array == NODULE) & original).sum()) < int(original.sum())
    assert shrunk.mean_hu_real == pytest.approx(float(patient.ct.array[original].mean()))
    assert shrunk.reproduced and len(case.nodules) == len(patient.nodules)
    # one changed voxel far from the edit shows up exactly in the bit-identical fraction
    spoiled = edited_ct.array.copy()
    spoiled[2, 2, 2] += 1
    worse = edit_fidelity(patient.ct, patient.ct.with_array(spoiled), patient.labelmap.array != resized.array)
    assert worse["outside_voxels"] == edit["outside_voxels"]
    assert worse["bit_identical_fraction_outside"] == pytest.approx(1.0 - 1.0 / worse["outside_voxels"])


def test_difference_volume(patient, twin):
    diff = difference_volume(patient.ct, twin)
    assert diff.array.dtype == np.int16
    assert np.array_equal(diff.array, twin.array.astype(np.int32) - patient.ct.array)


def test_real_lidc_nodules_reinserted_from_their_own_histogram_are_reproduced():
    vois = shared_path("lidc_vois")
    with open(vois / "nodules.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if 8.0 <= float(r["diameter_mm"]) <= 25.0][:40:5]
    results = []
    for number, row in enumerate(rows):
        ct = read_volume(vois / "image" / row["file"])
        mask = read_volume(vois / "nodule_mask" / row["file"])
        subtype = subtype_from_texture(row["Texture_value"])
        synthetic = ClassicEngine().inpaint(InpaintRequest(ct, mask, subtype, nodule_histogram(ct, mask),
                                                           seed=number)).ct
        case = compare_case(ct, synthetic, mask=mask)
        results.append(case.nodules[0])
    assert len(results) == 8
    assert all(r.jsd < 0.02 for r in results)
    assert sum(r.reproduced for r in results) >= 7, [round(r.dice, 2) for r in results]


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def files(tmp_path_factory, patient, twin, missing_one):
    folder = tmp_path_factory.mktemp("pairs")
    write_volume(patient.ct, folder / "real.nii.gz")
    write_volume(patient.labelmap, folder / "labels.nii.gz")
    write_volume(twin, folder / "twin.nii.gz")
    write_volume(missing_one[0], folder / "lost.nii.gz")
    (folder / "pairs.csv").write_text("case_id,real,synthetic,labelmap\n"
                                      "twin,real.nii.gz,twin.nii.gz,labels.nii.gz\n"
                                      "lost one,real.nii.gz,lost.nii.gz,labels.nii.gz\n")
    return folder


def test_manifest_form_writes_tables_json_and_report_with_an_image_per_nodule(files, tmp_path):
    out = tmp_path / "review"
    assert main(["review", "compare", "--manifest", str(files / "pairs.csv"), "--out", str(out)]) == 0
    with open(out / "nodules.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case_id"] for r in rows].count("twin") == 5 and [r["case_id"] for r in rows].count("lost one") == 5
    assert sum(r["reproduced"] == "False" for r in rows) == 1
    review = json.loads((out / "review.json").read_text())
    assert [c["case_id"] for c in review["cases"]] == ["twin", "lost one"]
    page = (out / "report.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 10 and all((out / src).is_file() for src in images)
    assert 'class="sortable"' in page and "<script>" in page and "src=\"http" not in page


def test_single_pair_form(files, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["review", "compare", "--real", str(files / "real.nii.gz"), "--synthetic", str(files / "lost.nii.gz"),
                 "--labelmap", str(files / "labels.nii.gz"), "--out", str(out), "--no-images"]) == 0
    assert "NOT reproduced" in capsys.readouterr().out
    assert not (out / "images").exists()
    with open(out / "regions.csv", newline="") as handle:
        assert {r["region"] for r in csv.DictReader(handle)} >= {"body", "left lung upper lobe"}


def test_bad_inputs_write_nothing(files, tmp_path, capsys):
    other = Volume(np.zeros((8, 8, 8), np.int16) - 1000)
    write_volume(other, tmp_path / "small.nii.gz")
    cases = [
        (["--real", str(files / "real.nii.gz"), "--synthetic", str(tmp_path / "small.nii.gz"),
          "--labelmap", str(files / "labels.nii.gz")], "not on the same voxel grid"),
        (["--real", str(files / "real.nii.gz"), "--synthetic", str(tmp_path / "nope.nii.gz")], "not found"),
        (["--real", str(files / "real.nii.gz"), "--synthetic", str(files / "twin.nii.gz")], "nothing says where"),
        (["--manifest", str(files / "pairs.csv"), "--real", str(files / "real.nii.gz")], "drop --real"),
    ]
    for number, (arguments, message) in enumerate(cases):
        out = tmp_path / f"out{number}"
        assert main(["review", "compare", *arguments, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.nii.gz"]  # no staging folder left behind
