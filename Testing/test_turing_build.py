"""``nodsynth turing build``: a blinded study from real LIDC-IDRI nodules and model-free synthetic ones.

The "no tell" test plays the cheating reader: it tries to separate real from synthetic study files
by the files alone (dtype, header fields, sizes, value sets) and fails; the same probe does
separate the input files, so it can see a tell where one exists.
"""
from __future__ import annotations

import csv
import hashlib
import json
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.engines.base import InpaintRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.presets import preset_histogram, subtype_from_texture
from nodsynth.review.balance import allocate, size_bin, water_fill
from nodsynth.review.blinded import PAD_HU
from nodsynth.review.reading import study_cases
from nodsynth.io.volume_files import read_volume, write_volume

PER_STRATUM = 4  # two real and two synthetic nodules from each (subtype, size bin) LIDC has
N_EACH = 12
NIFTI_HEADER_BYTES = 352


def _lidc_strata(per_stratum: int = PER_STRATUM):
    vois = shared_path("lidc_vois")
    with open(vois / "nodules.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: r["file"])
    chosen: dict = {}
    for row in rows:
        diameter = float(row["diameter_mm"])
        stratum = (subtype_from_texture(row["Texture_value"]), size_bin(diameter))
        if diameter >= 6.0 and stratum[1] != ">30" and len(chosen.setdefault(stratum, [])) < per_stratum:
            chosen[stratum].append(row)
    return vois, chosen


def lidc_manifests(root: Path, per_stratum: int = PER_STRATUM):
    """Manifests (``{truth: path}``, ``{truth: rows}``) of real LIDC VOIs (as published) and other LIDC VOIs
    whose nodule was re-inserted model-free, written under ``root``."""
    vois, strata = _lidc_strata(per_stratum)
    columns = ("ct", "mask", "subtype", "diameter_mm", "source")
    manifests = {"real": [], "synthetic": []}
    for stratum, rows in sorted(strata.items()):
        for number, row in enumerate(rows):
            truth = ("real", "synthetic")[number % 2]
            image, mask = vois / "image" / row["file"], vois / "nodule_mask" / row["file"]
            if truth == "synthetic":
                ct, nodule = read_volume(image), read_volume(mask)
                made = ClassicEngine().inpaint(InpaintRequest(ct, nodule, stratum[0], preset_histogram(stratum[0]),
                                                              seed=number))
                image = write_volume(made.ct, root / "synthetic" / row["file"])
            manifests[truth].append([str(image), str(mask), stratum[0], row["diameter_mm"], row["file"]])
    paths = {}
    for truth, rows in manifests.items():
        paths[truth] = root / f"{truth}.csv"
        with open(paths[truth], "w", newline="") as handle:
            csv.writer(handle).writerows([columns, *rows])
    return paths, manifests


@pytest.fixture(scope="module")
def lidc_study(tmp_path_factory):
    """A study of real LIDC VOIs vs LIDC VOIs whose nodule was re-inserted model-free."""
    root = tmp_path_factory.mktemp("turing")
    paths, manifests = lidc_manifests(root)
    study = root / "study"
    status = main(["turing", "build", "--real", str(paths["real"]), "--synthetic", str(paths["synthetic"]),
                   "--out", str(study), "--n-real", str(N_EACH), "--n-synthetic", str(N_EACH),
                   "--phases", "cropped,full", "--full", "whole", "--cube-mm", "32", "--seed", "0"])
    assert status == 0
    return study, paths, manifests


def _key_file(study: Path) -> Path:
    """Where the key of ``study`` belongs: beside the folder readers receive (``<out>.key.csv``)."""
    return study.parent / f"{study.name}.key.csv"


def _key(study: Path) -> list[dict]:
    with open(_key_file(study), newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------ structure
def test_study_files_key_and_hash(lidc_study):
    study, _, _ = lidc_study
    key = _key(study)
    assert list(key[0]) == ["case_id", "phase", "truth", "source", "subtype", "diameter_mm", "seed"]
    assert {r["seed"] for r in key} == {"0"}
    assert not (study / "key.csv").exists() and not [p for p in study.rglob("*") if "key" in p.name.lower()]
    counts = Counter((r["phase"], r["truth"]) for r in key)
    assert counts == {(p, t): N_EACH for p in ("cropped", "full") for t in ("real", "synthetic")}
    recorded = json.loads((study / "study.json").read_text())
    assert recorded["key_sha256"] == hashlib.sha256(_key_file(study).read_bytes()).hexdigest()
    ids = [r["case_id"] for r in key]
    assert len(set(ids)) == len(ids)  # a nodule gets a different id in each phase
    by_source = {}
    for r in key:
        by_source.setdefault((r["truth"], r["source"]), set()).add(r["phase"])
    assert all(p == {"cropped", "full"} for p in by_source.values())
    for phase in ("cropped", "full"):
        listed = [c["case_id"] for c in recorded["cases"][phase]]
        assert sorted(listed) == sorted(r["case_id"] for r in key if r["phase"] == phase)
        assert sorted(p.stem for p in (study / phase).glob("*.nii")) == sorted(listed)
    assert sorted(p.stem for p in (study / "cropped").glob("*.png")) == sorted(c["case_id"] for c in
                                                                              recorded["cases"]["cropped"])
    assert not list((study / "full").glob("*.png"))
    # the reading order is random, not grouped by truth, and differs between the phases
    truth_of = {r["case_id"]: r["truth"] for r in key}
    order = [truth_of[c["case_id"]] for c in recorded["cases"]["cropped"]]
    assert order != sorted(order) and order != sorted(order, reverse=True)
    source_of = {r["case_id"]: (r["truth"], r["source"]) for r in key}
    assert [source_of[c["case_id"]] for c in recorded["cases"]["cropped"]] != \
        [source_of[c["case_id"]] for c in recorded["cases"]["full"]]
    assert [c.phase for c in study_cases(study)] == ["cropped"] * 2 * N_EACH + ["full"] * 2 * N_EACH


def test_subtypes_and_size_bins_are_balanced_as_far_as_the_inputs_allow(lidc_study):
    study, _, manifests = lidc_study
    balance = json.loads((study / "balance.json").read_text())
    assert balance["strata_matched"] is True
    assert balance["real"]["strata"] == balance["synthetic"]["strata"]
    available = Counter((r[2], size_bin(float(r[3]))) for r in manifests["real"])
    # every stratum the inputs hold is used, and no stratum gets more than one above the fewest
    counts = balance["real"]["strata"]
    assert len(counts) == len(available)
    spare = [n for k, n in counts.items() if n < available[tuple(k.rsplit(" ", 1))]]
    assert max(counts.values()) - min(spare or [max(counts.values())]) <= 1
    key = _key(study)
    chosen = Counter((r["subtype"], size_bin(float(r["diameter_mm"]))) for r in key
                     if r["phase"] == "cropped" and r["truth"] == "real")
    assert {f"{s} {b}": n for (s, b), n in chosen.items()} == counts


def test_same_seed_same_study(lidc_study, tmp_path):
    study, paths, _ = lidc_study
    again = tmp_path / "again"
    assert main(["turing", "build", "--real", str(paths["real"]), "--synthetic", str(paths["synthetic"]),
                 "--out", str(again), "--n-real", str(N_EACH), "--n-synthetic", str(N_EACH),
                 "--phases", "cropped,full", "--full", "whole", "--cube-mm", "32", "--seed", "0"]) == 0
    assert _key_file(again).read_bytes() == _key_file(study).read_bytes()
    for row in _key(study)[::6]:
        name = f"{row['phase']}/{row['case_id']}.nii"
        assert (again / name).read_bytes() == (study / name).read_bytes()


# ------------------------------------------------------------------------------ no tell
def _header_fields(path: Path) -> dict:
    """The NIfTI-1 header fields a file could leak its source through (little-endian single file)."""
    raw = path.read_bytes()[:NIFTI_HEADER_BYTES]
    return {"sizeof_hdr": struct.unpack("<i", raw[0:4])[0], "dim": struct.unpack("<8h", raw[40:56]),
            "datatype": struct.unpack("<h", raw[70:72])[0], "bitpix": struct.unpack("<h", raw[72:74])[0],
            "pixdim": struct.unpack("<8f", raw[76:108]), "vox_offset": struct.unpack("<f", raw[108:112])[0],
            "scl": struct.unpack("<2f", raw[112:120]), "cal": struct.unpack("<2f", raw[124:132]),
            "descrip": raw[148:228], "aux_file": raw[228:252], "codes": struct.unpack("<2h", raw[252:256]),
            "quatern": struct.unpack("<3f", raw[256:268]), "qoffset": struct.unpack("<3f", raw[268:280]),
            "srow": struct.unpack("<12f", raw[280:328]), "intent_name": raw[328:344], "magic": raw[344:348],
            "rest": raw[0:40] + raw[56:70] + raw[120:124] + raw[132:148]}


def _png_chunks(path: Path) -> dict:
    """Chunk types (in order) and the IHDR of a PNG: text or time chunks would leak; so would a header."""
    data = path.read_bytes()
    position, chunks, ihdr = 8, [], b""
    while position < len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        kind = data[position + 4:position + 8]
        if kind == b"IHDR":
            ihdr = data[position + 8:position + 8 + length]
        chunks.append(kind)
        position += 12 + length
    return {"chunk types": tuple(dict.fromkeys(chunks)), "IHDR": ihdr}


def _values(path: Path) -> np.ndarray:
    if path.suffix == ".png":
        from PIL import Image

        return np.asarray(Image.open(path)).astype(np.int64)
    return read_volume(path).array


def _value_features(array: np.ndarray) -> dict:
    values = array.ravel()
    return {"min": float(values.min()), "max": float(values.max()), "distinct": float(np.unique(values).size),
            "pad_fraction": float(np.mean(values == PAD_HU)), "odd_fraction": float(np.mean(values % 2 != 0)),
            "fraction_part": float(np.mean(values != np.round(values)))}


def _loo_threshold_accuracy(feature: list[float], labels: list[bool]) -> float:
    """Leave-one-out accuracy of the best one-threshold rule (either direction) fitted on the others."""
    x, y = np.asarray(feature, np.float64), np.asarray(labels, bool)
    right = 0
    for held in range(len(x)):
        rest = np.arange(len(x)) != held
        best, rule = -1.0, (np.inf, True)
        for threshold in np.unique(x[rest]):
            for above in (True, False):
                guess = (x[rest] >= threshold) if above else (x[rest] < threshold)
                accuracy = float(np.mean(guess == y[rest]))
                if accuracy > best:
                    best, rule = accuracy, (threshold, above)
        guess = (x[held] >= rule[0]) if rule[1] else (x[held] < rule[0])
        right += int(guess == y[held])
    return right / len(x)


def _separable_by(files: dict[Path, bool]) -> list[str]:
    """Names of the file-level properties that separate the two groups: any header field, or the file
    size, time stamp, creation order or a value-set feature whose leave-one-out threshold rule reaches 80 %."""
    labels = list(files.values())
    tells = []
    headers = [_header_fields(p) if p.suffix == ".nii" else _png_chunks(p) for p in files]
    for name in headers[0]:
        if name in ("dim", "qoffset", "srow"):
            continue  # shape-dependent: the shape is probed through the file size
        by_group = {g: {repr(h[name]) for h, g2 in zip(headers, labels) if g2 == g} for g in (True, False)}
        if by_group[True].isdisjoint(by_group[False]):
            tells.append(f"header {name}")
    for name, value in (("file size", lambda s: s.st_size), ("modification time", lambda s: s.st_mtime_ns),
                        ("creation order (inode)", lambda s: s.st_ino)):
        if _loo_threshold_accuracy([float(value(p.stat())) for p in files], labels) >= 0.8:
            tells.append(name)
    arrays = [_values(p) for p in files]
    if len({a.dtype for a in arrays}) > 1:
        tells.append("dtype")
    features = [_value_features(a) for a in arrays]
    for name in features[0]:
        if _loo_threshold_accuracy([f[name] for f in features], labels) >= 0.8:
            tells.append(f"values {name}")
    return tells


def test_no_tell_in_the_study_files(lidc_study):
    study, _, _ = lidc_study
    truth = {(r["phase"], r["case_id"]): r["truth"] == "synthetic" for r in _key(study)}
    for phase, pattern in (("cropped", "*.nii"), ("cropped", "*.png"), ("full", "*.nii")):
        files = {p: truth[(phase, p.stem)] for p in sorted((study / phase).glob(pattern))}
        assert len(files) == 2 * N_EACH
        assert _separable_by(files) == [], (phase, pattern)
    cropped = sorted((study / "cropped").glob("*.nii"))
    assert len({p.read_bytes()[:NIFTI_HEADER_BYTES] for p in cropped}) == 1  # byte-identical headers
    assert len({p.stat().st_size for p in cropped}) == 1
    assert len({p.stat().st_size for p in (study / "cropped").glob("*.png")}) == 1
    assert len({p.stat().st_mtime for p in study.rglob("*")}) == 1  # one time stamp for every file
    for path in (study / "full").glob("*.nii"):
        fields = _header_fields(path)
        assert fields["datatype"] == 4 and fields["bitpix"] == 16 and fields["scl"] == (1.0, 0.0)
        assert fields["descrip"].strip(b"\0") == b"" and fields["aux_file"].strip(b"\0") == b""
        # the origin depends on the shape only (the grid is centred on 0): nothing of the source's position
        size = np.array(fields["dim"][1:4], np.float64)
        spacing = np.array(fields["pixdim"][1:4], np.float64)
        assert np.allclose(np.abs(fields["qoffset"]), 0.5 * (size - 1) * spacing, atol=1e-3)


def test_the_probe_does_find_the_tells_of_the_input_files(lidc_study):
    """Positive control: LIDC's files and the synthetic ones written here differ in header and size."""
    _, _, manifests = lidc_study
    files = {Path(row[0]): truth == "synthetic" for truth, rows in manifests.items() for row in rows}
    import gzip
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # the probe reads uncompressed headers
        plain = {}
        for path, label in files.items():
            target = Path(folder) / f"{label}_{path.name[:-3]}"
            target.write_bytes(gzip.decompress(path.read_bytes()))
            plain[target] = label
        tells = _separable_by(plain)
    assert "header codes" in tells  # LIDC's crops have no sform, ITK writes one


# ------------------------------------------------------------------------------ balance (pure)
def test_size_bins_follow_hrldm_fig_4():
    assert [size_bin(d) for d in (5.99, 6.0, 9.99, 10.0, 19.99, 20.0, 30.0, 30.01)] == \
        ["<6", "6-10", "6-10", "10-20", "10-20", "20-30", "20-30", ">30"]


def test_allocation_matches_real_and_synthetic_per_stratum_and_spreads_evenly():
    real = {("solid", "6-10"): 10, ("solid", "10-20"): 10, ("ground-glass", "10-20"): 2, ("solid", ">30"): 5}
    synthetic = {("solid", "6-10"): 3, ("solid", "10-20"): 10, ("ground-glass", "10-20"): 5}
    got_real, got_synthetic = allocate(real, synthetic, 8, 8)
    assert got_real == got_synthetic == {("ground-glass", "10-20"): 2, ("solid", "10-20"): 3, ("solid", "6-10"): 3}
    got_real, got_synthetic = allocate(real, synthetic, 20, 12)  # real needs more than the shared strata give
    assert sum(got_real.values()) == 20 and sum(got_synthetic.values()) == 12
    assert got_real.get(("solid", ">30"), 0) == 0  # binned nodules first; <6 / >30 only when they run out
    assert water_fill({"a": 1, "b": 5, "c": 5}, 7) == {"a": 1, "b": 3, "c": 3}


# ------------------------------------------------------------------------------ bad input
def _build(tmp_path, real, synthetic, *extra):
    out = tmp_path / "study"
    return main(["turing", "build", "--real", str(real), "--synthetic", str(synthetic), "--out", str(out),
                 *extra]), out


def _manifest(path: Path, rows, columns=("ct", "mask", "subtype", "diameter_mm")) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([columns, *rows])
    return path


@pytest.mark.parametrize("n_real, n_synthetic", [(30, 2), (2, 99)])
def test_more_cases_than_the_inputs_hold_is_refused(lidc_study, tmp_path, capsys, n_real, n_synthetic):
    _, paths, _ = lidc_study
    status, out = _build(tmp_path, paths["real"], paths["synthetic"], "--n-real", str(n_real),
                         "--n-synthetic", str(n_synthetic))
    assert status == 2 and "holds only" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("rows, message", [
    ([["ct.nii.gz", "", "solid", "8"]], "give the nodule's mask or its centre"),
    ([["ct.nii.gz", "m.nii.gz", "spiky", "8"]], "subtype must be one of"),
    ([["missing.nii.gz", "m.nii.gz", "solid", "8"]], "ct file not found"),
    ([["ct.nii.gz", "m.nii.gz", "solid", "-3"]], "diameter_mm must be positive"),
])
def test_bad_manifests_are_refused_with_nothing_written(tmp_path, capsys, rows, message):
    from nodsynth.volume import Volume

    write_volume(Volume(np.full((4, 4, 4), -800, np.int16)), tmp_path / "ct.nii.gz")
    write_volume(Volume(np.ones((4, 4, 4), np.uint8)), tmp_path / "m.nii.gz")
    good = _manifest(tmp_path / "good.csv", [["ct.nii.gz", "m.nii.gz", "solid", "8"]])
    bad = _manifest(tmp_path / "bad.csv", rows)
    status, out = _build(tmp_path, bad, good, "--n-real", "1", "--n-synthetic", "1")
    assert status == 2 and message in capsys.readouterr().err and not out.exists()


def test_unknown_phase_and_a_used_folder_are_refused(lidc_study, tmp_path, capsys):
    _, paths, _ = lidc_study
    status, out = _build(tmp_path, paths["real"], paths["synthetic"], "--n-real", "1", "--n-synthetic", "1",
                         "--phases", "cropped,zoomed")
    assert status == 2 and "phases must be" in capsys.readouterr().err and not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    status, _ = _build(tmp_path, paths["real"], paths["synthetic"], "--n-real", "1", "--n-synthetic", "1")
    assert status == 2 and "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_nodules_given_by_centre_alone_are_segmented_and_measured(tmp_path):
    """Manifest rows with only a centre: the builder segments each nodule there and measures it."""
    from nodsynth.phantom import make_demo_patient

    patient = make_demo_patient(0)
    write_volume(patient.ct, tmp_path / "ct.nii.gz")
    other = patient.ct.array.copy()
    other[0, 0, 0] += 1  # another CT (by content) with the same nodules: a study shows each nodule once
    write_volume(patient.ct.with_array(other), tmp_path / "other.nii.gz")
    rows = [["ct.nii.gz", *(f"{v:.2f}" for v in n.center_lps), n.name] for n in patient.nodules]
    real = _manifest(tmp_path / "real.csv", rows, ("ct", "coordX", "coordY", "coordZ", "source"))
    synthetic = _manifest(tmp_path / "synthetic.csv", [["other.nii.gz", *r[1:]] for r in rows],
                          ("ct", "coordX", "coordY", "coordZ", "source"))
    status, out = _build(tmp_path, real, synthetic, "--n-real", "5", "--n-synthetic", "5", "--phases", "cropped",
                         "--cube-mm", "40")
    assert status == 0
    key = {r["source"]: r for r in _key(out) if r["truth"] == "real"}
    for nodule in patient.nodules:
        true_mm = 2.0 * (3.0 * nodule.mask.array.sum() * patient.ct.voxel_volume_mm3 / (4.0 * np.pi)) ** (1 / 3)
        assert float(key[nodule.name]["diameter_mm"]) == pytest.approx(true_mm, rel=0.15), nodule.kind
        if nodule.kind in ("solid", "ground-glass"):
            assert key[nodule.name]["subtype"] == nodule.subtype


# ------------------------------------------------------------------------------ key and seed (issue 22)
def _small_inputs(tmp_path: Path, n: int = 3, synthetic_ct: bool = True) -> tuple[Path, Path]:
    """``n`` described nodules (mask, subtype, diameter) on a real CT and ``n`` on another, synthetic one."""
    from nodsynth.volume import Volume

    rng = np.random.default_rng(7)
    paths = {}
    for truth in ("real", "synthetic"):
        ct = Volume(rng.integers(-1000, -700, (24, 24, 40)).astype(np.int16), spacing=(1.0, 1.0, 1.0))
        write_volume(ct, tmp_path / f"{truth}_ct.nii.gz")
        rows = []
        for k in range(n):
            mask = np.zeros(ct.array.shape, np.uint8)
            mask[10:14, 10:14, 6 + 10 * k:10 + 10 * k] = 1
            write_volume(ct.with_array(mask), tmp_path / f"{truth}_m{k}.nii.gz")
            rows.append([f"{truth}_ct.nii.gz", f"{truth}_m{k}.nii.gz", "solid", "8", f"{truth} {k}"])
        paths[truth] = _manifest(tmp_path / f"{truth}.csv", rows, ("ct", "mask", "subtype", "diameter_mm", "source"))
    return paths["real"], paths["synthetic"]


def _small_build(tmp_path, name, real, synthetic, *extra):
    out = tmp_path / name
    return main(["turing", "build", "--real", str(real), "--synthetic", str(synthetic), "--out", str(out),
                 "--n-real", "3", "--n-synthetic", "3", "--phases", "cropped", "--cube-mm", "12", *extra]), out


def test_the_key_lies_beside_the_study_and_a_default_study_draws_and_records_its_seed(tmp_path):
    real, synthetic = _small_inputs(tmp_path)
    studies = []
    for name in ("a", "b"):
        status, out = _small_build(tmp_path, name, real, synthetic)
        assert status == 0
        assert _key_file(out).is_file() and not [p for p in out.rglob("*") if "key" in p.name.lower()]
        studies.append(out)
    keys = [_key(s) for s in studies]
    seeds = [{r["seed"] for r in k} for k in keys]
    assert all(len(s) == 1 for s in seeds) and seeds[0] != seeds[1]  # one seed per key, drawn afresh
    assert [r["case_id"] for r in keys[0]] != [r["case_id"] for r in keys[1]]
    status, again = _small_build(tmp_path, "again", real, synthetic, "--seed", seeds[0].pop())
    assert status == 0 and _key_file(again).read_bytes() == _key_file(studies[0]).read_bytes()
    for row in keys[0]:
        name = f"cropped/{row['case_id']}.nii"
        assert (again / name).read_bytes() == (studies[0] / name).read_bytes()
    assert (again / "study.json").read_bytes() == (studies[0] / "study.json").read_bytes()


def test_a_key_inside_the_study_or_an_existing_key_is_refused_with_nothing_written(tmp_path, capsys):
    real, synthetic = _small_inputs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out = _small_build(tmp_path, "study", real, synthetic, "--key", str(tmp_path / "study" / "sub" / "k.csv"))
    assert status == 2 and "inside the study folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    _key_file(out).write_text("mine")
    status, out = _small_build(tmp_path, "study", real, synthetic)
    assert status == 2 and "already exists" in capsys.readouterr().err
    assert not out.exists() and _key_file(out).read_text() == "mine"


def test_a_build_that_fails_while_writing_leaves_no_key(tmp_path, capsys):
    real, synthetic = _small_inputs(tmp_path)
    outside = _manifest(tmp_path / "outside.csv", [["real_ct.nii.gz", -500 - k, 0, 0, "solid", 8] for k in range(3)],
                        ("ct", "coordX", "coordY", "coordZ", "subtype", "diameter_mm"))  # centres far outside the CT
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out = _small_build(tmp_path, "study", outside, synthetic)
    assert status == 2 and "outside" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ------------------------------------------------------------------------------ one nodule once (issue 22)
def _rows(manifest: Path) -> list[list[str]]:
    with open(manifest, newline="") as handle:
        return list(csv.reader(handle))


def test_the_same_nodule_under_another_name_or_file_is_refused(tmp_path, capsys):
    import shutil

    real, synthetic = _small_inputs(tmp_path)
    shutil.copy(tmp_path / "real_ct.nii.gz", tmp_path / "copy_ct.nii.gz")  # byte-identical CT under another name
    centre = read_volume(tmp_path / "real_ct.nii.gz").index_to_world([7.5, 11.5, 11.5])  # in real nodule 0 (i j k)
    columns = ("ct", "mask", "coordX", "coordY", "coordZ", "subtype", "diameter_mm", "source")
    _, *rows = _rows(synthetic)
    own = [[r[0], r[1], "", "", "", *r[2:]] for r in rows]
    for name, extra in (("renamed", ["real_ct.nii.gz", "real_m1.nii.gz", "", "", "", "solid", "8", "a new name"]),
                        ("copied", ["copy_ct.nii.gz", "", *(f"{v:.2f}" for v in centre), "solid", "8", "a point"])):
        manifest = _manifest(tmp_path / f"{name}.csv", [*own, extra], columns)
        status, out = _small_build(tmp_path, f"study_{name}", real, manifest, "--n-synthetic", "4")
        assert status == 2 and "are the same nodule" in capsys.readouterr().err, name
        assert not out.exists() and not _key_file(out).exists()
    status, out = _small_build(tmp_path, "both", real, real)  # one manifest as both real and synthetic
    assert status == 2 and "are the same nodule" in capsys.readouterr().err and not out.exists()


def test_distinct_nodules_sharing_a_source_label_build_and_stay_apart_in_the_key(tmp_path):
    real, synthetic = _small_inputs(tmp_path)
    for manifest in (real, synthetic):
        header, *rows = _rows(manifest)
        _manifest(manifest, [[*r[:-1], "LIDC-IDRI"] for r in rows], header)
    status, out = _small_build(tmp_path, "study", real, synthetic)
    assert status == 0
    sources = {(r["truth"], r["source"]) for r in _key(out)}
    assert len(sources) == 6  # three nodules a side, each its own name in the key
    assert all(s.startswith("LIDC-IDRI (") for _, s in sources)
