"""MAISI's quality check (``nodsynth qc``, ``twin --qc-stats``): ranges learned from real CTs, verdicts equal to
the published ``is_outlier`` on the same inputs, regeneration with a new seed until a twin passes."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.engines.base import Engine, SynthesisResult, TwinRequest
from nodsynth.phantom.patient import make_demo_patient
from nodsynth.qc.check import check_ct, qc_passed
from nodsynth.qc.groups import QC_GROUPS
from nodsynth.qc.regenerate import retry_seed, twin_with_qc
from nodsynth.qc.stats import group_medians_hu, learn_statistics
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume

GROUP_HU = {"liver": 60.0, "spleen": 45.0, "pancreas": 40.0, "kidney": 30.0, "lung": -850.0, "brain": 35.0,
            "hepatic tumor": 20.0, "bone lesion": 300.0, "lung tumor": -40.0, "colon cancer primaries": 25.0,
            "pancreatic tumor": 30.0, "bone": 450.0}
"""HU painted on each group's labels (every other label: 0 HU soft tissue, background: -1000 HU air)."""

OUT_OF_RANGE_LUNG_HU = -300.0
"""A lung median far outside the range learned from lungs painted at -850 HU +- a few HU."""


def painted_ct(labelmap: Volume, hu_by_group: dict[str, float]) -> Volume:
    """A CT holding one constant HU per organ group (the label map's other labels 0 HU, background -1000 HU)."""
    labels = labelmap.array
    ct = np.where(labels > 0, 0.0, -1000.0).astype(np.float32)
    for name, ids in QC_GROUPS.items():
        ct[np.isin(labels, ids)] = hu_by_group[name]
    return labelmap.with_array(ct)


def shifted(offsets: dict[str, float], **override: float) -> dict[str, float]:
    return {name: override.get(name.replace(" ", "_"), hu + offsets.get(name, 0.0)) for name, hu in GROUP_HU.items()}


@pytest.fixture(scope="module")
def labelmaps() -> list[Volume]:
    """Demo-patient label maps of two seeds (liver, lobes, bones, nodules)."""
    return [make_demo_patient(seed).labelmap for seed in (0, 1)]


@pytest.fixture(scope="module")
def training(labelmaps):
    """Eight 'real' CTs (four per label map), each group shifted by a random offset (HU): offsets and CTs."""
    rng = np.random.default_rng(7)
    offsets = [{name: float(rng.normal(0.0, 8.0)) for name in GROUP_HU} for _ in range(8)]
    return offsets, [painted_ct(labelmaps[n % 2], shifted(offsets[n])) for n in range(8)], [labelmaps[n % 2] for n in range(8)]


def test_learned_ranges_are_mean_3sd_and_percentiles_of_the_painted_medians(training):
    offsets, cts, maps = training
    statistics, left_out = learn_statistics([group_medians_hu(ct, lm) for ct, lm in zip(cts, maps)])
    present = {name for name, ids in QC_GROUPS.items() if all(np.isin(lm.array, ids).any() for lm in maps)}
    assert set(statistics) == present and "lung" in present and "liver" in present and "bone" in present
    assert set(left_out) == set(QC_GROUPS) - present and all(n == 0 for n in left_out.values())
    for name in present:
        medians = np.array([GROUP_HU[name] + o[name] for o in offsets], dtype=np.float32).astype(np.float64)
        entry = statistics[name]
        assert entry["n_volumes"] == 8
        assert entry["sigma_6_low"] == pytest.approx(medians.mean() - 3 * medians.std(ddof=1), abs=1e-4)
        assert entry["sigma_6_high"] == pytest.approx(medians.mean() + 3 * medians.std(ddof=1), abs=1e-4)
        assert entry["percentile_0_5"] == pytest.approx(np.percentile(medians, 0.5), abs=1e-4)
        assert entry["percentile_99_5"] == pytest.approx(np.percentile(medians, 99.5), abs=1e-4)


@pytest.fixture(scope="module")
def statistics(training):
    _, cts, maps = training
    return learn_statistics([group_medians_hu(ct, lm) for ct, lm in zip(cts, maps)])[0]


def test_in_range_passes_and_an_out_of_range_lung_fails_alone(labelmaps, statistics):
    good = check_ct(painted_ct(labelmaps[0], shifted({})), labelmaps[0], statistics)
    assert qc_passed(good) and sum(v.median_hu is not None for v in good) == len(statistics)
    bad = check_ct(painted_ct(labelmaps[0], shifted({}, lung=OUT_OF_RANGE_LUNG_HU)), labelmaps[0], statistics)
    assert not qc_passed(bad) and [v.group for v in bad if v.is_outlier] == ["lung"]
    assert next(v for v in bad if v.group == "lung").median_hu == OUT_OF_RANGE_LUNG_HU
    bone = next(v for v in good if v.group == "bone")
    assert bone.high_hu == 1000.0  # MAISI's fixed upper limit for bone


def _published_is_outlier():
    path = shared_path().parent / "anchors" / "NoMAISI" / "scripts" / "quality_check.py"
    if not path.exists():
        pytest.skip(f"the published NoMAISI code is not available: {path} is missing")
    spec = importlib.util.spec_from_file_location("nomaisi_quality_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.is_outlier


def _dlcs_chest(path) -> Volume:
    """A real DLCS label map (int16), cut to its central eighth (lungs, liver, bones) to keep the test quick."""
    full = read_volume(path)
    k, j, i = full.array.shape
    return Volume(full.array[k // 4:3 * k // 4, j // 4:3 * j // 4, i // 4:3 * i // 4].astype(np.int16), full.spacing)


def test_verdicts_equal_the_published_is_outlier(labelmaps, statistics):
    is_outlier = _published_is_outlier()
    dlcs = sorted(shared_path("dlcs_labelmaps").glob("*.nii*"))
    maps = list(labelmaps) + [_dlcs_chest(p) for p in dlcs]
    assert len(dlcs) == 2
    groups = {name: list(ids) for name, ids in QC_GROUPS.items()}
    rng = np.random.default_rng(3)
    cases = 0
    for labelmap in maps:
        for hu in (shifted({}), shifted({}, lung=OUT_OF_RANGE_LUNG_HU), shifted({}, liver=400.0, bone=1200.0),
                   shifted({n: float(rng.normal(0, 30)) for n in GROUP_HU})):
            ct = painted_ct(labelmap, hu)
            ours = {v.group: v for v in check_ct(ct, labelmap, statistics)}
            published = is_outlier(statistics, ct.array, labelmap.array, groups)
            assert set(ours) == set(published)
            for name, result in published.items():
                assert ours[name].is_outlier == bool(result["is_outlier"]), name
                assert ours[name].low_hu == result["low_thresh"] and ours[name].high_hu == result["high_thresh"]
                if result["median_value"] is None:
                    assert ours[name].median_hu is None
                else:
                    assert ours[name].median_hu == pytest.approx(float(result["median_value"]), abs=1e-3)
            cases += 1
    assert cases == 4 * len(maps)


class PaintingEngine(Engine):
    """A twin engine whose CT paints the label map with constant HU; the seeds in ``bad_seeds`` give an
    out-of-range lung. Stands for a generator whose samples sometimes fail the check."""

    name = "painting"

    def __init__(self, bad_seeds):
        self.bad_seeds, self.seeds = set(bad_seeds), []

    def twin(self, request, progress=None, cancel=None):
        self.seeds.append(request.seed)
        lung = OUT_OF_RANGE_LUNG_HU if request.seed in self.bad_seeds else GROUP_HU["lung"]
        return SynthesisResult({"ct": painted_ct(request.labelmap, shifted({}, lung=lung))}, self.name)


def test_a_failing_twin_is_regenerated_with_a_new_seed_until_it_passes(labelmaps, statistics):
    engine = PaintingEngine(bad_seeds={5})
    result = twin_with_qc(engine, TwinRequest(labelmaps[0], seed=5), statistics, max_tries=2)
    assert engine.seeds == [5, retry_seed(5, 1)] and retry_seed(5, 1) != 5
    qc = result.info["qc"]
    assert qc["passed"] and [t["passed"] for t in qc["tries"]] == [False, True]
    assert qc["tries"][0]["failed_groups"] == ["lung"] and qc["tries"][1]["seed"] == retry_seed(5, 1)
    assert qc_passed(check_ct(result.ct, labelmaps[0], statistics))


def test_a_twin_that_never_passes_is_kept_and_marked_failed(labelmaps, statistics):
    engine = PaintingEngine(bad_seeds={5, retry_seed(5, 1), retry_seed(5, 2)})
    result = twin_with_qc(engine, TwinRequest(labelmaps[0], seed=5), statistics, max_tries=3)
    assert len(engine.seeds) == 3 and len(set(engine.seeds)) == 3
    assert result.info["qc"]["passed"] is False and len(result.info["qc"]["tries"]) == 3
    lung = np.isin(labelmaps[0].array, QC_GROUPS["lung"])
    assert np.all(result.ct.array[lung] == OUT_OF_RANGE_LUNG_HU)  # the last try is what is kept


def test_qc_cli_learns_checks_and_refuses_bad_input(tmp_path, training, labelmaps, capsys):
    _, cts, maps = training
    ct_paths = [write_volume(ct, tmp_path / f"real{n}.nii.gz") for n, ct in enumerate(cts[:4])]
    map_paths = [write_volume(lm, tmp_path / f"map{n}.nii.gz") for n, lm in enumerate(maps[:4])]
    stats_path = tmp_path / "stats.json"
    assert main(["qc", "stats", "--cts", *map(str, ct_paths), "--labelmaps", *map(str, map_paths[:3]),
                 "--out", str(stats_path)]) == 2
    assert "--labelmaps" in capsys.readouterr().err and not stats_path.exists()
    assert main(["qc", "stats", "--cts", *map(str, ct_paths), "--labelmaps", *map(str, map_paths),
                 "--out", str(stats_path)]) == 0
    learned = json.loads(stats_path.read_text())
    expected, _ = learn_statistics([group_medians_hu(ct, lm) for ct, lm in zip(cts[:4], maps[:4])])
    assert learned.keys() == expected.keys()
    assert all(learned[g][k] == pytest.approx(expected[g][k]) for g in expected for k in ("sigma_6_low", "sigma_6_high"))
    good = write_volume(painted_ct(labelmaps[0], shifted({})), tmp_path / "good.nii.gz")
    bad = write_volume(painted_ct(labelmaps[0], shifted({}, lung=OUT_OF_RANGE_LUNG_HU)), tmp_path / "bad.nii.gz")
    verdict = tmp_path / "verdict.json"
    assert main(["qc", "check", "--ct", str(good), "--labelmap", str(map_paths[0]), "--stats", str(stats_path)]) == 0
    assert main(["qc", "check", "--ct", str(bad), "--labelmap", str(map_paths[0]), "--stats", str(stats_path),
                 "--json", str(verdict)]) == 1
    assert json.loads(verdict.read_text())["failed_groups"] == ["lung"]
    stats_path.write_text(json.dumps({"lung": {"sigma_6_low": -900}}))
    capsys.readouterr()
    assert main(["qc", "check", "--ct", str(good), "--labelmap", str(map_paths[0]), "--stats", str(stats_path)]) == 2
    assert "sigma_6_high" in capsys.readouterr().err


def test_twin_cli_regenerates_keeps_and_marks_a_ct_that_never_passes(tmp_path, labelmaps, statistics, monkeypatch):
    """A tiny random NodMAISI network's CT cannot have real organ HU: both tries fail, the last is kept."""
    from test_nodmaisi_engine import tiny_weights_folder

    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    weights = tiny_weights_folder(tmp_path / "weights")
    label_path = write_volume(labelmaps[0], tmp_path / "map.nii.gz")
    stats_path = tmp_path / "stats.json"
    stats_path.write_text(json.dumps(statistics))
    out, info = tmp_path / "twin.nrrd", tmp_path / "twin.json"
    options = ["--engine", "nodmaisi", "--weights", str(weights), "--device", "cpu", "--config", "maisi_tiny"]
    assert main(["twin", "--labelmap", str(label_path), "--out", str(out), "--steps", "1", "--seed", "3",
                 "--qc-stats", str(stats_path), "--json", str(info), *options]) == 1
    qc = json.loads(info.read_text())["qc"]
    assert qc["passed"] is False and [t["seed"] for t in qc["tries"]] == [3, retry_seed(3, 1)]
    assert all(t["failed_groups"] for t in qc["tries"])
    import SimpleITK as sitk
    assert sitk.ReadImage(str(out)).GetMetaData("nodsynth_qc") == "FAILED all 2 tries"
    kept = {v.group: v.median_hu for v in check_ct(read_volume(out), labelmaps[0], statistics)}
    medians = [{g["group"]: g["median_hu"] for g in t["groups"]} for t in qc["tries"]]
    assert medians[0] != medians[1] and kept == pytest.approx(medians[1])  # the second try is the one kept


def test_a_batch_twin_row_with_qc_stats_records_its_verdict(tmp_path, statistics):
    from batch_cases import ENGINE_OPTIONS, record_file, twin_row, write_inputs, write_manifest
    from nodsynth.batch import check_manifest, run_manifest
    from test_nodmaisi_engine import tiny_weights_folder

    write_inputs(tmp_path / "in")
    (tmp_path / "in" / "stats.json").write_text(json.dumps(statistics))
    row = twin_row("twin-00", "in/labels.nii.gz", 4, "out")
    row["inputs"]["qc_stats"] = "in/stats.json"
    row["params"]["max_tries"] = 1  # the CLI test covers a second try
    manifest = write_manifest(tmp_path / "manifest.jsonl", [row])
    options = {"nodmaisi": {**ENGINE_OPTIONS["nodmaisi"], "weights_dir": str(tiny_weights_folder(tmp_path / "w"))}}
    check_manifest(manifest, None, options)
    assert run_manifest(manifest, executor="inline", engine_options=options).ok
    record = json.loads(record_file(tmp_path / "out" / "twin", "twin-00").read_text())
    facts = json.dumps(record)
    assert '"qc_passed": false' in facts and facts.count('"verdict"') == 1
    assert (tmp_path / "out" / "twin" / "twin-00.nii.gz").exists()  # kept although it failed
