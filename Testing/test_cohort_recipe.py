"""The NodMAISI recipe: Algorithm 1 (``augment --method paper``) stops after N = 50 erosion steps, as the paper
states, and ``cohort recipe nodmaisi`` plans every source label map's nodules shrunk that way, then a twin each."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from nodsynth.augment import resize_nodule
from nodsynth.labels import NODULE
from nodsynth.volume import Volume

RADIUS = 66


def test_the_paper_method_stops_after_50_erosion_steps():
    size = 2 * RADIUS + 5
    axis = np.arange(size) - size // 2
    ball = (axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2) <= RADIUS ** 2
    labels = np.where(ball, NODULE, 28).astype(np.uint8)
    result = resize_nodule(Volume(labels, np.ones(3), np.zeros(3)), "all", 1.0, method="paper")
    six = ndimage.generate_binary_structure(3, 1)
    after_50 = int(ndimage.binary_erosion(ball, six, iterations=50).sum())
    assert int(ball.sum()) * 0.01 < after_50  # reaching 1 % would take more than 50 steps
    assert result.nodules[0].voxels_after == after_50


def test_the_recipe_plans_a_paper_shrink_of_every_map_then_a_twin_of_each(tmp_path, monkeypatch):
    from cohort_cases import write_sources
    from nodsynth.batch import run_manifest
    from nodsynth.cli.main import main
    from nodsynth.io.volume_files import read_volume

    sources = write_sources(tmp_path, seeds=(0, 1))
    maps = sorted((sources / "maps").iterdir())
    qc = tmp_path / "stats.json"
    qc.write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", *[str(m.relative_to(tmp_path)) for m in maps], "--percent", "50",
                 "--qc-stats", "stats.json", "--max-tries", "3", "--out", "recipe"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "recipe" / "manifest.jsonl").read_text().splitlines()]
    augments, twins = rows[:2], rows[2:]
    assert [r["op"] for r in rows] == ["augment", "augment", "twin", "twin"]
    assert all(r["params"] == {"percent": 50, "method": "paper"} for r in augments)
    assert all(t["params"] == {"engine": "nodmaisi", "max_tries": 3} and t["inputs"]["qc_stats"] == "../stats.json"
               and t["inputs"]["labelmap"] == a["outputs"]["labelmap"] for a, t in zip(augments, twins))
    subset = tmp_path / "recipe" / "augments.jsonl"
    subset.write_text("".join(json.dumps(r) + "\n" for r in augments))
    assert run_manifest(subset, executor="inline").ok
    for source, row in zip(maps, augments):
        before = int((read_volume(source).array == NODULE).sum())
        after = int((read_volume(tmp_path / "recipe" / row["outputs"]["labelmap"]).array == NODULE).sum())
        assert 0 < after < before


DLCS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dlcs_labelmaps"


def real_nodules(path: Path) -> list[np.ndarray]:
    """Each label-23 component's voxels as LPS points (mm), in scipy's raster order: an independent reading."""
    from nodsynth.io.volume_files import read_volume

    volume = read_volume(path)
    labels, count = ndimage.label(np.rint(volume.array) == NODULE, ndimage.generate_binary_structure(3, 1))
    return [volume.index_to_world(np.argwhere(labels == n)[:, ::-1].astype(float)) for n in range(1, count + 1)]


def write_table(path: Path, rows: list[list]) -> Path:
    lines = ["labelmap,patient_id,coordX,coordY,coordZ,label"] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_recipe_nodules_inherit_label_and_donor_of_the_real_dlcs_nodule_they_were_shrunk_from(tmp_path, monkeypatch):
    if not DLCS.is_dir():
        pytest.skip(f"the real DLCS label maps are absent ({DLCS}); see ../shared/data/DATA.md")
    from cohort_cases import run_cases
    from nodsynth.cli.main import main
    from nodsynth.cohort.table import read_cohort
    from nodsynth.io.volume_files import read_volume

    maps = sorted(DLCS.glob("DLCS_*.nii.gz"))
    first, second = (real_nodules(m) for m in maps)
    outside = first[1][np.argmin(first[1][:, 0])] - [3.0, 0.0, 0.0]  # 3 mm beyond nodule 2's leftmost voxel
    table = write_table(tmp_path / "nodules.csv", [
        [maps[0].name, "DLCS_0001", *np.round(first[0].mean(axis=0), 2), 1],
        [maps[0].name.split(".")[0], "DLCS_0001", *np.round(outside, 2), 0],
        [maps[1].name, "DLCS_0002", *np.round(second[0].mean(axis=0), 2), 1],
        ["DLCS_0099_seg_sh", "DLCS_0099", 0, 0, 0, 1]])  # a map not given: ignored
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", *map(str, maps), "--percent", "50", "--nodules", str(table),
                 "--licence", "CC BY-NC 4.0", "--out", "recipe"]) == 0
    rows = read_cohort(tmp_path / "recipe" / "cohort.csv")
    assert [(r["nodule_id"], r["label"], r["donor_patient_id"]) for r in rows] == [
        ("1", "1", "DLCS_0001"), ("2", "0", "DLCS_0001"), ("1", "1", "DLCS_0002")]
    run_cases(tmp_path / "recipe" / "manifest.jsonl", ops=("augment",))
    jobs = json.loads((tmp_path / "recipe" / "cohort.json").read_text())["case_jobs"]
    manifest = {r["id"]: r for r in map(json.loads, (tmp_path / "recipe" / "manifest.jsonl").read_text().splitlines())}
    for source, real in zip(maps, (first, second)):
        case = [r for r in rows if r["source_labelmap"].endswith(source.name)]
        ids = read_volume(tmp_path / "recipe" / manifest[jobs[case[0]["case_id"]]["ids"]]["outputs"]["ids"])
        assert sorted(np.unique(ids.array))[1:] == [int(r["nodule_id"]) for r in case]
        for row in case:
            mine = np.argwhere(ids.array == int(row["nodule_id"]))
            points = ids.index_to_world(mine[:, ::-1].astype(float))
            original = {tuple(p) for p in np.round(real[int(row["nodule_id"]) - 1], 3)}
            assert {tuple(p) for p in np.round(points, 3)} <= original  # shrunk from that real nodule
            assert 0.3 < len(mine) / len(original) < 0.7
            assert np.allclose(points.mean(axis=0), [float(row[c]) for c in ("coordX", "coordY", "coordZ")], atol=2e-3)
            diameter = 2.0 * (3.0 * len(mine) * ids.voxel_volume_mm3 / (4.0 * np.pi)) ** (1 / 3)
            assert abs(diameter - float(row["diameter_mm"])) < 6e-3


def _two_nodule_map(folder: Path) -> tuple[Path, Volume]:
    """Lung (28) with two 3-voxel cubes of nodule, 4 mm apart (1 mm voxels)."""
    from nodsynth.io.volume_files import write_volume

    labels = np.full((20, 20, 20), 28, dtype=np.uint8)
    labels[8:11, 8:11, 4:7] = NODULE
    labels[8:11, 8:11, 10:13] = NODULE
    volume = Volume(labels, np.ones(3), np.zeros(3))
    return write_volume(volume, folder / "pair.nii.gz"), volume


@pytest.mark.parametrize("rows, message", [
    ([["pair", "P", 8.0, 9.0, 9.0, 1]], "line 2: the point [8.0, 9.0, 9.0] mm (LPS) lies in no nodule and within 5 mm "
                                        "of nodules [1, 2]: ambiguous"),
    ([["pair.nii.gz", "P", 5.0, 9.0, 9.0, 1], ["pair", "P", 30.0, 9.0, 9.0, 0]], "line 3: no nodule (label 23) at "
                                                                                  "[30.0, 9.0, 9.0] mm (LPS)"),
    ([["pair", "P", 5.0, 9.0, 9.0, 1], ["pair", "P", 4.0, 9.0, 9.0, 0]], "line 3: names nodule 1 of pair, as line 2 "
                                                                          "does"),
    ([["pair", "P", 5.0, "", 9.0, 1]], "line 2: coordX, coordY and coordZ (LPS mm) must all be given")])
def test_unmatched_ambiguous_or_repeated_table_rows_are_refused_naming_the_row(tmp_path, capsys, monkeypatch, rows,
                                                                                 message):
    from nodsynth.cli.main import main

    labelmap, _ = _two_nodule_map(tmp_path)
    table = write_table(tmp_path / "nodules.csv", rows)
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", labelmap.name, "--percent", "50", "--nodules", str(table),
                 "--out", "recipe"]) != 0
    err = capsys.readouterr().err
    assert f"{table} {message}" in err, err
    assert not (tmp_path / "recipe").exists()


def test_without_a_table_the_label_is_empty_and_the_donor_is_the_source(tmp_path, monkeypatch):
    from nodsynth.cli.main import main
    from nodsynth.cohort.table import read_cohort

    labelmap, _ = _two_nodule_map(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", labelmap.name, "--percent", "50", "--out", "recipe"]) == 0
    rows = read_cohort(tmp_path / "recipe" / "cohort.csv")
    assert [(r["nodule_id"], r["label"], r["donor_patient_id"]) for r in rows] == [("1", "", "pair"), ("2", "", "pair")]


def test_cohort_export_carries_the_inherited_label_and_donor_of_every_recipe_nodule(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the NodMAISI twin needs torch")
    from cohort_cases import write_sources
    from tiny_weights import nodmaisi_tiny_weights

    from nodsynth.batch import run_manifest
    from nodsynth.cli.main import main
    from nodsynth.cohort.export import CLASSIFICATION_COLUMNS

    write_sources(tmp_path, seeds=(0,), slab=False)  # a whole demo map: the twin's grid rules
    labelmap = tmp_path / "maps" / "demo0.nii.gz"
    nodules = real_nodules(labelmap)
    table = write_table(tmp_path / "nodules.csv", [["demo0", f"donor{n}", *np.round(points.mean(axis=0), 2), n % 2]
                                                  for n, points in enumerate(nodules[:-1], start=1)])
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", "maps/demo0.nii.gz", "--percent", "50", "--nodules", str(table),
                 "--licence", "CC0 (demo phantom)", "--out", "recipe"]) == 0
    manifest = tmp_path / "recipe" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        if row["op"] == "twin":
            row["params"]["steps"] = 2  # tiny networks, few steps: the test is about the tables
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_manifest(manifest, executor="inline", weights_dir=str(nodmaisi_tiny_weights(tmp_path / "weights")),
                        engine_options={"nodmaisi": {"config": "maisi_tiny"}}).ok
    assert main(["cohort", "export", "recipe", "--format", "classification", "--out", "export"]) == 0
    with open(tmp_path / "export" / "nodules.csv", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert tuple(exported[0]) == CLASSIFICATION_COLUMNS
    expected = [(str(n), "demo0", str(n % 2), f"donor{n}") for n in range(1, len(nodules))]
    expected.append((str(len(nodules)), "demo0", "", "demo0"))  # no row names the last nodule
    assert [(r["nodule_id"], r["patient_id"], r["label"], r["donor_patient_id"]) for r in exported] == expected
    assert all(r["synthetic"] == "1" for r in exported)
    provenance = json.loads((tmp_path / "export" / "provenance.json").read_text())["cases"]["demo0"]
    assert provenance["licences"] == {"labelmap": "CC0 (demo phantom)"} and provenance["seeds"]["twin"] == 0
    assert main(["cohort", "report", "recipe", "--out", "report"]) != 0  # no bins to report against: refused
    assert not (tmp_path / "report").exists()
