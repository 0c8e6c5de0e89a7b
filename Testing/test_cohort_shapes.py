"""The shipped real-shape library (Resources/lidc_shapes.npz): rebuilt from the LIDC masks it equals the shipped one,
carries the CC BY 3.0 attribution and each nodule's subtype, malignancy and patient; cohort plans draw from it by
default (a nodule inherits the shape's malignancy as label and its patient as donor), procedural shapes when asked."""
from __future__ import annotations

import csv
import json

import numpy as np

from cohort_cases import write_sources, write_spec
from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.cohort.lidc_shapes import build_lidc_shapes, lidc_shapes_path
from nodsynth.shapes import ShapeLibrary


def test_the_shipped_library_is_the_lidc_masks_normalised_with_attribution_and_labels():
    vois = shared_path("lidc_vois")
    shipped = ShapeLibrary.load(lidc_shapes_path())
    rebuilt = build_lidc_shapes(vois)
    assert np.array_equal(shipped.shapes, rebuilt.shapes) and shipped.entries == rebuilt.entries
    index = json.loads(lidc_shapes_path().with_suffix(".json").read_text())
    assert "CC BY 3.0" in index["licence"] and "no image data" in index["licence"]
    with open(vois / "nodules.csv", newline="") as handle:
        table = {r["file"]: r for r in csv.DictReader(handle)}
    for entry in shipped.entries:
        row = table[entry["source"]]
        assert (entry["malignancy"], entry["patient_id"]) == (int(row["Malignancy_value"]), row["patient_id"])
    assert lidc_shapes_path().stat().st_size < 1_000_000


def test_plans_draw_real_shapes_of_the_subtype_and_inherit_label_and_donor(tmp_path):
    sources = write_sources(tmp_path, seeds=(0,))
    counts = {"solid": {"6-10": 2}, "ground-glass": {"8-12": 2}}
    assert main(["cohort", "plan", str(write_spec(sources, counts=counts)), "--out", str(tmp_path / "real")]) == 0
    library = ShapeLibrary.load(lidc_shapes_path())
    with open(tmp_path / "real" / "cohort.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        kind, index = row["shape_source"].split(":")
        entry = library.entries[int(index)]
        assert kind == "library" and entry["subtype"] == row["subtype"]
        assert (row["label"], row["donor_patient_id"]) == (str(entry["malignancy"]), entry["patient_id"])
    spec = write_spec(sources, counts=counts, shapes="procedural")
    assert main(["cohort", "plan", str(spec), "--out", str(tmp_path / "procedural")]) == 0
    with open(tmp_path / "procedural" / "cohort.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["shape_source"].startswith("procedural:") and r["label"] == r["donor_patient_id"] == "" for r in rows)
