"""FROC by the LUNA16 rules: a hand-made case worked out by hand, a random case against an
independent implementation of the rules written here, the bootstrap, the CLI and bad input."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from nodsynth.cli.main import main
from nodsynth.evaluate.froc import froc_curve, froc_entries, sensitivities_at_rates
from nodsynth.evaluate.froc_bootstrap import bootstrap_froc
from nodsynth.evaluate.froc_io import Findings, read_findings
from nodsynth.evaluate.froc_report import froc_report

RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
GRID_STEP = (8.0 - 0.125) / 10000  # 10,001 points from 1/8 to 8


def far(k: int) -> tuple[float, float, float]:
    """A point far from every nodule of the hand-made case."""
    return (300.0 + 7 * k, -300.0, 400.0)


def hand_case():
    """Four scans; s4 has no nodule. Nodules (LPS mm, diameter):
    s1: n1 (0,0,0) 10 mm; s2: n2 (10,-20,30) 6 mm; s3: n3 (-50,40,-100) 20 mm, n4 (60,60,60) 4 mm,
    n5 (0,0,0) 30 mm (missed)."""
    annotations = [("s1", (0, 0, 0), 10.0), ("s2", (10, -20, 30), 6.0), ("s3", (-50, 40, -100), 20.0),
                   ("s3", (60, 60, 60), 4.0), ("s3", (0, 0, 0), 30.0)]
    detections = [
        ("s1", (1, 2, 2), 0.9),        # n1: distance^2 9 < 25: hit
        ("s1", (3, 0, 3), 0.5),        # n1 again, less probable: ignored (neither TP nor FP)
        ("s2", (10, -20, 32), 0.8),    # n2: distance^2 4 < 9: hit
        ("s2", (13, -20, 30), 0.5),    # distance exactly the radius 3 mm: not a hit -> FP
        ("s3", (-45, 40, -100), 0.6),  # n3: hit
        ("s3", (61, 60, 60), 0.3),     # n4: hit
        ("s3", (16, 0, 0), 0.1),       # 16 mm from n5 (radius 15): FP; n5 is missed
        ("s1", (10, -20, 30), 0.3),    # n2's position but in scan s1: FP
    ]
    k = 0
    for scan, probability, count in (("s1", 0.8, 1), ("s4", 0.8, 1), ("s2", 0.6, 1), ("s3", 0.6, 1), ("s4", 0.6, 1),
                                     ("s1", 0.5, 1), ("s3", 0.5, 1), ("s4", 0.5, 2), ("s2", 0.3, 4), ("s4", 0.3, 5),
                                     ("s1", 0.1, 3), ("s4", 0.1, 4)):
        for _ in range(count):
            detections.append((scan, far(k), probability))
            k += 1
    # s3 gets 150 more marks at 0.01, one right on n5: more than 100 marks, so only those above the
    # 101st highest probability (0.01) stay -- all 0.01 marks go, n5 stays missed.
    detections += [("s3", (0.0, 0.0, 0.0), 0.01)] + [("s3", far(100 + i), 0.01) for i in range(149)]
    return annotations, detections


def findings(rows, value_name="x") -> Findings:
    return Findings(tuple(r[0] for r in rows), np.asarray([r[1] for r in rows], dtype=float).reshape(-1, 3),
                    np.asarray([r[2] for r in rows], dtype=float), value_name)


def test_hand_made_case_worked_out_by_hand():
    """Entries: TPs n1 0.9, n2 0.8, n3 0.6, n4 0.3 (n5 missed: 5 nodules in total); FPs 2 x 0.8,
    3 x 0.6, 5 x 0.5, 10 x 0.3, 8 x 0.1 over 4 scans. Thresholding gives the FROC points
    (FP/scan, sensitivity): (0, 0.2) at 0.9; (0.5, 0.4) at 0.8 (a tie: 2 FPs and n2 together, so a
    sloped segment); (1.25, 0.6) at 0.6; (2.5, 0.6) at 0.5; (5.0, 0.8) at 0.3; (7.0, 0.8) at 0.1.
    The curve is read at the grid point nearest each rate: 0.125 + k * 7.875e-4 with
    k = 0, 159, 476, 1111, 2381, 4921, 10000."""
    annotations, detections = hand_case()
    entries = froc_entries(findings(annotations), findings(detections), ["s1", "s2", "s3", "s4"])
    fps, sensitivity, _ = froc_curve(entries, 4)
    grid = {rate: 0.125 + k * GRID_STEP for rate, k in zip(RATES, (0, 159, 476, 1111, 2381, 4921, 10000))}
    expected = [
        0.2 + 0.4 * grid[0.125],                   # on (0, 0.2)-(0.5, 0.4): 0.25
        0.2 + 0.4 * grid[0.25],                    # 0.2502125 -> 0.300085 (not 0.3)
        0.2 + 0.4 * grid[0.5],                     # 0.49985 -> 0.39994
        0.4 + (grid[1.0] - 0.5) * 0.2 / 0.75,      # 0.9999125 on (0.5, 0.4)-(1.25, 0.6) -> 0.53331
        0.6,                                       # 2.0000375 on the flat (1.25, 0.6)-(2.5, 0.6)
        0.6 + (grid[4.0] - 2.5) * 0.2 / 2.5,       # 4.0002875 on (2.5, 0.6)-(5, 0.8) -> 0.720023
        0.8,                                       # past the last point (7, 0.8): flat
    ]
    assert expected == pytest.approx([0.25, 0.300085, 0.39994, 0.53331, 0.6, 0.720023, 0.8], abs=1e-12)
    got = sensitivities_at_rates(fps, sensitivity)
    assert got == pytest.approx(expected, abs=1e-12)
    assert np.mean(got) == pytest.approx(3.603358 / 7, abs=1e-12)
    assert int(entries.is_nodule.sum()) == 5 and int((entries.is_nodule & entries.in_roc).sum()) == 4
    assert int((~entries.is_nodule).sum()) == 28


def test_hand_made_strata():
    """Stratum < 10 mm: n2 (6 mm, 0.8) and n4 (4 mm, 0.3). Marks on n1, n3, n5 (other strata) are
    ignored, the 28 FPs stay: points (0.5, 0.5) at 0.8, (1.25, 0.5), (2.5, 0.5), (5, 1.0) at 0.3, (7, 1.0)."""
    annotations, detections = hand_case()
    report, _ = froc_report("hand", findings(annotations), findings(detections), ["s1", "s2", "s3", "s4"],
                            resamples=0)
    small = report["strata"]["<10 mm"]
    g = [0.125 + k * GRID_STEP for k in (0, 159, 476, 1111, 2381, 4921, 10000)]
    expected = [g[0] * 1.0, g[1] * 1.0, g[2] * 1.0, 0.5, 0.5, 0.5 + (g[5] - 2.5) * 0.5 / 2.5, 1.0]
    assert small["sensitivities"] == pytest.approx(expected, abs=1e-12)
    assert small["cpm"] == pytest.approx(3.67512 / 7, abs=1e-12)
    assert small["n_nodules"] == 2 and small["n_false_positives"] == 28
    assert report["strata"]["10-<20 mm"]["n_nodules"] == 1 and report["strata"][">=20 mm"]["n_nodules"] == 2
    assert report["cpm"] == pytest.approx(3.603358 / 7, abs=1e-12)


# ----------------------------------------------------------------- independent implementation
def reference_cpm(annotations, detections, scans):
    """The LUNA16 rules written plainly: per scan the marks above the 101st highest probability
    (when more than 100), each nodule's best hit, every unused mark a false positive; the curve by
    counting at each distinct probability; the value at the grid point nearest each rate by linear
    interpolation between the counted points (the last point's value beyond it)."""
    true_probs, false_probs, total = [], [], 0
    for scan in scans:
        marks = [d for d in detections if d[0] == scan]
        if len(marks) > 100:
            cutoff = sorted((m[2] for m in marks), reverse=True)[100]
            marks = [m for m in marks if m[2] > cutoff]
        used = set()
        for _, centre, diameter in (a for a in annotations if a[0] == scan):
            total += 1
            hits = [i for i, m in enumerate(marks)
                    if sum((p - q) ** 2 for p, q in zip(m[1], centre)) < (diameter / 2) ** 2]
            used.update(hits)
            if hits:
                true_probs.append(max(marks[i][2] for i in hits))
        false_probs += [m[2] for i, m in enumerate(marks) if i not in used]
    xs, ys = [0.0], [0.0]
    for t in sorted(set(true_probs + false_probs), reverse=True):
        xs.append(sum(p >= t for p in false_probs) / len(scans))
        ys.append(sum(p >= t for p in true_probs) / total)
    values = []
    for rate in RATES:
        x = 0.125 + round((rate - 0.125) / GRID_STEP) * GRID_STEP
        j = max(i for i in range(len(xs)) if xs[i] <= x)
        values.append(ys[-1] if j == len(xs) - 1 else ys[j] + (x - xs[j]) * (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]))
    return values


def random_case(seed):
    rng = np.random.default_rng(seed)
    scans = [f"scan{i:02d}" for i in range(14)]
    annotations, detections = [], []
    for s, scan in enumerate(scans):
        for _ in range(rng.integers(0, 4)):
            centre = tuple(rng.uniform(-150, 150, 3))
            diameter = float(rng.uniform(3, 32))
            annotations.append((scan, centre, diameter))
            for _ in range(rng.integers(0, 3)):  # marks near the nodule: hits, doubles, near misses
                offset = rng.normal(0, diameter / 2.5, 3)
                detections.append((scan, tuple(np.add(centre, offset)), float(rng.integers(0, 40) / 40)))
        for _ in range(rng.integers(0, 130 if s % 5 == 0 else 25)):  # some scans carry more than 100 marks
            detections.append((scan, tuple(rng.uniform(-150, 150, 3)), float(rng.integers(0, 40) / 40)))
    return annotations, detections, scans


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_case_equals_independent_implementation(seed):
    annotations, detections, scans = random_case(seed)
    entries = froc_entries(findings(annotations), findings(detections), scans)
    fps, sensitivity, _ = froc_curve(entries, len(scans))
    got = sensitivities_at_rates(fps, sensitivity)
    expected = reference_cpm(annotations, detections, scans)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.0 < np.mean(expected) < 1.0


def test_bootstrap_is_reproducible_with_the_seed():
    annotations, detections, scans = random_case(5)
    entries = froc_entries(findings(annotations), findings(detections), scans)
    first = bootstrap_froc(entries, len(scans), resamples=200, seed=11).summary()
    again = bootstrap_froc(entries, len(scans), resamples=200, seed=11).summary()
    other = bootstrap_froc(entries, len(scans), resamples=200, seed=12).summary()
    assert first == again
    assert first != other
    assert first["resamples_used"] >= 190
    fps, sensitivity, _ = froc_curve(entries, len(scans))
    cpm = float(np.mean(sensitivities_at_rates(fps, sensitivity)))
    assert first["cpm_lower"] <= cpm <= first["cpm_upper"] and first["cpm_lower"] < first["cpm_upper"]
    assert all(lo <= hi for lo, hi in zip(first["sensitivities_lower"], first["sensitivities_upper"]))


# ----------------------------------------------------------------------------- files and CLI
def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for scan, centre, value in rows:
            writer.writerow([scan, *centre, value])
    return path


@pytest.fixture
def hand_files(tmp_path):
    annotations, detections = hand_case()
    ann = write_csv(tmp_path / "annotations.csv", ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"], annotations)
    det = write_csv(tmp_path / "nodmaisi.csv", ["seriesuid", "coordX", "coordY", "coordZ", "probability"], detections)
    weaker = [(s, c, p * 0.5 if p < 0.7 else p) for s, c, p in detections if p != 0.3]
    det2 = write_csv(tmp_path / "clinical.csv", ["seriesuid", "coordX", "coordY", "coordZ", "probability"], weaker)
    scans = tmp_path / "scans.txt"
    scans.write_text("s1\ns2\ns3\ns4\n")
    return ann, det, det2, scans


def test_cli_one_system_json_keys(hand_files, tmp_path):
    ann, det, _, scans = hand_files
    out = tmp_path / "out" / "froc.json"
    assert main(["evaluate", "froc", "--annotations", str(ann), "--detections", str(det), "--scans", str(scans),
                 "--json", str(out), "--bootstrap", "50", "--seed", "3"]) == 0
    data = json.loads(out.read_text())
    assert {"sensitivities", "cpm", "fps", "curve"} <= set(data)
    assert data["fps"] == list(RATES) and data["cpm"] == pytest.approx(3.603358 / 7, abs=1e-12)
    assert data["n_scans"] == 4 and data["ci95"]["resamples"] == 50
    assert data["curve"]["threshold"][0] is None and len(data["curve"]["fps_per_scan"]) == len(data["curve"]["sensitivity"])
    # without --scans: every scan named in either file (s4 only has detections)
    out2 = tmp_path / "out" / "froc2.json"
    assert main(["evaluate", "froc", "--annotations", str(ann), "--detections", str(det), "--json", str(out2),
                 "--bootstrap", "0"]) == 0
    assert json.loads(out2.read_text())["cpm"] == pytest.approx(data["cpm"], abs=1e-15)


def test_cli_several_systems_on_one_plot(hand_files, tmp_path):
    from PIL import Image

    ann, det, det2, scans = hand_files
    out, png = tmp_path / "froc.json", tmp_path / "froc.png"
    assert main(["evaluate", "froc", "--annotations", str(ann), "--detections", str(det2), str(det),
                 "--labels", "clinical,NodMAISI", "--scans", str(scans), "--json", str(out), "--png", str(png),
                 "--bootstrap", "30"]) == 0
    data = json.loads(out.read_text())
    assert list(data["systems"]) == ["clinical", "NodMAISI"]
    assert data["systems"]["clinical"]["cpm"] < data["systems"]["NodMAISI"]["cpm"]
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (640, 900, 3)
    for colour in ((31, 119, 180), (214, 39, 40)):  # one line colour per system
        assert (np.abs(image.astype(int) - colour).sum(axis=2) < 10).sum() > 300


@pytest.mark.parametrize("case, message", [
    ("scan-missing", "scan s4 is not in the --scans list"),
    ("nan", "coordY is nan"),
    ("bad-diameter", "diameter_mm must be positive"),
])
def test_cli_bad_input_writes_nothing(hand_files, tmp_path, capsys, case, message):
    ann, det, _, scans = hand_files
    if case == "scan-missing":
        scans.write_text("s1\ns2\ns3\n")
    elif case == "nan":
        rows = det.read_text().splitlines()
        fields = rows[3].split(",")
        fields[2] = "nan"
        rows[3] = ",".join(fields)
        det.write_text("\n".join(rows) + "\n")
    else:
        ann.write_text(ann.read_text().replace(",6.0", ",0"))
    out, png = tmp_path / "o" / "froc.json", tmp_path / "o" / "froc.png"
    assert main(["evaluate", "froc", "--annotations", str(ann), "--detections", str(det), "--scans", str(scans),
                 "--json", str(out), "--png", str(png)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not png.exists()


def test_excluded_findings_file_reads_negative_diameter_as_10_mm(tmp_path):
    path = write_csv(tmp_path / "excluded.csv", ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"],
                     [("s1", (5, 5, 5), -1)])
    assert read_findings(path, "diameter_mm", excluded=True).values.tolist() == [10.0]
    annotations, detections = hand_case()
    excluded = read_findings(path, "diameter_mm", excluded=True)
    plain, _ = froc_report("a", findings(annotations), findings(detections), ["s1", "s2", "s3", "s4"], resamples=0)
    # the far FP marks of s1 are not near (5,5,5); put one there: it is then ignored, not an FP
    detections.append(("s1", (6.0, 5.0, 5.0), 0.99))
    with_mark, _ = froc_report("b", findings(annotations), findings(detections), ["s1", "s2", "s3", "s4"],
                               excluded=excluded, resamples=0)
    assert with_mark["n_false_positives"] == plain["n_false_positives"]
    assert with_mark["sensitivities"] == pytest.approx(plain["sensitivities"], abs=1e-15)
    assert math.isclose(with_mark["cpm"], plain["cpm"])
