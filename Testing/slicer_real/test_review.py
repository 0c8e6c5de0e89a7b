"""NodMAISI > Review in Slicer's real code, on the demo's review step (the demo patient's nodules and
model-free inserted ones): a reader answers a blinded study with the keyboard (every answer on disk at
once, the time per case measured, cropped before full, resumed after the module is closed, the key
never there to be read); the Compare view shows the demo patient beside its inserted copy (table,
contours on both views, difference volume, next / previous nodule); a finished evaluation report
shows as a table and a file that is none is refused."""
from __future__ import annotations

import csv
import json
import shutil
import time

import numpy as np
import pytest

import modules as harness_modules
import qt
import slicer
import standin_ctk
from nodsynth.errors import InputError
from nodsynth.review.answers import ANSWER_COLUMNS
from nodsynth.review.compare import NODULE_COLUMNS
from nodsynth.review.reading import study_cases
from nodsynth.volume import lps_to_ras
from nodsynth.io.volume_files import read_volume
from standin_qt import EVENT_LOOP

READER = "dr_keys"
LUNG_WINDOW = (1500.0, -600.0)  # nodsynth.overlay.DEFAULT_WINDOW_HU = (-1350, 150) as window / level


@pytest.fixture(scope="module")
def demo_review(tmp_path_factory):
    from nodsynth.cli.main import main

    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--steps", "review"]) == 0
    return out


@pytest.fixture()
def study(demo_review, tmp_path):
    """The demo study without its key and answers: whatever works here never read the key."""
    copy = tmp_path / "study"
    shutil.copytree(demo_review / "review" / "study", copy, ignore=shutil.ignore_patterns("key.csv", "answers"))
    return copy


@pytest.fixture()
def widget():
    created = harness_modules.create_widget("NodMAISI")
    yield created
    harness_modules.unload(created)


def shortcut(widget, key: str):
    [found] = [s for s in widget.reviewPanel.shortcuts if s.key.toString() == key]
    return found


def slice_centre_ras(view: str) -> np.ndarray:
    matrix = slicer.app.layoutManager().sliceWidget(view).mrmlSliceNode().GetSliceToRAS()
    return np.array([matrix.GetElement(row, 3) for row in range(3)])


def shown_volume(view: str = "Red"):
    composite = slicer.app.layoutManager().sliceWidget(view).mrmlSliceCompositeNode()
    return slicer.mrmlScene.GetNodeByID(composite.GetBackgroundVolumeID())


def sheet_rows(study):
    with open(study / "answers" / f"{READER}.csv", newline="") as handle:
        return list(csv.reader(handle))


def open_study(widget, study):
    p = widget._parameterNode
    p.studyFolder, p.readerName = study, READER
    widget.ui.openStudyButton.click()


def check_case_shown(widget, case):
    node = shown_volume()
    assert node is widget.reviewPanel.caseNode and node.GetScene() is slicer.mrmlScene
    assert np.array_equal(slicer.util.arrayFromVolume(node), read_volume(case.volume).array)
    display = node.GetDisplayNode()
    assert display.GetAutoWindowLevel() == 0 and (display.GetWindow(), display.GetLevel()) == LUNG_WINDOW
    assert slicer.app.layoutManager().layout == slicer.vtkMRMLLayoutNode.SlicerLayoutOneUpRedSliceView
    assert np.allclose(slice_centre_ras("Red"), lps_to_ras(case.point_lps_mm))


def test_a_reader_answers_with_the_keys_resumes_after_closing_and_the_key_is_never_there(study):
    assert not (study / "key.csv").exists()
    cases = study_cases(study)
    assert [c.phase for c in cases] == ["cropped"] * 10 + ["full"] * 10
    widget = harness_modules.create_widget("NodMAISI")
    try:
        ui = widget.ui
        assert not ui.realButton.enabled and not shortcut(widget, "R").enabled  # no study open yet
        open_study(widget, study)
        assert ui.readingStatusLabel.text == "Case 1 of 20 (cropped)"
        check_case_shown(widget, cases[0])
        first_node = widget.reviewPanel.caseNode
        time.sleep(0.3)  # the reader looks at the case
        shortcut(widget, "4").press()
        assert ui.confidenceSpinBox.value == 4
        shortcut(widget, "R").press()
        rows = sheet_rows(study)
        assert rows[0] == list(ANSWER_COLUMNS) and rows[1][:5] == [READER, "cropped", cases[0].case_id, "real", "4"]
        assert 0.3 <= float(rows[1][5]) < 30.0, rows[1]
        assert ui.confidenceSpinBox.value == 0  # reset to none for the next case
        assert first_node.GetScene() is None and widget.reviewPanel.caseNode is not first_node
        assert len(slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")) == 1
        assert len(slicer.util.getNodesByClass("vtkMRMLScalarVolumeDisplayNode")) == 1
        check_case_shown(widget, cases[1])
        shortcut(widget, "S").press()  # no confidence given
        assert sheet_rows(study)[2][:5] == [READER, "cropped", cases[1].case_id, "synthetic", ""]
        for number in range(2, 12):  # into the full-context phase
            shortcut(widget, str(1 + number % 5)).press()
            (ui.syntheticButton if number % 2 else ui.realButton).click()
        assert ui.readingStatusLabel.text == "Case 13 of 20 (full)"
        check_case_shown(widget, cases[12])
        assert len(sheet_rows(study)) == 13  # every answer is on disk at once
        keys = list(widget.reviewPanel.shortcuts)
    finally:
        harness_modules.unload(widget)  # e.g. Slicer closed mid-study
    assert len(keys) == 7 and all(not k.enabled and k.parent() is None for k in keys)

    slicer.mrmlScene.Clear(0)
    again = harness_modules.create_widget("NodMAISI")
    try:
        open_study(again, study)
        assert again.ui.readingStatusLabel.text == "Case 13 of 20 (full)"
        check_case_shown(again, cases[12])
        harness_modules.exit(again)  # another module: the reading keys are silent there
        assert not shortcut(again, "R").enabled
        harness_modules.enter(again)
        while again.reviewPanel.reading:
            shortcut(again, "R").press()
        assert again.ui.readingStatusLabel.text.startswith("All 20 cases answered")
        assert not again.ui.realButton.enabled and not shortcut(again, "S").enabled
        assert slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") == []
    finally:
        harness_modules.unload(again)
    rows = sheet_rows(study)[1:]
    assert [(r[1], r[2]) for r in rows] == [(c.phase, c.case_id) for c in cases]  # cropped first, each once
    assert [r[4] for r in rows[:12]] == ["4", ""] + [str(1 + n % 5) for n in range(2, 12)]
    assert not (study / "key.csv").exists()


def test_a_study_of_dicom_series_shows_its_cases(study, widget):
    pytest.importorskip("pydicom", reason="pydicom is not installed (pip install 'nodsynth[dicom]')")
    from nodsynth.review.blinded import write_case_dicom

    summary = json.loads((study / "study.json").read_text())
    for phase, entries in summary["cases"].items():  # the study as turing build --format dicom writes it
        for entry in entries:
            nifti = study / entry["volume"]
            write_case_dicom(read_volume(nifti), study / phase / entry["case_id"], entry["case_id"])
            nifti.unlink()
            entry["volume"] = f"{phase}/{entry['case_id']}"
    (study / "study.json").write_text(json.dumps(summary))
    cases = study_cases(study)
    open_study(widget, study)
    check_case_shown(widget, cases[0])
    shortcut(widget, "R").press()
    check_case_shown(widget, cases[1])


def test_a_study_folder_without_study_json_is_refused_with_a_message(tmp_path, widget):
    standin_ctk.reset_dialogs([qt.QMessageBox.Ok])
    with pytest.raises(InputError, match="is not a reading study"):
        open_study(widget, tmp_path)
    [dialog] = standin_ctk.ctkMessageBox.SHOWN
    assert "Could not open the reading study." in dialog["text"] and "study.json" in dialog["text"]
    assert not widget.reviewPanel.reading and not (tmp_path / "answers").exists()


def load(path, label: bool = False):
    return slicer.util.loadVolume(str(path), {"labelmap": label} if label else {})


def test_compare_view_of_the_demo_patient_and_its_inserted_copy(demo_review, widget):
    from scipy import ndimage

    review = demo_review / "review"
    p = widget._parameterNode
    p.reviewReal = load(demo_review / "phantom" / "ct.nii.gz")
    p.reviewSynthetic = load(review / "synthetic" / "ct.nii.gz")
    p.reviewLabelmap = load(demo_review / "phantom" / "labelmap.nii.gz", label=True)
    p.reviewMask = load(review / "synthetic" / "inserted_all.nii.gz", label=True)
    p.showDifference = True
    sh = slicer.mrmlScene.GetSubjectHierarchyNode()  # the real CT in a study, as when loaded from DICOM
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "patient"), "study")
    sh.SetItemParent(sh.GetItemByDataNode(p.reviewReal), study)
    ui = widget.ui
    assert ui.compareButton.enabled and not ui.nextNoduleButton.enabled
    ui.compareButton.click()
    assert ui.compareButton.text == "Cancel"
    assert EVENT_LOOP.run_until(lambda: not widget.runner.running, 180.0), "the comparison did not finish"
    assert not standin_ctk.ctkMessageBox.SHOWN, standin_ctk.ctkMessageBox.SHOWN

    # the table: one row per inserted nodule, as the mask's connected components say
    inserted = read_volume(review / "synthetic" / "inserted_all.nii.gz")
    components, count = ndimage.label(inserted.array > 0)
    table = ui.reviewTableView.mrmlTableNode()
    assert table.GetName() == "Review nodules" and table.GetNumberOfRows() == count == 5
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(NODULE_COLUMNS)
    voxels = slicer.util.arrayFromTableColumn(table, "voxels")
    assert sorted(voxels) == sorted(np.bincount(components.ravel())[1:])
    centres = np.stack([slicer.util.arrayFromTableColumn(table, f"{a}_lps_mm") for a in "xyz"], axis=1)
    centroids = inserted.index_to_world(np.array(ndimage.center_of_mass(inserted.array > 0, components,
                                                                        range(1, count + 1)))[:, ::-1])
    spacing = np.linalg.norm(inserted.spacing)
    assert all(np.min(np.linalg.norm(centroids - c, axis=1)) <= spacing for c in centres)
    assert [table.GetCellText(r, NODULE_COLUMNS.index("reproduced")) for r in range(count)] == ["True"] * count
    with open(review / "compare" / "nodules.csv", newline="") as handle:  # the command line's numbers
        assert np.allclose(slicer.util.arrayFromTableColumn(table, "dice"),
                           [float(r["dice"]) for r in csv.DictReader(handle)])
    assert table.GetColumnUnitLabel("volume_mm3") == "mm3"
    assert ui.compareSummaryLabel.text == "5 of 5 nodules reproduced"

    # real and synthetic side by side (the difference in a third view), the contour on both
    assert (shown_volume("Red"), shown_volume("Yellow")) == (p.reviewReal, p.reviewSynthetic)
    difference = shown_volume("Green")
    real_hu, synthetic_hu = (slicer.util.arrayFromVolume(n).astype(np.int32) for n in (p.reviewReal, p.reviewSynthetic))
    assert np.array_equal(slicer.util.arrayFromVolume(difference), synthetic_hu - real_hu)
    assert difference.GetDisplayNode().GetWindow() == 800.0 and difference.GetDisplayNode().GetLevel() == 0.0
    contours = [n for n in slicer.util.getNodesByClass("vtkMRMLSegmentationNode") if n.GetName() == "Review contours"]
    assert len(contours) == 1
    drawn = slicer.util.arrayFromSegmentBinaryLabelmap(contours[0], "Conditioning", p.reviewReal) > 0
    assert np.array_equal(drawn, slicer.util.arrayFromVolume(p.reviewMask) > 0)
    assert (slicer.util.arrayFromSegmentBinaryLabelmap(contours[0], "Resegmented", p.reviewReal) > 0).any()
    display = contours[0].GetDisplayNode()
    assert display.GetVisibility() == 1 and display.GetVisibility2DFill() == 0  # outlines, in every view
    assert [sh.GetItemParent(sh.GetItemByDataNode(n)) for n in (table, contours[0], difference)] == [study] * 3
    assert difference.GetAttribute("NodMAISI.Synthetic") == "1" and table.GetAttribute("NodMAISI.Synthetic") is None

    # next / previous nodule centre every view on the table's centre (RAS)
    def centred_on(row):
        return all(np.allclose(slice_centre_ras(v), lps_to_ras(centres[row])) for v in ("Red", "Yellow", "Green"))

    assert centred_on(0) and ui.noduleLabel.text == "Nodule 1 of 5" and not ui.previousNoduleButton.enabled
    for row in range(1, count):
        ui.nextNoduleButton.click()
        assert centred_on(row) and ui.noduleLabel.text == f"Nodule {row + 1} of 5"
    assert not ui.nextNoduleButton.enabled
    ui.previousNoduleButton.click()
    assert centred_on(count - 2)


def test_a_finished_evaluation_report_shows_as_a_table_and_other_json_is_refused(tmp_path, study, widget):
    from nodsynth.cli.main import main

    (tmp_path / "ann.csv").write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n"
                                      "s1,10,10,10,8\ns1,50,50,50,12\ns2,0,0,0,25\n")
    (tmp_path / "det.csv").write_text("seriesuid,coordX,coordY,coordZ,probability\n"
                                      "s1,11,10,10,0.9\ns1,80,80,80,0.8\ns2,1,1,1,0.7\ns2,30,30,30,0.95\n")
    froc = tmp_path / "froc.json"
    assert main(["evaluate", "froc", "--annotations", str(tmp_path / "ann.csv"), "--detections",
                 str(tmp_path / "det.csv"), "--json", str(froc), "--bootstrap", "20"]) == 0
    report = json.loads(froc.read_text())
    p, ui = widget._parameterNode, widget.ui
    p.reportFile = froc
    ui.showReportButton.click()
    assert ui.reportKindLabel.text.startswith("FROC")
    table = ui.reportTableView.mrmlTableNode()
    cells = {table.GetCellText(r, 1): table.GetCellText(r, 2) for r in range(table.GetNumberOfRows())}
    assert [table.GetColumnName(c) for c in range(3)] == ["section", "metric", "value"]
    assert cells["CPM"].startswith(f"{report['cpm']:.6g} (")
    assert [cells[f"sensitivity at {rate} FP/scan"].split()[0] for rate in ("1/8", "1/4", "1/2", "1", "2", "4", "8")] \
        == [f"{s:.6g}" for s in report["sensitivities"]]
    assert set(report["strata"]) == {m[len("CPM, nodules "):] for m in cells if m.startswith("CPM, nodules")}
    assert table.GetNumberOfRows() == 7 + 1 + 3  # the curve is summarised by its sensitivities, not listed

    fid = tmp_path / "fid.json"
    fid.write_text(json.dumps({"fid_xy": 12.5, "fid_yz": 20.25, "fid_zx": 17.0, "fid_avg": 16.583333, "n_real": 4,
                               "n_synthetic": 5, "n_slices_real": {"xy": 40, "yz": 64, "zx": 64},
                               "n_slices_synthetic": {"xy": 50, "yz": 80, "zx": 80}}))
    p.reportFile = fid
    ui.showReportButton.click()
    cells = {table.GetCellText(r, 1): table.GetCellText(r, 2) for r in range(table.GetNumberOfRows())}
    assert ui.reportKindLabel.text.startswith("2.5D FID") and ui.reportTableView.mrmlTableNode() is table
    assert cells["FID average"] == "16.5833" and cells["synthetic slices (xy / yz / zx)"] == "50 / 80 / 80"

    for other, reason in ((study / "study.json", "not a nodsynth evaluation report"),
                          (tmp_path / "ann.csv", "is not valid JSON")):
        standin_ctk.reset_dialogs([qt.QMessageBox.Ok])
        p.reportFile = other
        with pytest.raises(InputError, match=reason):
            ui.showReportButton.click()
        [dialog] = standin_ctk.ctkMessageBox.SHOWN
        assert "Could not show the evaluation report." in dialog["text"] and reason in dialog["text"]
        assert ui.reportKindLabel.text.startswith("2.5D FID") and table.GetNumberOfRows() == 8  # unchanged


def test_the_module_self_test_runs_in_slicers_code():
    """What 'Reload and Test' runs in Slicer: the ROI edit and the review of the demo study."""
    import NodMAISI

    harness_modules.load_module("NodMAISI")
    NodMAISI.NodMAISITest().runTest()
